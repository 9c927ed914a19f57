"""3-D segmentation slice by slice: propagate a mask through a (Z, Y, X) volume.

>>> for plane, mask in propagate(predictor, volume, 40, mask40, direction=+1):  # doctest: +SKIP
...     labels[plane][mask] = object_id

On each next plane the predictor gets the plane, the previous plane's mask as
prior mask and one automatic positive click at the deepest *plausible* point of
that mask. Propagation stops (the rejected mask is not yielded) when

``"vanished"``
    the new mask has fewer than ``min_area`` pixels, or no pixel of the
    previous mask is bright enough on the new plane to hold the click;
``"overlap"``
    the IoU of the new mask with the previous one is under ``iou_threshold``;
``"growth"``
    the new mask is more than ``max_growth`` times the previous area (a
    merge with a neighbour, or the blur halo spreading);
``"contrast"``
    the object's contrast to its local background fell under
    ``min_contrast_ratio`` of the contrast on the start plane;
``"stop_plane"`` / ``"end"``
    ``stop_plane`` (inclusive) or the end of the volume was reached.

The reason is the generator's return value (``StopIteration.value``).

**Why the intensity rules.** Out of focus, above and below a nucleus, the
blur looks like a slightly larger, dimmer nucleus; a model prompted with the
previous mask follows it and the overlap test never fires, so propagation used
to leak through the whole stack (see ``design/baselines-dev.md``). The object's
*contrast* is ``mean(inside the mask) - median(ring around it)``, on the plane
smoothed with a Gaussian of sigma 1, where the ring lies 2 to 2 + w pixels
outside the mask (w = max(3, half the mask's equivalent radius)). It is
measured on the start plane (``c0``) and on each new plane: the blur halo has
a much lower contrast than the in-focus object, so ``c / c0 <
min_contrast_ratio`` stops. The automatic click goes only where the new plane
is at least ``min_contrast_ratio * c0`` above the local background, so a click
never seeds the model on blur. Both rules work for dark objects too (the
signs cancel) and switch off when ``|c0|`` is under ``MIN_START_CONTRAST``
grey levels (objects not defined by intensity, e.g. cells in a membrane
stain), leaving the overlap and growth rules. With several annotated planes
(:func:`fill_between`, :func:`segment_from_anchors`) ``c0`` is the strongest
of the anchors' contrasts: an anchor on a faint end plane (a negative click
just past the object) would on its own switch the rules off and let the
mask run through the rest of the stack. The default ratio 0.4 was read
off the training volume ``train/plantseg/nuclei_1135`` (never the evaluation
sets): the contrast of a nucleus falls to 0.2-0.5 of its largest slice's on
its last one or two planes, and the halo beyond measures 0.0-0.45, so 0.4
stops at most a small end plane early rather than leaking.

Intensities: a plane is converted with :func:`to_rgb_uint8` using the
``contrast_limits`` given, else, for a non-uint8 volume, the 1st-99.8th
percentiles of the **whole volume** (per-plane percentiles would stretch a
dim, out-of-focus plane to look like an in-focus one); a lazy volume (dask,
zarr: anything but a numpy array) is never read whole, its percentiles come
from 16 evenly spaced planes.

These functions move the predictor from plane to plane: afterwards its image
is the last plane visited, so call ``set_image`` again before more clicks.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
from scipy import ndimage as ndi

from .transforms import robust_limits, to_rgb_uint8

__all__ = [
    "propagate",
    "fill_between",
    "segment_from_anchors",
    "affected_planes",
    "strongest_contrast",
    "MIN_START_CONTRAST",
]

MIN_START_CONTRAST = 10.0  # grey levels (of 255) under which the intensity rules are off
RING_GAP = 2  # pixels between a mask and its background ring


LIMIT_SAMPLE_PLANES = 16  # planes read from a lazy volume to set its contrast limits
# the outline step on propagated planes (Predictor attributes): half-way, since a lower
# level compounds plane after plane, and both ways, since the object's outline moves
# inwards as well as outwards from one plane to the next (docs/evaluation.md, session 13)
PROPAGATION_OUTLINE = {"refine_level": 0.5, "refine_shrink": True}


def _check_volume(volume, channel_axis) -> np.ndarray:
    # lazy arrays (dask, zarr, memory maps) stay lazy: only the planes visited are read
    if not all(hasattr(volume, name) for name in ("shape", "ndim", "dtype", "__getitem__")):
        volume = np.asarray(volume)
    want = 3 if channel_axis is None else 4
    if volume.ndim != want:
        raise ValueError(
            f"volume must be {'(Z, Y, X)' if want == 3 else '(Z, Y, X, C)'}"
            f" for channel_axis={channel_axis}, got shape {volume.shape}"
        )
    if volume.shape[0] == 0:
        raise ValueError("volume has no plane")
    return volume


def _image_kwargs(volume: np.ndarray, image_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Fix the contrast limits once for the whole volume (see module notes)."""
    kwargs = dict(image_kwargs)
    if kwargs.get("contrast_limits") is None and volume.dtype != np.uint8:
        if isinstance(volume, np.ndarray) or volume.shape[0] <= LIMIT_SAMPLE_PLANES:
            kwargs["contrast_limits"] = robust_limits(volume)
        else:  # a lazy volume: percentiles of evenly spaced planes, not a read of all
            picks = np.linspace(0, volume.shape[0] - 1, LIMIT_SAMPLE_PLANES).round()
            kwargs["contrast_limits"] = robust_limits(
                np.stack([np.asarray(volume[int(i)]) for i in picks])
            )
    return kwargs


