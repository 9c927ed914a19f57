"""The click loop: one object (2-D), a data set, and the slice-by-slice 3-D task.

Three layers, as in RITM: :func:`evaluate_object` runs the simulated user on
one object and returns its IoU curve; :func:`evaluate_views` loops over
objects, calling ``set_image`` once per 2-D image and timing it;
:func:`summarize` turns the results into the reported numbers.
:func:`evaluate_volume_object` is the 3-D task.

Timing: ``set_image`` (encoder, once per image) and ``add_click`` (decoder,
per click) are timed separately with ``time.perf_counter``; medians are
reported, and the 20-click SPC ``(encoder + 20 x click) / 20``.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from ..volume import affected_planes, segment_from_anchors
from .clicker import Click, Clicker, next_click
from .datasets import ObjectView, Sample, object_views_2d, select_labels
from .metrics import boundary_iou, iou, noc, pad_curve, summarize_ious, timing_summary

__all__ = [
    "ObjectResult",
    "VolumeObjectResult",
    "RunResult",
    "evaluate_object",
    "evaluate_views",
    "evaluate_dataset",
    "evaluate_volume_object",
    "evaluate_dataset_3d",
    "summarize",
    "object_rng",
    "REPORT_KEYS",
]

TIE_BREAKS = ("raster", "random")
VOLUME_THRESHOLDS = (0.85, 0.90)
REPORT_KEYS = (
    "noc85", "noc90", "noc95", "miou@1", "miou@3", "miou@5", "biou@5",
    "spc_ms", "encoder_s", "spc20_ms", "n_objects", "n_skipped",
)


@dataclass
class ObjectResult:
    """One object's run: IoU after each click (padded to ``max_clicks``)."""

    stem: str
    label: int
    plane: int | None
    ious: np.ndarray
    biou: float
    clicks: list[Click]
    click_seconds: list[float]


@dataclass
class VolumeObjectResult:
    """One 3-D object's run: 3-D IoU after each click (not padded)."""

    stem: str
    label: int
    span: int
    budget: int
    ious: list[float]
    clicks: list[tuple[int, Click]]
    click_seconds: list[float]
    encoder_seconds: list[float]

    def noc(self, threshold: float) -> int:
        if not self.ious:
            return self.budget
        return noc(self.ious, threshold, max_clicks=self.budget)


@dataclass
class RunResult:
    """Everything one predictor produced on one data set."""

    mode: str  # "2d" or "3d"
    objects: list = field(default_factory=list)
    encoder_seconds: list[float] = field(default_factory=list)
    n_skipped: int = 0


def _check_run_args(tie_break: str, max_clicks: int) -> None:
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {TIE_BREAKS}, got {tie_break!r}")
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be at least 1, got {max_clicks}")


def object_rng(tie_break: str, seed: int, stem: str, label: int):
    """Tie-breaking generator of one object (None for raster order)."""
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {TIE_BREAKS}, got {tie_break!r}")
    if tie_break == "raster":
        return None
    return np.random.default_rng([seed, zlib.crc32(stem.encode()), label])


