"""2-D rotary position embedding (RoPE) for the decoder's full attention.

Convention (the one of the Inter2Former/HRSAM code, described in the design
notes): a head of width D holds D / 2 interleaved channel pairs (2p, 2p + 1).
The first D / 4 pairs rotate with the row y, the last D / 4 with the column x,
by the angle ``ratio * pos * f_j`` with ``f_j = theta ** (-2 j / (D / 2))``.
A pair (u0, u1) becomes (u0 cos + u1 sin, u1 cos - u0 sin).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RoPE2d", "apply_rope", "rope_tables"]


def rope_tables(
    height: int,
    width: int,
    head_dim: int,
    theta: float = 10000.0,
    ratio: float = 0.5,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine tables for a (height, width) token grid.

    Returns
    -------
    cos, sin : Tensor of shape (height * width, head_dim // 2)
        Row-major token order; column p is the angle of channel pair p.
    """
    if head_dim % 4 != 0:
        raise ValueError(
            f"head_dim must be a multiple of 4 for 2-D RoPE, got {head_dim}"
        )
    quarter = head_dim // 4
    freqs = theta ** (
        -2.0 * torch.arange(quarter, dtype=torch.float64) / (head_dim // 2)
    )
    ys = torch.arange(height, dtype=torch.float64).repeat_interleave(width)  # (N,)
    xs = torch.arange(width, dtype=torch.float64).repeat(height)  # (N,)
    angles = (
        torch.cat([ys[:, None] * freqs, xs[:, None] * freqs], dim=1) * ratio
    )  # (N, D/2)
    return angles.cos().float().to(device), angles.sin().float().to(device)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved channel pairs of ``x``.

    Parameters
    ----------
    x : Tensor of shape (..., N, D)
    cos, sin : Tensor of shape (N, D // 2)

    Returns
    -------
    Tensor of shape (..., N, D)
    """
    u = x.unflatten(-1, (-1, 2))  # (..., N, D/2, 2)
    u0, u1 = u[..., 0], u[..., 1]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    out = torch.stack([u0 * cos + u1 * sin, u1 * cos - u0 * sin], dim=-1)
    return out.flatten(-2)


class RoPE2d(nn.Module):
    """Holds RoPE settings and a small cache of tables keyed by grid size and device."""

    def __init__(
        self, head_dim: int, theta: float = 10000.0, ratio: float = 0.5
    ) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.theta = theta
        self.ratio = ratio
        self._tables: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def tables(
        self, height: int, width: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(cos, sin), each of shape (height * width, head_dim // 2); cached (at most 4 grids)."""
        key = (height, width, str(device))
        if key not in self._tables:
            if len(self._tables) >= 4:
                self._tables.pop(next(iter(self._tables)))
            with torch.inference_mode(False), torch.no_grad():
                self._tables[key] = rope_tables(
                    height, width, self.head_dim, self.theta, self.ratio, device
                )
        return self._tables[key]

    def forward(
        self, x: torch.Tensor, positions: torch.Tensor | None, grid: tuple[int, int]
    ) -> torch.Tensor:
        """Rotate ``x`` (..., N, D) for the given flat token positions (N,) of a grid.

        ``positions=None`` means all grid tokens in row-major order.
        """
        cos, sin = self.tables(grid[0], grid[1], x.device)
        if positions is not None:
            cos, sin = cos[positions], sin[positions]
        return apply_rope(x, cos, sin)
