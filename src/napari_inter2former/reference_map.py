"""The 5-code reference label map: the decoder's only interaction input.

The map ``R`` lives at the network input resolution (T x T) and holds one of the
codes of :mod:`napari_inter2former.constants` per pixel:

=====  ======================  =============================================
code   name                    meaning
=====  ======================  =============================================
0      DEFINITELY_BACKGROUND   inside a negative click disc
1      POSSIBLY_BACKGROUND     predicted background at the previous step
2      UNKNOWN                 never predicted, or the prediction just flipped
3      POSSIBLY_FOREGROUND     predicted foreground at the previous step
4      DEFINITELY_FOREGROUND   inside a positive click disc
=====  ======================  =============================================

Rules: a session starts all UNKNOWN; click discs (radius 5 px) overwrite with
code 0 or 4; after each prediction, UNKNOWN pixels take the prediction as a
"possibly" code and pixels whose prediction flipped become UNKNOWN for one step.
Definite codes are never changed by predictions.

All functions work on torch tensors of shape (B, 1, H, W) and dtype uint8.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

from .constants import (
    CLICK_RADIUS,
    DEFINITELY_BACKGROUND,
    DEFINITELY_FOREGROUND,
    POSSIBLY_BACKGROUND,
    POSSIBLY_FOREGROUND,
    UNKNOWN,
)

__all__ = [
    "new_reference_map",
    "paint_clicks",
    "update_by_prediction",
    "reference_from_mask",
]


def new_reference_map(
    height: int, width: int, batch: int = 1, device: torch.device | str | None = None
) -> torch.Tensor:
    """Return a map of shape (batch, 1, height, width), all UNKNOWN (uint8)."""
    return torch.full((batch, 1, height, width), UNKNOWN, dtype=torch.uint8, device=device)


def paint_clicks(
    ref: torch.Tensor,
    clicks: Iterable[tuple[int, int, bool]],
    radius: int = CLICK_RADIUS,
    batch_index: int = 0,
) -> torch.Tensor:
    """Paint click discs into ``ref`` in place and return it.

    Parameters
    ----------
    ref : Tensor of shape (B, 1, H, W), uint8
        Reference map.
    clicks : iterable of (row, col, positive)
        Click positions in pixels of the map's grid. Later clicks overwrite
        earlier ones where discs overlap.
    radius : int
        Disc radius; pixels with squared distance <= radius**2 are painted.
    batch_index : int
        Which map of the batch to paint.
    """
    _, _, height, width = ref.shape
    for row, col, positive in clicks:
        row, col = int(row), int(col)
        r0, r1 = max(row - radius, 0), min(row + radius + 1, height)
        c0, c1 = max(col - radius, 0), min(col + radius + 1, width)
        if r0 >= r1 or c0 >= c1:
            continue
        rows = torch.arange(r0, r1, device=ref.device).view(-1, 1) - row
        cols = torch.arange(c0, c1, device=ref.device).view(1, -1) - col
        disc = rows * rows + cols * cols <= radius * radius
        code = DEFINITELY_FOREGROUND if positive else DEFINITELY_BACKGROUND
        patch = ref[batch_index, 0, r0:r1, c0:c1]
        patch[disc] = code
    return ref


def update_by_prediction(ref: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
    """Return the map updated after a prediction (a new tensor).

    Parameters
    ----------
    ref : Tensor of shape (B, 1, H, W), uint8
    prediction : Tensor of shape (B, 1, H, W), bool
        Foreground prediction at the map's resolution.

    Returns
    -------
    Tensor of shape (B, 1, H, W), uint8
        Predicted foreground: UNKNOWN -> POSSIBLY_FG, POSSIBLY_BG -> UNKNOWN.
        Predicted background: UNKNOWN -> POSSIBLY_BG, POSSIBLY_FG -> UNKNOWN.
        Definite codes are kept.
    """
    prediction = prediction.bool()
    out = ref.clone()
    fg, bg = prediction, ~prediction
    out[fg & (ref == UNKNOWN)] = POSSIBLY_FOREGROUND
    out[fg & (ref == POSSIBLY_BACKGROUND)] = UNKNOWN
    out[bg & (ref == UNKNOWN)] = POSSIBLY_BACKGROUND
    out[bg & (ref == POSSIBLY_FOREGROUND)] = UNKNOWN
    return out


def reference_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Encode a prior mask as a reference map (POSSIBLY_FG inside, POSSIBLY_BG outside).

    This is the state the map would be in after a prediction equal to ``mask``,
    used to start a session from an existing label or the previous slice.

    Parameters
    ----------
    mask : Tensor of shape (B, 1, H, W), bool
    """
    mask = mask.bool()
    out = torch.full(mask.shape, POSSIBLY_BACKGROUND, dtype=torch.uint8, device=mask.device)
    out[mask] = POSSIBLY_FOREGROUND
    return out


def click_list(rows: Sequence[int], cols: Sequence[int], positive: Sequence[bool]):
    """Zip three sequences into a list of (row, col, positive) tuples."""
    return [(int(r), int(c), bool(p)) for r, c, p in zip(rows, cols, positive)]