def evaluate_object(
    predictor,
    gt: np.ndarray,
    *,
    ignore: np.ndarray | None = None,
    max_clicks: int = 20,
    rng: np.random.Generator | None = None,
    boundary_width: float = 2,
    boundary_click: int = 5,
) -> tuple[np.ndarray, float, list[Click], list[float]]:
    """Run the simulated user on one object of the predictor's current image.

    Parameters
    ----------
    predictor : BasePredictor
        With its image set; it is reset here.
    gt : ndarray of bool, shape (M, N)
    ignore : ndarray of bool, shape (M, N), optional
    max_clicks : int
    rng : numpy.random.Generator, optional
        Tie-breaking of the click rule (None: raster order).
    boundary_width : float
        Band of the boundary IoU, in pixels.
    boundary_click : int
        Boundary IoU is taken after this click (or the last, if fewer).

    Returns
    -------
    ious : ndarray of shape (max_clicks,)
        IoU after each click; once no error pixel is left to click, the
        last value repeats.
    biou : float
    clicks : list of Click
    click_seconds : list of float
        ``add_click`` durations.
    """
    if max_clicks < 1:
        raise ValueError(f"max_clicks must be at least 1, got {max_clicks}")
    gt = np.asarray(gt, dtype=bool)
    if gt.shape != tuple(predictor.image_shape):
        raise ValueError(f"gt has shape {gt.shape}, the image has shape {predictor.image_shape}")
    predictor.reset()
    clicker = Clicker(gt, ignore=ignore, rng=rng)
    pred = np.zeros_like(gt)
    ious: list[float] = []
    seconds: list[float] = []
    biou_mask = pred
    for k in range(1, max_clicks + 1):
        click = clicker.make_next_click(pred)
        if click is None:
            break
        start = time.perf_counter()
        pred = np.asarray(predictor.add_click(click.row, click.col, click.positive), dtype=bool)
        seconds.append(time.perf_counter() - start)
        ious.append(iou(pred, gt, ignore))
        if k <= boundary_click:
            biou_mask = pred
    if not ious:  # nothing to click: the object is entirely ignored
        ious = [iou(pred, gt, ignore)]
    biou = boundary_iou(biou_mask, gt, width=boundary_width, ignore=ignore)
    return pad_curve(ious, max_clicks), biou, clicker.clicks, seconds


def _set_image(predictor, image: np.ndarray) -> float:
    start = time.perf_counter()
    predictor.set_image(image, channel_axis=-1 if image.ndim == 3 else None)
    return time.perf_counter() - start


