"""Training click samplers: the random simulated user of interactive training.

Unlike the deterministic evaluation rule (:func:`napari_inter2former.evaluation.clicker.next_click`,
always the deepest pixel), training clicks are random: the larger error region is
chosen as in evaluation (false negatives when their maximal depth is strictly
larger, else false positives), then any pixel deeper than ``max_depth / k`` is
drawn uniformly (``k = 1.7`` in the reference recipe; ``k = 1`` keeps only the
deepest pixels).

For speed the depth (Euclidean distance to the region's outside, the image
border counting as outside) is computed on the region's bounding box and, when
that box is larger than ``max_side``, on a block-downsampled copy; the click is
then placed on a region pixel inside the drawn block. Coordinates are (row, col)
in pixels of the masks.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["first_click", "random_error_click", "region_depth"]

DEFAULT_MAX_SIDE = 192  # depth maps are computed on at most this many pixels per side


def region_depth(region: np.ndarray, max_side: int | None = DEFAULT_MAX_SIDE):
    """Depth map of a region on its (possibly downsampled) bounding box.

    Parameters
    ----------
    region : ndarray of bool, shape (M, N)
    max_side : int, optional
        Downsample the bounding box by an integer factor so that its longer side
        is at most this; ``None`` keeps full resolution.

    Returns
    -------
    depth : ndarray of float, shape (m, n)
        Depth in *full-resolution pixels* (block depth times the factor); empty
        (0, 0) when the region is empty.
    origin : (int, int)
        Full-resolution (row, col) of the box's top-left corner.
    factor : int
        Block side of the downsampling (1 = full resolution).
    """
    region = np.asarray(region, dtype=bool)
    rows = np.flatnonzero(region.any(axis=1))
    if rows.size == 0:
        return np.zeros((0, 0)), (0, 0), 1
    cols = np.flatnonzero(region.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = region[r0:r1, c0:c1]
    factor = 1
    if max_side is not None and max(crop.shape) > max_side:
        factor = int(np.ceil(max(crop.shape) / max_side))
        h, w = -(-crop.shape[0] // factor), -(-crop.shape[1] // factor)
        padded = np.zeros((h * factor, w * factor), bool)
        padded[: crop.shape[0], : crop.shape[1]] = crop
        blocks = padded.reshape(h, factor, w, factor).mean(axis=(1, 3))
        small = blocks >= 0.5
        crop = small if small.any() else blocks > 0
    # outside the bounding box the region is empty, so padding by one pixel of
    # background is exact (and makes the image border count as boundary)
    depth = ndi.distance_transform_edt(np.pad(crop, 1))[1:-1, 1:-1] * factor
    return depth, (int(r0), int(c0)), factor


def _draw(
    region: np.ndarray,
    depth: np.ndarray,
    origin: tuple[int, int],
    factor: int,
    k: float,
    rng: np.random.Generator,
) -> tuple[int, int]:
    """A random region pixel deeper than depth.max() / k (at block resolution)."""
    candidates = np.flatnonzero(depth > depth.max() / k - 1e-9)
    r, c = np.unravel_index(int(candidates[rng.integers(candidates.size)]), depth.shape)
    r0, c0 = origin[0] + r * factor, origin[1] + c * factor
    if factor == 1:
        return int(r0), int(c0)
    block = region[r0 : r0 + factor, c0 : c0 + factor]
    inside = np.flatnonzero(block)
    if inside.size == 0:  # block chosen by the fallback rule with no pixel: its centre
        return int(min(r0 + factor // 2, region.shape[0] - 1)), int(
            min(c0 + factor // 2, region.shape[1] - 1)
        )
    br, bc = np.unravel_index(int(inside[rng.integers(inside.size)]), block.shape)
    return int(r0 + br), int(c0 + bc)


def random_error_click(
    gt: np.ndarray,
    pred: np.ndarray | None,
    rng: np.random.Generator,
    *,
    k: float = 1.7,
    valid: np.ndarray | None = None,
    max_side: int | None = DEFAULT_MAX_SIDE,
) -> tuple[int, int, bool] | None:
    """A random click in the deep part of the larger error region.

    Parameters
    ----------
    gt : ndarray of bool, shape (M, N)
        The object.
    pred : ndarray of bool, shape (M, N), or None
        Current prediction (``None``: nothing predicted).
    rng : numpy.random.Generator
    k : float
        Candidates are pixels with depth > max_depth / k; must be >= 1.
    valid : ndarray of bool, shape (M, N), optional
        Pixels a click may land on (e.g. the image, not the padding).
    max_side : int, optional
        See :func:`region_depth`.

    Returns
    -------
    (row, col, positive) or None
        ``None`` when there is no error pixel.

    Raises
    ------
    ValueError
        If the shapes differ or ``k < 1``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    gt = np.asarray(gt, dtype=bool)
    pred = np.zeros_like(gt) if pred is None else np.asarray(pred, dtype=bool)
    if pred.shape != gt.shape or (valid is not None and np.shape(valid) != gt.shape):
        raise ValueError(
            f"gt, pred and valid must have one shape, got {gt.shape}, {pred.shape}"
        )
    fn = gt & ~pred
    fp = pred & ~gt
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        fn &= valid
        fp &= valid
    fn_depth, fn_origin, fn_factor = region_depth(fn, max_side)
    fp_depth, fp_origin, fp_factor = region_depth(fp, max_side)
    fn_max = fn_depth.max() if fn_depth.size else 0.0
    fp_max = fp_depth.max() if fp_depth.size else 0.0
    if fn_max == 0 and fp_max == 0:
        return None
    if fn_max > fp_max:
        row, col = _draw(fn, fn_depth, fn_origin, fn_factor, k, rng)
        return row, col, True
    row, col = _draw(fp, fp_depth, fp_origin, fp_factor, k, rng)
    return row, col, False


def first_click(
    gt: np.ndarray,
    rng: np.random.Generator,
    *,
    deepest_prob: float = 0.5,
    k: float = 1.7,
    max_side: int | None = DEFAULT_MAX_SIDE,
) -> tuple[int, int, bool] | None:
    """The first click on an object: its deepest point, or a random deep point.

    With probability ``deepest_prob`` the click goes to a maximally deep pixel
    (the evaluation rule), otherwise to any pixel deeper than max_depth / k.
    """
    kk = 1.0 if rng.random() < deepest_prob else k
    return random_error_click(gt, None, rng, k=kk, max_side=max_side)