def _plane_rgb(volume: np.ndarray, plane: int, kwargs: dict[str, Any]) -> np.ndarray:
    return to_rgb_uint8(volume[plane], **kwargs)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return ndi.gaussian_filter(rgb.astype(np.float32).mean(axis=2), sigma=1.0)


def _background(grey: np.ndarray, mask: np.ndarray) -> float | None:
    """Median intensity of a ring around the mask (None if there is no room)."""
    area = int(mask.sum())
    width = max(3.0, 0.5 * np.sqrt(area / np.pi))
    dist = ndi.distance_transform_edt(~mask)
    ring = (dist > RING_GAP) & (dist <= RING_GAP + width)
    return float(np.median(grey[ring])) if ring.any() else None


def _contrast(grey: np.ndarray, mask: np.ndarray) -> float | None:
    background = _background(grey, mask)
    if background is None or not mask.any():
        return None
    return float(grey[mask].mean()) - background


def _deepest_plausible(
    grey: np.ndarray, prev: np.ndarray, c0: float | None, ratio: float
) -> tuple[int, int] | None:
    """Deepest pixel of ``prev`` that is bright enough on the new plane."""
    padded = np.pad(prev, 1)
    depth = ndi.distance_transform_edt(padded)[1:-1, 1:-1]
    if c0 is not None:
        background = _background(grey, prev)
        if background is not None:
            depth = np.where((grey - background) / c0 >= ratio, depth, 0.0)
    if depth.max() <= 0:
        return None
    row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(row), int(col)


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def propagate(
    predictor,
    volume: np.ndarray,
    start_plane: int,
    start_mask: np.ndarray,
    *,
    direction: int = +1,
    stop_plane: int | None = None,
    iou_threshold: float = 0.5,
    min_area: int = 16,
    max_growth: float = 1.5,
    min_contrast_ratio: float = 0.4,
    reference_contrast: float | None = None,
    **image_kwargs,
) -> Iterator[tuple[int, np.ndarray]]:
    """Carry a mask from ``start_plane`` to the next planes, one at a time.

    Parameters
    ----------
    predictor : BasePredictor
        Any predictor (``Predictor``, ``FakePredictor``, ...).
    volume : ndarray of shape (Z, Y, X), or (Z, Y, X, C) with ``channel_axis``
    start_plane : int
        The plane holding ``start_mask``; it is not yielded.
    start_mask : ndarray of bool, shape (Y, X)
    direction : {+1, -1}
        Towards higher or lower plane indices.
    stop_plane : int, optional
        Last plane to segment (inclusive); default: the end of the volume.
    iou_threshold, min_area, max_growth, min_contrast_ratio
        Stop rules, see the module notes.
    reference_contrast : float, optional
        The object's contrast the intensity rules compare with (``c0``); default:
        measured on ``start_plane`` under ``start_mask``. :func:`fill_between` and
        :func:`segment_from_anchors` pass the strongest of their anchors', so that
        a start on a dim end plane of the object does not switch the rules off.
    **image_kwargs
        ``channel_axis``, ``contrast_limits``, passed on to ``set_image``.

    Yields
    ------
    plane : int
    mask : ndarray of bool, shape (Y, X)

    Returns
    -------
    str
        Why it stopped (``StopIteration.value``).
    """
    volume = _check_volume(volume, image_kwargs.get("channel_axis"))
    n_planes = volume.shape[0]
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction}")
    if not 0 <= start_plane < n_planes:
        raise ValueError(f"start_plane {start_plane} is outside 0..{n_planes - 1}")
    if stop_plane is not None and not 0 <= stop_plane < n_planes:
        raise ValueError(f"stop_plane {stop_plane} is outside 0..{n_planes - 1}")
    kwargs = _image_kwargs(volume, image_kwargs)
    prev = np.asarray(start_mask, dtype=bool)
    plane_shape = _plane_rgb(volume, start_plane, kwargs).shape[:2]
    if prev.shape != plane_shape:
        raise ValueError(f"start_mask has shape {prev.shape}, a plane has shape {plane_shape}")
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    if max_growth <= 1:
        raise ValueError(f"max_growth must be above 1, got {max_growth}")
    return _propagate(
        predictor, volume, start_plane, prev, direction, stop_plane, iou_threshold,
        min_area, max_growth, min_contrast_ratio, reference_contrast, kwargs,
    )