def evaluate_views(
    predictor,
    views: Sequence[ObjectView],
    *,
    max_clicks: int = 20,
    tie_break: str = "raster",
    seed: int = 0,
    boundary_width: float = 2,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> RunResult:
    """2-D evaluation of a list of objects (one ``set_image`` per 2-D image).

    ``progress`` wraps the iteration (e.g. ``tqdm``).
    """
    _check_run_args(tie_break, max_clicks)
    result = RunResult("2d")
    current = None
    iterator = views if progress is None else progress(views)
    for view in iterator:
        if view.view_key != current:
            result.encoder_seconds.append(_set_image(predictor, view.image))
            current = view.view_key
        ious, biou, clicks, seconds = evaluate_object(
            predictor, view.gt, ignore=view.ignore, max_clicks=max_clicks,
            rng=object_rng(tie_break, seed, view.stem, view.label),
            boundary_width=boundary_width,
        )
        result.objects.append(
            ObjectResult(view.stem, view.label, view.plane, ious, biou, clicks, seconds)
        )
    return result


def evaluate_dataset(
    predictor,
    samples: Sequence[Sample],
    *,
    min_size: int = 16,
    max_objects: int | None = None,
    seed: int = 0,
    **kwargs,
) -> RunResult:
    """2-D evaluation of samples; ``kwargs`` go to :func:`evaluate_views`."""
    views, skipped = collect_views(samples, min_size=min_size, max_objects=max_objects, seed=seed)
    result = evaluate_views(predictor, views, seed=seed, **kwargs)
    result.n_skipped = skipped
    return result


def collect_views(samples, *, min_size=16, max_objects=None, seed=0):
    """All 2-D object views of the samples and the number skipped for size."""
    views: list[ObjectView] = []
    skipped = 0
    for sample in samples:
        v, s = object_views_2d(sample, min_size=min_size, max_objects=max_objects, seed=seed)
        views += v
        skipped += s
    return views, skipped


# ---------------------------------------------------------------------------
# 3-D task
# ---------------------------------------------------------------------------


def _plane_order(errors: np.ndarray) -> np.ndarray:
    """Planes by decreasing error count, lower index first on ties."""
    return np.lexsort((np.arange(errors.size), -errors))


def evaluate_volume_object(
    predictor,
    volume: np.ndarray,
    gt: np.ndarray,
    *,
    ignore: np.ndarray | None = None,
    max_clicks: int = 20,
    target: float = max(VOLUME_THRESHOLDS),
    min_clicks: int = 3,
    rng: np.random.Generator | None = None,
    stem: str = "",
    label: int = 1,
    propagate: bool = True,
    **propagate_kwargs,
) -> VolumeObjectResult:
    """The user-level 3-D task: segment one object slice by slice.

    At each step the simulated user takes the plane with the most error
    pixels (2-D click rule on that plane, pixels clicked before excluded),
    restores the predictor's state on that plane (prior mask + its clicks,
    replayed untimed), clicks once, and the masks of the planes next to it are
    propagated again from the clicked (anchor) planes
    (:func:`~napari_inter2former.volume.segment_from_anchors`). Each click
    counts; the 3-D IoU is measured after it.

    Parameters
    ----------
    predictor : BasePredictor
    volume : ndarray of uint8, shape (Z, Y, X)
        Already normalised for the whole volume.
    gt : ndarray of bool, shape (Z, Y, X)
    max_clicks : int
        Per plane the object spans: the budget is ``max_clicks * span``.
    target : float
        Stop once the 3-D IoU reaches it (after ``min_clicks`` clicks).
    propagate : bool
        False: no propagation; every plane holds only what its own clicks gave
        (the baseline "segment each slice on its own").
    **propagate_kwargs
        Stop rules of :func:`~napari_inter2former.volume.propagate`.

    Returns
    -------
    VolumeObjectResult
    """
    volume = np.asarray(volume)
    gt = np.asarray(gt, dtype=bool)
    if volume.ndim != 3 or gt.shape != volume.shape:
        raise ValueError(
            f"volume (Z, Y, X) and gt must match, got {volume.shape} and {gt.shape}"
        )
    keep = np.ones_like(gt) if ignore is None else ~np.asarray(ignore, dtype=bool)
    n_planes = volume.shape[0]
    span = int(gt.any(axis=(1, 2)).sum())
    budget = max_clicks * span
    pred = np.zeros_like(gt)
    anchors: dict[int, np.ndarray] = {}
    priors: dict[int, np.ndarray | None] = {}
    plane_clicks: dict[int, list[Click]] = {}
    result = VolumeObjectResult(stem, label, span, budget, [], [], [], [])
    seen: set[int] = set()

    while len(result.ious) < budget:
        errors = ((pred ^ gt) & keep).sum(axis=(1, 2))
        click, plane = None, None
        for z in _plane_order(errors):
            if errors[z] == 0:
                break
            clicked = np.zeros(gt.shape[1:], dtype=bool)
            for c in plane_clicks.get(int(z), []):
                clicked[int(c.row), int(c.col)] = True
            click = next_click(gt[z], pred[z], ignore=~keep[z], clicked=clicked, rng=rng)
            if click is not None:
                plane = int(z)
                break
        if click is None:
            break

        start = time.perf_counter()
        predictor.set_image(volume[plane])
        if plane not in seen:
            result.encoder_seconds.append(time.perf_counter() - start)
            seen.add(plane)
        if plane not in plane_clicks:
            priors[plane] = pred[plane].copy() if pred[plane].any() else None
            plane_clicks[plane] = []
        predictor.set_prior_mask(priors[plane])
        for c in plane_clicks[plane]:  # restore the plane's state, untimed
            predictor.add_click(c.row, c.col, c.positive)
        start = time.perf_counter()
        mask = np.asarray(predictor.add_click(click.row, click.col, click.positive), dtype=bool)
        result.click_seconds.append(time.perf_counter() - start)
        plane_clicks[plane].append(click)
        result.clicks.append((plane, click))

        anchors[plane] = mask
        pred[plane] = mask
        if propagate:
            for z in affected_planes(anchors, plane, n_planes):
                if z not in anchors:
                    pred[z] = False
            for z, m in segment_from_anchors(predictor, volume, anchors, around=plane,
                                             **propagate_kwargs):
                pred[z] = m
        result.ious.append(iou(pred, gt, ~keep))
        if len(result.ious) >= min_clicks and result.ious[-1] >= target:
            break
    return result


def evaluate_dataset_3d(
    predictor,
    samples: Sequence[Sample],
    *,
    max_clicks: int = 20,
    min_size: int = 16,
    max_objects: int | None = None,
    seed: int = 0,
    tie_break: str = "raster",
    progress: Callable[[Iterable], Iterable] | None = None,
    propagate: bool = True,
    **propagate_kwargs,
) -> RunResult:
    """3-D task on every object of every volume (2-D samples are skipped).

    Objects under ``min_size`` voxels are skipped and counted. ``propagate=False``
    gives the per-slice baseline (see :func:`evaluate_volume_object`).
    """
    _check_run_args(tie_break, max_clicks)
    result = RunResult("3d")
    jobs = []
    for sample in samples:
        if not sample.is_volume:
            continue
        ids, counts = np.unique(sample.labels[sample.labels > 0], return_counts=True)
        chosen, skipped = select_labels(
            dict(zip(ids.tolist(), counts.tolist())), min_size=min_size,
            max_objects=max_objects, seed=seed, stem=sample.stem,
        )
        result.n_skipped += skipped
        jobs += [(sample, k) for k in chosen]
    iterator = jobs if progress is None else progress(jobs)
    for sample, k in iterator:
        obj = evaluate_volume_object(
            predictor, sample.image, sample.labels == k, ignore=sample.ignore,
            max_clicks=max_clicks, rng=object_rng(tie_break, seed, sample.stem, k),
            stem=sample.stem, label=k, propagate=propagate, **propagate_kwargs,
        )
        result.objects.append(obj)
        result.encoder_seconds += obj.encoder_seconds
    return result


# ---------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------


def _timing(result: RunResult, n_clicks: int) -> dict[str, float]:
    seconds = [s for obj in result.objects for s in obj.click_seconds]
    spc = timing_summary(seconds)
    enc = timing_summary(result.encoder_seconds)
    return {
        "spc_ms": spc * 1e3,
        "encoder_s": enc,
        "spc20_ms": (enc + n_clicks * spc) / n_clicks * 1e3,
    }


def summarize(result: RunResult, *, max_clicks: int = 20) -> dict[str, float | int | None]:
    """The reported numbers of one run.

    2-D: ``noc85/90/95`` (mean clicks, ``max_clicks`` when never reached),
    ``over85/90/95``, ``miou@1/3/5``, ``biou@5``, timing, ``n_objects``,
    ``n_skipped``. 3-D: ``noc85/90`` (mean clicks per object, budget
    ``max_clicks`` x span when never reached), ``noc85_per_slice`` /
    ``noc90_per_slice`` (clicks divided by the planes the object spans,
    averaged), ``iou3d@1/3``, ``over85/90``. Keys without a value are None.
    """
    out: dict[str, float | int | None] = {key: None for key in REPORT_KEYS}
    out["n_objects"] = len(result.objects)
    out["n_skipped"] = result.n_skipped
    if not result.objects:
        return out
    out.update(_timing(result, max_clicks))
    if result.mode == "2d":
        curves = np.stack([obj.ious for obj in result.objects])
        out.update(summarize_ious(curves))
        out["biou@5"] = float(np.mean([obj.biou for obj in result.objects]))
        return out
    for key in ("noc95", "miou@1", "miou@3", "miou@5", "biou@5"):
        out.pop(key)
    for t in VOLUME_THRESHOLDS:
        name = f"{round(t * 100):d}"
        nocs = np.array([obj.noc(t) for obj in result.objects], dtype=float)
        spans = np.array([obj.span for obj in result.objects], dtype=float)
        out[f"noc{name}"] = float(nocs.mean())
        out[f"noc{name}_per_slice"] = float((nocs / spans).mean())
        out[f"over{name}"] = int(sum(max(obj.ious, default=0.0) < t for obj in result.objects))
    for k in (1, 3):
        out[f"iou3d@{k}"] = float(np.mean(
            [pad_curve(obj.ious, k)[k - 1] if obj.ious else 0.0 for obj in result.objects]
        ))
    return out
