"""Small building blocks shared by the model components.

``LayerNorm2d`` (channel LayerNorm on (B, C, H, W) maps), the stand-in image
encoder ``PatchEncoder`` used by the "tiny" configuration, ``ParameterCache``
(an eval-time cache invalidated when weights change), and integer-box helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

__all__ = ["LayerNorm2d", "ParameterCache", "PatchEncoder", "grow_box", "mask_bbox"]


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a (B, C, H, W) tensor."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class PatchEncoder(nn.Module):
    """Stand-in image encoder for tests: a stride-16 patch conv and a LayerNorm2d.

    Parameters
    ----------
    embed_dim : int
        Output channels C.
    patch_size : int
        Patch side (the token stride).

    Shapes: (B, 3, T, T) -> (B, C, T / patch_size, T / patch_size).
    """

    def __init__(self, embed_dim: int = 64, patch_size: int = 16) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = LayerNorm2d(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))


class ParameterCache:
    """Cache one tensor computed from some parameters, for no-grad evaluation.

    The value is recomputed whenever a parameter was modified in place (its
    ``_version`` counter moves: optimiser steps, ``load_state_dict``), replaced
    (``data_ptr`` changes: ``.to()``), or when the dtype/device or the
    inference-mode flag differ. Callers use it only when autograd is off.
    Parameters created under ``torch.inference_mode`` have no version counter:
    then nothing is cached.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value: torch.Tensor | None = None

    def get(self, params: Iterable[torch.Tensor], compute: Callable[[], torch.Tensor]):
        params = list(params)
        if any(p.is_inference() for p in params):  # no version counter: never cache
            return compute()
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params) + (
            torch.is_inference_mode_enabled(),
        )
        if key != self._key or self._value is None:
            self._value = compute()
            self._key = key
        return self._value

    def clear(self) -> None:
        self._key, self._value = None, None


def grow_box(
    box: tuple[int, int, int, int], margin: int, shape: tuple[int, int]
) -> tuple[int, int, int, int]:
    """``box`` (r0, r1, c0, c1), end exclusive, grown by ``margin`` on every side, clipped to ``shape``."""
    r0, r1, c0, c1 = box
    return (max(int(r0) - margin, 0), min(int(r1) + margin, shape[0]),
            max(int(c0) - margin, 0), min(int(c1) + margin, shape[1]))  # fmt: skip


def mask_bbox(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    """Bounding box (r0, r1, c0, c1), end exclusive, of a 2-D bool mask; None if empty."""
    rows = torch.nonzero(mask.any(1)).flatten()
    if rows.numel() == 0:
        return None
    cols = torch.nonzero(mask.any(0)).flatten()
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