def _propagate(
    predictor, volume, start_plane, prev, direction, stop_plane, iou_threshold,
    min_area, max_growth, ratio, c0, kwargs,
):
    """The generator behind :func:`propagate` (arguments already checked)."""
    if prev.sum() < min_area:
        return "vanished"
    if c0 is None:
        c0 = _contrast(_grey(_plane_rgb(volume, start_plane, kwargs)), prev)
    if c0 is not None and abs(c0) < MIN_START_CONTRAST:
        c0 = None
    last = volume.shape[0] - 1 if direction > 0 else 0
    if stop_plane is not None:
        if (stop_plane - start_plane) * direction <= 0:
            return "stop_plane"
        last = stop_plane
    plane = start_plane
    while plane != last:
        plane += direction
        rgb = _plane_rgb(volume, plane, kwargs)
        grey = _grey(rgb)
        point = _deepest_plausible(grey, prev, c0, ratio)
        if point is None:
            return "vanished"
        predictor.set_image(rgb, channel_axis=-1)
        predictor.set_prior_mask(prev)
        with _outline_settings(predictor, PROPAGATION_OUTLINE):
            mask = np.asarray(predictor.add_click(*point, positive=True), dtype=bool)
        area = int(mask.sum())
        if area < min_area:
            return "vanished"
        if _mask_iou(mask, prev) < iou_threshold:
            return "overlap"
        if area > max_growth * prev.sum():
            return "growth"
        if c0 is not None:
            contrast = _contrast(grey, mask)
            if contrast is not None and contrast / c0 < ratio:
                return "contrast"
        yield plane, mask
        prev = mask
    return "stop_plane" if stop_plane is not None else "end"


@contextmanager
def _outline_settings(predictor, settings: dict[str, Any]):
    """The predictor's outline step with ``settings`` within the block.

    Only the attributes the predictor has are set (other predictors are left as they are).
    """
    old = {name: getattr(predictor, name) for name in settings if hasattr(predictor, name)}
    for name in old:
        setattr(predictor, name, settings[name])
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(predictor, name, value)


def strongest_contrast(volume, anchors: dict[int, np.ndarray], **image_kwargs) -> float | None:
    """The anchor masks' contrast (see the module notes) of largest magnitude.

    Parameters
    ----------
    volume : ndarray of shape (Z, Y, X), or (Z, Y, X, C) with ``channel_axis``
    anchors : dict of int -> ndarray of bool, shape (Y, X)
        Plane index -> mask; empty masks are passed over.

    Returns
    -------
    float or None
        None when no anchor has a measurable contrast.
    """
    volume = _check_volume(volume, image_kwargs.get("channel_axis"))
    kwargs = _image_kwargs(volume, image_kwargs)
    best = None
    for plane, mask in anchors.items():
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            continue
        contrast = _contrast(_grey(_plane_rgb(volume, plane, kwargs)), mask)
        if contrast is not None and (best is None or abs(contrast) > abs(best)):
            best = contrast
    return best


