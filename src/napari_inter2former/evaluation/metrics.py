"""Metrics of the click protocol: pure functions over masks and IoU arrays.

* :func:`iou`, :func:`boundary_iou`: one prediction against one object;
* :func:`noc`, :func:`summarize_ious`: per-click IoU curves -> NoC@t, mIoU@k;
* :func:`timing_summary`: seconds -> median milliseconds / seconds.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .clicker import depth_map

__all__ = [
    "iou",
    "boundary_band",
    "boundary_iou",
    "noc",
    "pad_curve",
    "summarize_ious",
    "timing_summary",
    "NOC_THRESHOLDS",
    "SETBACK",
    "MIOU_CLICKS",
]

NOC_THRESHOLDS = (0.85, 0.90, 0.95)
MIOU_CLICKS = (1, 3, 5)
SETBACK = 0.05  # an IoU loss larger than this after a click counts as a setback


def _check_pair(pred, gt, ignore):
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"pred has shape {pred.shape}, gt has shape {gt.shape}")
    keep = None
    if ignore is not None:
        ignore = np.asarray(ignore, dtype=bool)
        if ignore.shape != gt.shape:
            raise ValueError(f"ignore has shape {ignore.shape}, gt has shape {gt.shape}")
        keep = ~ignore
    return pred, gt, keep


def iou(pred: np.ndarray, gt: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """Intersection over union of two masks of any dimension.

    Parameters
    ----------
    pred, gt : ndarray of bool, same shape
    ignore : ndarray of bool, same shape, optional
        Pixels left out of both the intersection and the union.

    Returns
    -------
    float
        In [0, 1]; 1.0 when both masks are empty (outside ``ignore``).
    """
    pred, gt, keep = _check_pair(pred, gt, ignore)
    inter = pred & gt
    union = pred | gt
    if keep is not None:
        inter &= keep
        union &= keep
    n_union = int(union.sum())
    return 1.0 if n_union == 0 else int(inter.sum()) / n_union


def boundary_band(mask: np.ndarray, width: float) -> np.ndarray:
    """Pixels of a 2-D mask within ``width`` pixels of its contour (inner band).

    The image border counts as contour. A pixel at the edge of the mask has
    depth 1, so ``width=1`` is the one-pixel contour.
    """
    mask = np.asarray(mask, dtype=bool)
    return mask & (depth_map(mask) <= width)


def boundary_iou(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    width: float = 2,
    ignore: np.ndarray | None = None,
) -> float:
    """Boundary IoU (Cheng et al., 2021) of two 2-D masks.

    IoU of the inner boundary bands ``mask & (depth <= width)`` of the two
    masks. Unlike the usual band of 2 % of the image diagonal, the width is in
    pixels, because a 2 % band is wider than a nucleus.

    Parameters
    ----------
    pred, gt : ndarray of bool, shape (M, N)
    width : float
        Band width in pixels (>= 1).
    ignore : ndarray of bool, shape (M, N), optional
        Pixels left out.

    Returns
    -------
    float
        In [0, 1]; 1.0 when both masks are empty.
    """
    if not width >= 1:
        raise ValueError(f"width must be at least 1 pixel, got {width}")
    pred, gt, _ = _check_pair(pred, gt, ignore)
    if pred.ndim != 2:
        raise ValueError(f"boundary_iou needs 2-D masks, got shape {pred.shape}")
    return iou(boundary_band(pred, width), boundary_band(gt, width), ignore)


def noc(ious: Sequence[float], threshold: float, max_clicks: int | None = None) -> int:
    """Number of clicks: 1-based index of the first IoU >= threshold.

    Parameters
    ----------
    ious : sequence of float
        IoU after click 1, 2, ...
    threshold : float
    max_clicks : int, optional
        Returned when the threshold is never reached; default ``len(ious)``.
    """
    ious = np.asarray(ious, dtype=float)
    if ious.ndim != 1 or ious.size == 0:
        raise ValueError(f"ious must be a non-empty 1-D sequence, got shape {ious.shape}")
    limit = len(ious) if max_clicks is None else int(max_clicks)
    reached = np.flatnonzero(ious >= threshold)
    return int(reached[0]) + 1 if reached.size and reached[0] < limit else limit


def pad_curve(ious: Sequence[float], length: int) -> np.ndarray:
    """Extend an IoU curve to ``length`` clicks by repeating its last value.

    Used when the simulated user stops early (no error pixel left to click):
    the prediction, hence the IoU, no longer changes.
    """
    ious = np.asarray(ious, dtype=float)
    if ious.size == 0:
        raise ValueError("cannot pad an empty IoU curve")
    if ious.size >= length:
        return ious[:length].copy()
    return np.concatenate([ious, np.full(length - ious.size, ious[-1])])


def summarize_ious(
    curves: np.ndarray,
    *,
    thresholds: Iterable[float] = NOC_THRESHOLDS,
    clicks: Iterable[int] = MIOU_CLICKS,
) -> dict[str, float]:
    """Mean NoC per threshold and mean IoU after k clicks over objects.

    Parameters
    ----------
    curves : ndarray of shape (n_objects, max_clicks)
        IoU after each click, one row per object.

    Returns
    -------
    dict
        ``noc85`` ... (mean clicks, ``max_clicks`` when never reached),
        ``over85`` ... (objects never reaching it), ``miou@1`` ...,
        ``setbacks`` (mean number of clicks per object after which the IoU
        falls by more than :data:`SETBACK`). Empty dict when there is no object.
    """
    curves = np.asarray(curves, dtype=float)
    if curves.ndim != 2:
        raise ValueError(f"curves must be 2-D (objects, clicks), got shape {curves.shape}")
    if curves.shape[0] == 0:
        return {}
    out: dict[str, float] = {}
    for t in thresholds:
        key = f"{round(t * 100):d}"
        nocs = np.array([noc(c, t) for c in curves])
        out[f"noc{key}"] = float(nocs.mean())
        out[f"over{key}"] = int((curves < t).all(axis=1).sum())
    for k in clicks:
        if 1 <= k <= curves.shape[1]:
            out[f"miou@{k}"] = float(curves[:, k - 1].mean())
    out["setbacks"] = float((np.diff(curves, axis=1) < -SETBACK).sum(axis=1).mean())
    return out


def timing_summary(seconds: Sequence[float]) -> float:
    """Median of a list of durations (NaN when empty)."""
    seconds = np.asarray(seconds, dtype=float)
    return float(np.median(seconds)) if seconds.size else float("nan")
