"""The simulated user of the evaluation protocol: where the next click goes.

The rule (the RITM / Inter2Former test protocol):

* false negatives ``FN = gt & ~pred`` and false positives ``FP = pred & ~gt``,
  with the ignore region and the pixels already clicked removed;
* the Euclidean distance transform of each, with the image border counted as
  boundary (one pixel of zero padding);
* a positive click at the deepest FN pixel if its depth is strictly larger
  than the deepest FP pixel's, otherwise a negative click at the deepest FP
  pixel (equal depths give a negative click); no click when both are empty;
* several pixels at the maximal depth: the first in raster order, or one drawn
  from a seeded generator.

Click 1 (empty prediction) therefore lands on the deepest point of the object.
Coordinates are (row, col) in pixels of the mask.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..predictor import Click

__all__ = ["Click", "Clicker", "next_click", "depth_map"]


def depth_map(region: np.ndarray) -> np.ndarray:
    """Euclidean distance of each region pixel to the nearest non-region pixel.

    The image border counts as boundary: a region touching the border gets
    depth 1 there, as if the image were padded with one pixel of background.

    Parameters
    ----------
    region : ndarray of bool, shape (M, N)

    Returns
    -------
    ndarray of float64, shape (M, N)
        0 outside the region, >= 1 inside.
    """
    region = np.asarray(region, dtype=bool)
    depth = np.zeros(region.shape, dtype=np.float64)
    if not region.any():
        return depth
    # The transform on the bounding box grown by one background pixel is exact
    # (any farther background pixel has a nearer one on that ring) and cheaper.
    bbox = ndi.find_objects(region.astype(np.uint8))[0]
    crop = np.pad(region[bbox], 1, mode="constant", constant_values=False)
    depth[bbox] = ndi.distance_transform_edt(crop)[1:-1, 1:-1]
    return depth


def _deepest(depth: np.ndarray, rng: np.random.Generator | None) -> tuple[int, int]:
    """(row, col) of a pixel at the maximal depth; raster order or seeded draw."""
    if rng is None:
        flat = int(np.argmax(depth))
    else:
        candidates = np.flatnonzero(depth == depth.max())
        flat = int(candidates[rng.integers(len(candidates))])
    row, col = np.unravel_index(flat, depth.shape)
    return int(row), int(col)


def next_click(
    gt: np.ndarray,
    pred: np.ndarray | None,
    *,
    ignore: np.ndarray | None = None,
    clicked: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
) -> Click | None:
    """The next simulated click for a prediction of one object.

    Parameters
    ----------
    gt : ndarray of bool, shape (M, N)
        The object.
    pred : ndarray of bool, shape (M, N), or None
        The current prediction; ``None`` means nothing predicted yet.
    ignore : ndarray of bool, shape (M, N), optional
        Pixels that no click may land on (e.g. GrabCut's 128 band).
    clicked : ndarray of bool, shape (M, N), optional
        Pixels already clicked; they are never clicked again.
    rng : numpy.random.Generator, optional
        Draws among equally deep pixels; ``None`` takes the first in raster order.

    Returns
    -------
    Click or None
        ``Click(row, col, positive)``, or ``None`` when no error pixel is left.

    Raises
    ------
    ValueError
        If the arrays are not 2-D or their shapes differ.
    """
    gt = np.asarray(gt, dtype=bool)
    if gt.ndim != 2:
        raise ValueError(f"gt must be a 2-D mask, got shape {gt.shape}")
    pred = np.zeros_like(gt) if pred is None else np.asarray(pred, dtype=bool)
    allowed = np.ones_like(gt)
    for name, extra in (("ignore", ignore), ("clicked", clicked)):
        if extra is not None:
            extra = np.asarray(extra, dtype=bool)
            if extra.shape != gt.shape:
                raise ValueError(f"{name} has shape {extra.shape}, gt has shape {gt.shape}")
            allowed &= ~extra
    if pred.shape != gt.shape:
        raise ValueError(f"pred has shape {pred.shape}, gt has shape {gt.shape}")

    fn_depth = depth_map(gt & ~pred & allowed)
    fp_depth = depth_map(pred & ~gt & allowed)
    fn_max, fp_max = fn_depth.max(), fp_depth.max()
    if fn_max == 0 and fp_max == 0:
        return None
    if fn_max > fp_max:
        row, col = _deepest(fn_depth, rng)
        return Click(row, col, True)
    row, col = _deepest(fp_depth, rng)
    return Click(row, col, False)


class Clicker:
    """Simulated user for one object: holds the ground truth and the clicks so far.

    Parameters
    ----------
    gt : ndarray of bool, shape (M, N)
        The object.
    ignore : ndarray of bool, shape (M, N), optional
        Pixels left out of click placement.
    rng : numpy.random.Generator, optional
        Tie-breaking among equally deep pixels (``None``: raster order).

    Examples
    --------
    >>> gt = np.zeros((5, 7), bool); gt[1:4, 1:6] = True
    >>> Clicker(gt).make_next_click(None)
    Click(row=2, col=2, positive=True)
    """

    def __init__(
        self,
        gt: np.ndarray,
        *,
        ignore: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.gt = np.asarray(gt, dtype=bool)
        if self.gt.ndim != 2:
            raise ValueError(f"gt must be a 2-D mask, got shape {self.gt.shape}")
        if ignore is not None:
            ignore = np.asarray(ignore, dtype=bool)
            if ignore.shape != self.gt.shape:
                raise ValueError(
                    f"ignore has shape {ignore.shape}, gt has shape {self.gt.shape}"
                )
        self.ignore = ignore
        self.rng = rng
        self.clicks: list[Click] = []
        self._clicked = np.zeros(self.gt.shape, dtype=bool)

    def make_next_click(self, pred: np.ndarray | None) -> Click | None:
        """Place, record and return the next click (``None``: nothing left to fix)."""
        click = next_click(
            self.gt, pred, ignore=self.ignore, clicked=self._clicked, rng=self.rng
        )
        if click is not None:
            self.add_click(click)
        return click

    def add_click(self, click: Click) -> None:
        """Record a click made elsewhere (e.g. replayed) so it is never repeated."""
        self.clicks.append(click)
        self._clicked[int(click.row), int(click.col)] = True

    def get_state(self) -> list[Click]:
        return list(self.clicks)

    def set_state(self, clicks: list[Click]) -> None:
        self.clicks = []
        self._clicked[:] = False
        for click in clicks:
            self.add_click(click)