def _with_reference_contrast(volume, anchors, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with ``reference_contrast`` set to the anchors' strongest, unless given."""
    if kwargs.get("reference_contrast") is not None:
        return kwargs
    image_kwargs = {k: kwargs[k] for k in ("channel_axis", "contrast_limits") if k in kwargs}
    return {**kwargs, "reference_contrast": strongest_contrast(volume, anchors, **image_kwargs)}


def fill_between(
    predictor,
    volume: np.ndarray,
    plane_a: int,
    mask_a: np.ndarray,
    plane_b: int,
    mask_b: np.ndarray,
    **kwargs,
) -> Iterator[tuple[int, np.ndarray]]:
    """Fill the planes strictly between two annotated planes from both ends.

    The two propagations advance in turns, one plane each, and stop where
    they meet, so each end fills about half of the gap; when one end stops
    (its stop rules), the other goes on alone up to the last free plane.
    Planes that neither end reaches are not yielded (no object there).

    Parameters
    ----------
    plane_a, plane_b : int
        The annotated planes (any order, not equal).
    mask_a, mask_b : ndarray of bool, shape (Y, X)
    **kwargs
        Stop rules and image arguments of :func:`propagate`.

    Yields
    ------
    plane : int
    mask : ndarray of bool, shape (Y, X)
    """
    if plane_a == plane_b:
        raise ValueError(f"plane_a and plane_b must differ, got {plane_a} twice")
    step = 1 if plane_b > plane_a else -1
    volume = _check_volume(volume, kwargs.get("channel_axis"))
    if abs(plane_b - plane_a) < 2:
        return iter(())
    kwargs = _image_kwargs(volume, kwargs)  # contrast limits once, not once per end
    kwargs = _with_reference_contrast(volume, {plane_a: mask_a, plane_b: mask_b}, kwargs)
    gen_a = propagate(predictor, volume, plane_a, mask_a, direction=step,
                      stop_plane=plane_b - step, **kwargs)
    gen_b = propagate(predictor, volume, plane_b, mask_b, direction=-step,
                      stop_plane=plane_a + step, **kwargs)
    return _meet_in_middle(gen_a, gen_b, plane_a, plane_b, step)


def _meet_in_middle(gen_a, gen_b, plane_a, plane_b, step):
    front = {"a": plane_a, "b": plane_b}  # last plane filled from each end
    active = {"a": gen_a, "b": gen_b}
    while active and (front["b"] - front["a"]) * step > 1:
        for side in ("a", "b"):
            if side not in active or (front["b"] - front["a"]) * step <= 1:
                continue
            try:
                plane, mask = next(active[side])
            except StopIteration:
                del active[side]
                continue
            front[side] = plane
            yield plane, mask


def affected_planes(anchor_planes, plane: int, n_planes: int) -> range:
    """Planes whose masks depend on the anchor at ``plane``.

    With annotated (anchor) planes sorted along Z, a plane's mask comes from
    the nearest anchors on both sides (or from the outermost anchor). A change
    at ``plane`` affects the planes strictly between its neighbouring anchors,
    or up to the volume's ends where it has none; ``plane`` itself excluded
    is left to the caller (it is an anchor).
    """
    others = sorted(p for p in anchor_planes if p != plane)
    below = [p for p in others if p < plane]
    above = [p for p in others if p > plane]
    low = below[-1] + 1 if below else 0
    high = above[0] if above else n_planes
    return range(low, high)


def segment_from_anchors(
    predictor,
    volume: np.ndarray,
    anchors: dict[int, np.ndarray],
    *,
    around: int | None = None,
    **kwargs,
) -> Iterator[tuple[int, np.ndarray]]:
    """Masks of the non-annotated planes from the annotated (anchor) planes.

    Between two consecutive anchors: :func:`fill_between`; beyond the
    outermost anchors: :func:`propagate` outwards. An anchor with an empty
    mask propagates nothing, so it cuts the object's Z range there.

    Parameters
    ----------
    anchors : dict of int -> ndarray of bool, shape (Y, X)
        Plane index -> the mask the user made there.
    around : int, optional
        Only redo the gaps next to this anchor (see :func:`affected_planes`);
        default: every gap.
    **kwargs
        Stop rules and image arguments of :func:`propagate`.

    Yields
    ------
    plane : int
    mask : ndarray of bool, shape (Y, X)
    """
    volume = _check_volume(volume, kwargs.get("channel_axis"))
    n_planes = volume.shape[0]
    planes = sorted(anchors)
    if not planes:
        return
    if around is not None and around not in anchors:
        raise ValueError(f"around={around} is not an anchor plane")
    kwargs = _image_kwargs(volume, kwargs)
    kwargs = _with_reference_contrast(volume, anchors, kwargs)
    gaps: list[tuple[int | None, int | None]] = [(None, planes[0])]
    gaps += list(zip(planes[:-1], planes[1:]))
    gaps.append((planes[-1], None))
    for low, high in gaps:
        if around is not None and around not in (low, high):
            continue
        if low is None:
            if high > 0:
                yield from propagate(predictor, volume, high, anchors[high], direction=-1, **kwargs)
        elif high is None:
            if low < n_planes - 1:
                yield from propagate(predictor, volume, low, anchors[low], direction=+1, **kwargs)
        else:
            yield from fill_between(predictor, volume, low, anchors[low], high, anchors[high],
                                    **kwargs)
