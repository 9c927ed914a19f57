"""Numpy-in, numpy-out interactive segmentation of one object at a time.

>>> predictor = Predictor.from_pretrained()          # doctest: +SKIP
>>> predictor.set_image(image)                       # doctest: +SKIP
>>> mask = predictor.add_click(120, 87, positive=True)   # doctest: +SKIP
>>> mask = predictor.add_click(130, 95, positive=False)  # doctest: +SKIP
>>> mask = predictor.undo_click()                    # doctest: +SKIP

Coordinates are (row, col) in pixels of the array given to ``set_image``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .constants import CLICK_RADIUS, IMAGE_SIZE, OUTSIDE_LOGIT
from .transforms import InputGeometry, SmoothNoisy, StretchToClick, to_rgb_uint8

MERGE_RULES = ("signed", "all")
CENTRE_DEPTH = 0.5  # share of a region's greatest depth: a negative click there drops it all
EDGE_SIGMA = 1.0  # image pixels: blur of the edge map the negative-click cut follows
# image axes flipped by Predictor(flip_ensemble=...), besides the image as it is: the
# 180-degree turn saves as many clicks as all three flips with decoder run 13, at a third of
# their cost (docs/evaluation.md, session 16)
ENSEMBLE_FLIPS = ((0, 1),)
FLIP_ENSEMBLE_RULES = ("first", "every")
REDECODE_RULES = ("first", "every")
FLIP_PASSES = ("all", "first", "last")
AUTO_SMOOTH_CNR = 4.0  # refine_boundary(smooth="auto") blurs below this contrast / pixel noise
REFINE_LEVEL = 0.35  # the predictor's outline level: from surround (0) to interior (1) colour
NECK_RATIO = 0.6  # split_at_necks: a neck thinner than this share of the shallower blob's depth splits
NECK_MAX_SIDE = 256  # split_at_necks works on the region's box subsampled to at most this side
BLEND_SAM_RULES = ("photo", "colour", "always")
SAM_AGREEMENT = 0.3  # Predictor(sam_agreement=...): weight of agreement when picking SAM's first mask
SAM_LARGE_SHARE = (0.05, 0.2)  # share of the view SAM's mask covers: sam_weight -> sam_weight_large
COLOUR_SPREAD = 16  # grey levels between a pixel's channels that make it coloured
COLOUR_SHARE = 0.1  # share of coloured pixels that makes an image a colour image
BLACK_CHANNEL = 16  # a channel whose 99th percentile stays below this is black (a composite's)

__all__ = [
    "Click",
    "BasePredictor",
    "Predictor",
    "Tiles",
    "ZoomIn",
    "SMALL_OBJECT_ZOOM",
    "NOISY_SMALL_IMAGE_SMOOTHING",
    "FAINT_OBJECT_STRETCH",
    "cut_at_negative_clicks",
    "edge_landscape",
    "is_colour_image",
    "keep_regions_at",
    "refine_boundary",
    "split_at_necks",
]


@dataclass(frozen=True)
class Click:
    """One user click: (row, col) in image pixels and its polarity."""

    row: float
    col: float
    positive: bool = True


class BasePredictor:
    """Click bookkeeping, validation and undo shared by every predictor.

    Subclasses implement ``_encode(rgb)`` (per-image work), ``_start(prior)``
    (new object, optional prior mask), ``_predict(click)`` (one click -> mask)
    and ``_get_state``/``_set_state`` (what undo restores).
    """

    def __init__(self) -> None:
        self._shape: tuple[int, int] | None = None
        self._clicks: list[Click] = []
        self._history: list[tuple[Any, np.ndarray | None]] = []
        self._mask: np.ndarray | None = None
        self._prior: np.ndarray | None = None

    # ----- public API -----
    @property
    def is_image_set(self) -> bool:
        return self._shape is not None

    @property
    def image_shape(self) -> tuple[int, int]:
        self._require_image()
        return self._shape

    @property
    def clicks(self) -> list[Click]:
        return list(self._clicks)

    @property
    def mask(self) -> np.ndarray | None:
        """The current mask (bool, image shape), or None before any click or prior."""
        return None if self._mask is None else self._mask.copy()

    def set_image(
        self,
        image: np.ndarray,
        *,
        channel_axis: int | None = None,
        contrast_limits: tuple[float, float] | None = None,
    ) -> None:
        """Set the image to segment and run the per-image work (cached).

        Parameters
        ----------
        image : ndarray of shape (M, N) or (M, N, C)
            Grey or RGB(A) image of any real dtype.
        channel_axis : int, optional
            Channel axis of an RGB image; ``None`` for grey.
        contrast_limits : (float, float), optional
            Intensities mapped to black and white; default: robust percentiles.
        """
        rgb = self._to_rgb(image, channel_axis, contrast_limits)
        self._encode(rgb)
        self._shape = rgb.shape[:2]
        self.reset()

    def encode_ahead(
        self,
        image: np.ndarray,
        *,
        channel_axis: int | None = None,
        contrast_limits: tuple[float, float] | None = None,
        around: tuple[float, float] | None = None,
        turned: bool = True,
    ) -> None:
        """Run ``image``'s per-image work into the cache, ahead of its first click.

        The current image, object and clicks stay as they are; a later
        :meth:`set_image` of the same image (same arguments) and its first click
        then skip the work done here. ``channel_axis`` and ``contrast_limits``
        are those of :meth:`set_image`; ``around`` (row, col): where the next
        first click is expected (e.g. the middle of the view), for predictors
        that segment large images in parts (:class:`Tiles`) to encode that part
        too; ``turned``: also the turned views a first click averages over
        (False where no click is expected, e.g. planes to propagate through).
        Predictors without a feature cache do nothing.
        """
        rgb = self._to_rgb(image, channel_axis, contrast_limits)
        self._encode_ahead(rgb, around, turned)

    def reset(self) -> None:
        """Forget the clicks, the mask and the prior mask; keep the image."""
        self._clicks = []
        self._history = []
        self._mask = None
        self._prior = None
        if self._shape is not None:
            self._start(None)

    def set_prior_mask(self, mask: np.ndarray | None) -> None:
        """Start a new object from an existing mask (e.g. a label or the previous slice).

        Clears the clicks. ``None`` or an empty mask starts from nothing.
        """
        self._require_image()
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != self._shape:
                raise ValueError(
                    f"prior mask has shape {mask.shape}, the image has shape {self._shape}"
                )
            mask = mask.astype(bool)
            if not mask.any():
                mask = None
        self._clicks = []
        self._history = []
        self._prior = mask
        self._mask = None if mask is None else mask.copy()
        self._start(mask)

    def add_click(self, row: float, col: float, positive: bool = True) -> np.ndarray:
        """Add a click and return the new mask, shape (M, N), bool."""
        self._require_image()
        if not (np.isfinite(row) and np.isfinite(col)):
            raise ValueError(f"click ({row}, {col}) is not a finite position")
        rows, cols = self._shape
        if not (0 <= row < rows and 0 <= col < cols):
            raise ValueError(
                f"click ({row}, {col}) lies outside the image of shape {self._shape}"
            )
        click = Click(float(row), float(col), bool(positive))
        self._history.append((self._get_state(), self._mask))
        self._clicks.append(click)
        self._mask = np.asarray(self._predict(click), dtype=bool)
        return self._mask.copy()

    def undo_click(self) -> np.ndarray | None:
        """Remove the last click and return the mask as it was before it."""
        if not self._clicks:
            raise RuntimeError("there is no click to undo")
        state, mask = self._history.pop()
        self._clicks.pop()
        self._set_state(state)
        self._mask = mask
        return None if mask is None else mask.copy()

    # ----- to implement -----
    def _to_rgb(self, image: np.ndarray, channel_axis, contrast_limits) -> np.ndarray:
        """The (M, N, 3) uint8 image the per-image work sees."""
        return to_rgb_uint8(image, channel_axis=channel_axis, contrast_limits=contrast_limits)

    def _encode(self, rgb: np.ndarray) -> None:
        raise NotImplementedError

    def _start(self, prior: np.ndarray | None) -> None:
        raise NotImplementedError

    def _predict(self, click: Click) -> np.ndarray:
        raise NotImplementedError

    def _encode_ahead(
        self, rgb: np.ndarray, around: tuple[float, float] | None = None, turned: bool = True
    ) -> None:
        pass

    def _get_state(self) -> Any:
        return None

    def _set_state(self, state: Any) -> None:
        pass

    def _require_image(self) -> None:
        if self._shape is None:
            raise RuntimeError("call set_image(image) before adding clicks")


class _FeatureCache:
    """Least-recently-used cache of per-image features, bounded by entry count."""

    def __init__(self, max_entries: int = 8) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, Any] = OrderedDict()

    def get(self, key: str):
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: str, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()

    def entry_nbytes(self) -> int:
        """Bytes held by the largest entry (0 while the cache is empty)."""
        return max((_nbytes(v) for v in self._items.values()), default=0)

    def grow_to(self, n_entries: int, budget_bytes: int) -> int:
        """Hold up to ``n_entries`` entries while they fit in ``budget_bytes``; never shrinks.

        The entry size is measured on the entries held, so call this after one
        image was encoded. Returns the new ``max_entries``.
        """
        per_entry = self.entry_nbytes()
        if per_entry > 0:
            self.max_entries = max(self.max_entries, min(n_entries, budget_bytes // per_entry))
        return self.max_entries


def _nbytes(obj: Any, depth: int = 0) -> int:
    """Bytes held by tensors/arrays inside ``obj`` (tuples, dicts, dataclasses, namedtuples)."""
    if depth > 4 or obj is None:
        return 0
    if hasattr(obj, "element_size") and hasattr(obj, "numel"):
        return int(obj.element_size() * obj.numel())
    if hasattr(obj, "nbytes") and not isinstance(obj, (str, bytes)):
        return int(obj.nbytes)
    if isinstance(obj, (list, tuple)):
        return sum(_nbytes(o, depth + 1) for o in obj)
    if isinstance(obj, dict):
        return sum(_nbytes(o, depth + 1) for o in obj.values())
    if hasattr(obj, "__dict__"):
        return sum(_nbytes(o, depth + 1) for o in vars(obj).values())
    return 0


def image_key(rgb: np.ndarray, model_id: str) -> str:
    """Cache key from the image content, its shape and the model identity."""
    digest = hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=16)
    digest.update(str(rgb.shape).encode())
    digest.update(model_id.encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class ZoomIn:
    """When and where the predictor zooms in on a small object.

    From the second click on (from the first with ``first_click``; at once,
    given a prior mask, with ``prior``), an object whose window is small is
    segmented in a crop of the image resized to the full network input, so that
    a nucleus a few tokens wide is seen at a scale the decoder resolves. The
    crop is re-encoded once (features are cached) and the object's clicks are
    replayed in it. Clicks outside the crop, or a mask that reaches the crop's
    inner border, move the window.

    Parameters
    ----------
    expansion : float
        Crop side as a multiple of the longest side of the bounding box of the
        current mask and clicks.
    min_side : int
        Smallest crop side in image pixels.
    max_fraction : float
        No zoom when the crop side would exceed this fraction of the image's
        longest side (the object is large enough already).
    below : float, optional
        Zoom only an object whose box (mask and clicks) spans less than this
        share of the side of the view it is segmented in unzoomed (the whole
        image, or its tile; the network input resizes that view). None: any
        object ``max_fraction`` allows.
    first_click : bool
        Decide right after the first click, from its mask (the click replayed
        in the crop), instead of at the second click.
    prior : bool
        Zoom on a prior mask (:meth:`BasePredictor.set_prior_mask`, e.g. a plane
        propagated to); False: an object started from a prior stays unzoomed.
    """

    expansion: float = 4.0
    min_side: int = 64
    max_fraction: float = 0.6
    below: float | None = None
    first_click: bool = False
    prior: bool = True

    def __post_init__(self) -> None:
        if not self.expansion >= 1:
            raise ValueError(f"expansion must be at least 1, got {self.expansion}")
        if not self.min_side >= 1:
            raise ValueError(f"min_side must be at least 1 px, got {self.min_side}")
        if not 0 < self.max_fraction <= 1:
            raise ValueError(f"max_fraction must be in (0, 1], got {self.max_fraction}")
        if self.below is not None and not 0 < self.below <= 1:
            raise ValueError(f"below must be in (0, 1], got {self.below}")

    def window(
        self, mask: np.ndarray | None, clicks: list[Click], shape: tuple[int, int],
        view_side: int | None = None,
    ) -> tuple[int, int, int, int] | None:
        """Crop (top, bottom, left, right) around ``mask`` and ``clicks``, or None for no zoom.

        ``view_side``: the longest side of the view the object is segmented in
        unzoomed (for ``below``; default: the image's).
        """
        extent = _extent(mask, clicks)
        if extent is None:
            return None
        r0, r1, c0, c1 = extent
        span = max(r1 - r0, c1 - c0)
        if self.below is not None and span >= self.below * (view_side or max(shape)):
            return None
        side = max(self.expansion * span, self.min_side)
        if side > self.max_fraction * max(shape):
            return None
        side = int(np.ceil(side))
        top = int(round((r0 + r1 - side) / 2))
        left = int(round((c0 + c1 - side) / 2))
        top = min(max(top, 0), max(shape[0] - side, 0))
        left = min(max(left, 0), max(shape[1] - side, 0))
        return top, min(top + side, shape[0]), left, min(left + side, shape[1])


# the Predictor's default: objects spanning under 48 px of the 1024-px network input (3 tokens)
# after their first click are segmented in a crop of 96 px or more; chosen on generated nuclei
# (docs/evaluation.md, session 27)
SMALL_OBJECT_ZOOM = ZoomIn(
    expansion=8.0, min_side=96, max_fraction=0.6, below=48 / 1024, first_click=True, prior=False
)

# the Predictor's default: zoom crops of faint objects stretched to the first click; chosen on
# generated faint nuclei (docs/evaluation.md, session 29)
FAINT_OBJECT_STRETCH = StretchToClick(level=0.6, faint=0.075, min_contrast=3.0, min_snr=1.0)

# chosen on nuc1135 (a training volume) and generated noisy nuclei; opt-in: it cost clicks in the
# slice-by-slice 3-D task (docs/evaluation.md, session 28)
NOISY_SMALL_IMAGE_SMOOTHING = SmoothNoisy(threshold=0.1, min_upscale=8.0, sigma=2.0)


@dataclass(frozen=True)
class Tiles:
    """Where the predictor segments an object of an image larger than the network input.

    The network sees its input at ``side`` pixels (the longest image side is
    resized to it), so on a 2048-px image a 30-px nucleus would shrink to 15 px.
    Instead, an object of such an image is segmented at the image's own
    resolution in a tile: a ``side`` x ``side`` crop, on a grid of tiles
    ``stride`` apart (so that the objects of one region share a tile's cached
    encoding). The tile is the one whose border lies furthest from the object's
    clicks and mask, or a tile already encoded for the image that holds them
    with ``reuse_margin`` to spare; the object stays in its tile while they keep
    ``margin`` pixels from the tile's inner borders, and moves to another tile,
    or to the whole image when none holds it so, once they come nearer.

    Parameters
    ----------
    side : int
        Tile side in image pixels; images no larger are segmented whole.
    stride : int, optional
        Distance between neighbouring tiles; default ``side // 2``.
    margin : int
        Pixels the object keeps from a tile's inner borders.
    reuse_margin : int
        Pixels a new object's clicks and mask keep from the inner borders of a
        tile already encoded, for that tile to be taken.
    """

    side: int = IMAGE_SIZE
    stride: int | None = None
    margin: int = 32
    reuse_margin: int = 128

    def __post_init__(self) -> None:
        if not self.side >= 64:
            raise ValueError(f"side must be at least 64 px, got {self.side}")
        if self.stride is not None and not 1 <= self.stride <= self.side:
            raise ValueError(f"stride must be in [1, side], got {self.stride}")
        if not 1 <= self.margin < self.side // 2:
            raise ValueError(f"margin must be in [1, side / 2), got {self.margin}")
        if not self.margin <= self.reuse_margin < self.side // 2:
            raise ValueError(
                f"reuse_margin must be in [margin, side / 2), got {self.reuse_margin}"
            )

    def starts(self, length: int) -> list[int]:
        """Start offsets of the tiles along an image axis of ``length`` pixels."""
        if length <= self.side:
            return [0]
        stride = self.stride or self.side // 2
        last = length - self.side
        return sorted(set(range(0, last, stride)) | {last})

    def window(
        self,
        mask: np.ndarray | None,
        clicks: Sequence[Click],
        shape: tuple[int, int],
        current: tuple[int, int, int, int] | None = None,
        encoded: Sequence[tuple[int, int, int, int]] = (),
    ) -> tuple[int, int, int, int] | None:
        """Tile (top, bottom, left, right) for ``mask`` and ``clicks``, or None for the whole image.

        ``current``: the tile the object is in, kept while it holds the object
        with ``margin`` to spare. ``encoded``: tiles already encoded, taken first
        (the one with the most room) where they hold it with ``reuse_margin``.
        """
        if max(shape) <= self.side:
            return None
        box = _extent(mask, clicks)
        if box is None:
            return None
        extent = ((box[0], box[1]), (box[2], box[3]))

        def room(tile):
            spans = ((tile[0], tile[1]), (tile[2], tile[3]))
            return min(
                _room(lo, hi, start, stop, length)
                for (lo, hi), (start, stop), length in zip(extent, spans, shape)
            )

        if current is not None and room(current) >= self.margin:
            return current
        reusable = [tile for tile in encoded if room(tile) >= self.reuse_margin]
        if reusable:
            return max(reusable, key=room)
        tile = []
        for (lo, hi), length in zip(extent, shape):
            span = min(self.side, length)
            start = max(self.starts(length), key=lambda s: _room(lo, hi, s, s + span, length))
            if _room(lo, hi, start, start + span, length) < self.margin:
                return None
            tile += [start, start + span]
        return tuple(tile)


def _extent(mask: np.ndarray | None, clicks: Sequence[Click]) -> tuple[int, int, int, int] | None:
    """Bounding box (top, bottom, left, right) of ``mask`` and ``clicks``; None if both are empty."""
    rows = [int(c.row) for c in clicks]
    cols = [int(c.col) for c in clicks]
    if mask is not None and mask.any():
        r = np.flatnonzero(mask.any(1))
        c = np.flatnonzero(mask.any(0))
        rows += [int(r[0]), int(r[-1])]
        cols += [int(c[0]), int(c[-1])]
    if not rows:
        return None
    return min(rows), max(rows) + 1, min(cols), max(cols) + 1


def _room(lo: int, hi: int, start: int, stop: int, length: int) -> float:
    """Pixels between [lo, hi) and the inner borders of [start, stop) (image borders: no limit)."""
    before = lo - start if start > 0 else np.inf
    after = stop - hi if stop < length else np.inf
    return min(before, after)


def keep_regions_at(logits, seeds: list[tuple[int, int]], radius: int = CLICK_RADIUS):
    """Logits with every foreground region that holds no seed set to OUTSIDE_LOGIT.

    Parameters
    ----------
    logits : Tensor of shape (1, 1, T, T)
    seeds : list of (row, col)
        Positive clicks on the grid; a region (8-connected, ``logits > 0``) is kept
        when it reaches within ``radius`` (the click disc) of one of them.

    Returns
    -------
    Tensor of shape (1, 1, T, T)
        ``logits`` itself when there is no seed, when no region is reached (the
        decoder missed every click: nothing to choose by), or when nothing is dropped.
    """
    from scipy import ndimage as ndi

    if not seeds:
        return logits
    fg, box = _foreground(logits)
    if box is None:
        return logits
    r0, r1, c0, c1 = box
    regions, n = ndi.label(fg[r0:r1, c0:c1], structure=np.ones((3, 3)))
    if n <= 1:
        return logits
    keep = set()
    for row, col in seeds:
        keep.update(_labels_near(regions, row - r0, col - c0, radius).tolist())
    if not keep or len(keep) == n:
        return logits
    return _set_outside(logits, box, (regions > 0) & ~np.isin(regions, list(keep)))


def split_at_necks(
    logits,
    seed: tuple[int, int],
    ratio: float = NECK_RATIO,
    max_side: int = NECK_MAX_SIDE,
    extent: tuple[int, int] | None = None,
):
    """Logits with the part of the seed's region beyond a narrow neck set to OUTSIDE_LOGIT.

    The region (8-connected, ``logits > 0``) that holds ``seed`` is cut into blobs by a
    watershed of its distance to the background, one blob per depth maximum that stands
    out by a tenth of the region's greatest depth. Two touching blobs stay joined when
    the depth where they meet (half the neck's width) is at least ``ratio`` times the
    shallower blob's depth. The blobs joined to the seed's are kept: e.g. a nucleus
    without the touching nucleus its first mask leaked into, through the narrow waist
    between the two. A region cut by the image's edge is taken to go on beyond it
    (mirrored), so the edge makes no neck.

    Parameters
    ----------
    logits : Tensor of shape (1, 1, T, T)
    seed : (int, int)
        A positive click on the grid.
    ratio : float
        The neck's half-width over the shallower blob's depth below which they split.
    max_side : int
        The region's box is subsampled to at most this side first (the cost of the
        watershed).
    extent : (int, int), optional
        Rows and columns of the grid the image covers (default: all of it).

    Returns
    -------
    Tensor of shape (1, 1, T, T)
        ``logits`` itself when the seed is on the background or nothing is split off.
    """
    from scipy import ndimage as ndi

    fg, box = _foreground(logits)
    if box is None:
        return logits
    r0, r1, c0, c1 = box
    row, col = seed[0] - r0, seed[1] - c0
    if not (0 <= row < r1 - r0 and 0 <= col < c1 - c0) or not fg[seed[0], seed[1]]:
        return logits
    regions, _ = ndi.label(fg[r0:r1, c0:c1], structure=np.ones((3, 3)))
    region = regions == regions[row, col]
    step = max(1, -(-max(region.shape) // max_side))
    rows, cols = extent or fg.shape
    open_sides = (r0 == 0, r1 >= rows, c0 == 0, c1 >= cols)
    keep = _blobs_joined_to(region[::step, ::step], (row // step, col // step), ratio, open_sides)
    if keep is None:
        return logits
    keep = np.repeat(np.repeat(keep, step, axis=0), step, axis=1)[: region.shape[0], : region.shape[1]]
    drop = region & ~keep
    if not drop.any():
        return logits
    return _set_outside(logits, box, drop)


def _blobs_joined_to(
    region: np.ndarray, seed: tuple[int, int], ratio: float, open_sides=(False,) * 4
) -> np.ndarray | None:
    """The blobs of ``region`` joined to the seed's through necks wide enough (None: one blob).

    ``open_sides`` (top, bottom, left, right): where the region goes on beyond its box.
    """
    from scipy import ndimage as ndi
    from scipy.sparse.csgraph import connected_components
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    if not region[seed]:
        return None
    depth = _depth(region, open_sides)
    markers, n = ndi.label(h_maxima(depth, max(1.0, 0.1 * depth.max())), structure=np.ones((3, 3)))
    if n < 2:
        return None
    blobs = watershed(-depth, markers, mask=region)
    blob_depth = np.concatenate([[0.0], ndi.maximum(depth, blobs, index=np.arange(1, n + 1))])
    neck = np.zeros((n + 1, n + 1))
    rows, cols = blobs.shape
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):  # each pair of 8-neighbours once
        a = (slice(0, rows - dr), slice(max(0, -dc), cols - max(0, dc)))
        b = (slice(dr, rows), slice(max(0, dc), cols - max(0, -dc)))
        touch = (blobs[a] > 0) & (blobs[b] > 0) & (blobs[a] != blobs[b])
        i, j = blobs[a][touch], blobs[b][touch]
        np.maximum.at(neck, (np.minimum(i, j), np.maximum(i, j)), np.minimum(depth[a], depth[b])[touch])
    joined = (neck > 0) & (neck >= ratio * np.minimum.outer(blob_depth, blob_depth))
    _, group = connected_components(joined[1:, 1:], directed=False)
    keep = group == group[blobs[seed] - 1]
    if keep.all():
        return None
    return np.isin(blobs, np.flatnonzero(keep) + 1)


def _depth(region: np.ndarray, open_sides) -> np.ndarray:
    """Distance to the background; beyond an open side of the box the region is mirrored."""
    from scipy import ndimage as ndi

    ph, pw = region.shape
    big = np.pad(region, ((ph, ph), (pw, pw)), mode="symmetric")
    top, bottom, left, right = open_sides
    if not top:
        big[:ph] = False
    if not bottom:
        big[-ph:] = False
    if not left:
        big[:, :pw] = False
    if not right:
        big[:, -pw:] = False
    return ndi.distance_transform_edt(big)[ph:-ph, pw:-pw]


def _labels_near(regions: np.ndarray, row: int, col: int, radius: int) -> np.ndarray:
    """The labels (> 0) of ``regions`` within the square of half-side ``radius`` at (row, col)."""
    window = regions[
        max(row - radius, 0) : max(row + radius + 1, 0), max(col - radius, 0) : max(col + radius + 1, 0)
    ]
    return np.unique(window[window > 0])


def _foreground(logits) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """The foreground (``logits > 0``) of (1, 1, T, T) logits and its box (None if empty)."""
    from .model.common import mask_bbox

    fg = logits[0, 0] > 0
    return fg.cpu().numpy(), mask_bbox(fg)


def _set_outside(logits, box: tuple[int, int, int, int], drop: np.ndarray):
    """A copy of ``logits`` with OUTSIDE_LOGIT where ``drop`` (a crop to ``box``) is set."""
    import torch

    r0, r1, c0, c1 = box
    out = logits.clone()
    crop = out[0, 0, r0:r1, c0:c1]
    crop[torch.from_numpy(drop).to(out.device)] = OUTSIDE_LOGIT
    return out


def cut_at_negative_clicks(
    logits,
    positive: list[tuple[int, int]],
    negative: list[tuple[int, int]],
    landscape,
    compactness: float = 0.003,
):
    """Logits with the foreground parts that fall to a negative click set to OUTSIDE_LOGIT.

    The foreground (``logits > 0``) is split by a marker watershed on ``landscape``
    (an edge map: high on object borders), flooded from the clicks that lie in
    it; what the negative clicks flood is dropped. A negative click that the
    decoder left inside the mask thus removes the part of the mask it belongs to -
    the neighbouring nucleus a mask leaked into, up to the edge between the two.

    Parameters
    ----------
    logits : Tensor of shape (1, 1, T, T)
    positive, negative : list of (row, col)
        The object's clicks on the grid.
    landscape : ndarray of shape (T, T), or a callable returning one
        Edge strength on the grid (see :func:`edge_landscape`); a callable is
        called only when a cut is made.
    compactness : float
        Of the compact watershed (:func:`skimage.segmentation.watershed`), with the
        landscape scaled to 1 at its 99th percentile in the foreground: a strong edge
        weighs as much as ``1 / compactness`` grid pixels of distance. A plain
        watershed (0) lets a click on a textured nucleus keep only its own speckle;
        chosen on generated nuclei (``docs/evaluation.md``).

    Returns
    -------
    Tensor of shape (1, 1, T, T)
        ``logits`` itself unless a negative click lies in the foreground and a
        positive one does too, or there is no positive click at all.

    Notes
    -----
    With no positive click (a mask that came as a prior: propagated from the
    next plane, or loaded), each foreground region a negative click falls in
    stands in for the missing positive click with its deepest pixel: a click
    near the middle of the region (at least ``CENTRE_DEPTH`` of the region's
    greatest depth) drops the whole region - the mask is wrong there - and
    a click off the middle cuts its part away from the middle as above.
    """
    from skimage.segmentation import watershed

    fg, box = _foreground(logits)
    neg = [(r, c) for r, c in negative if fg[r, c]]
    if neg and not positive:
        logits, positive, negative = _stand_in_for_positive(logits, fg, box, neg)
        fg, box = _foreground(logits)
        neg = [(r, c) for r, c in negative if fg[r, c]]
    pos = [(r, c) for r, c in positive if fg[r, c]]
    if not neg or not pos:
        return logits
    if callable(landscape):
        landscape = landscape()
    r0, r1, c0, c1 = box
    markers = np.zeros((r1 - r0, c1 - c0), dtype=np.int32)
    for (r, c), label in [(p, 1) for p in pos] + [(n, 2) for n in neg]:
        markers[r - r0, c - c0] = label
    inside = fg[r0:r1, c0:c1]
    crop = landscape[r0:r1, c0:c1]
    scale = np.percentile(crop[inside], 99) or 1.0
    flooded = watershed(crop / scale, markers, mask=inside, compactness=compactness)
    return _set_outside(logits, box, flooded == 2)


def _stand_in_for_positive(logits, fg, box, negative):
    """Drop the foreground regions clicked near their middle; the deepest pixel of the others.

    Returns the logits, the stand-in positive clicks and the negative clicks left
    (grid coordinates), for :func:`cut_at_negative_clicks`.
    """
    from scipy import ndimage as ndi

    r0, r1, c0, c1 = box
    regions, _ = ndi.label(fg[r0:r1, c0:c1], structure=np.ones((3, 3)))
    depth = ndi.distance_transform_edt(np.pad(regions > 0, 1))[1:-1, 1:-1]
    drop = np.zeros(regions.shape, dtype=bool)
    stand_ins, left = [], []
    for label in sorted({int(regions[r - r0, c - c0]) for r, c in negative}):
        region = regions == label
        clicks = [(r, c) for r, c in negative if regions[r - r0, c - c0] == label]
        region_depth = np.where(region, depth, 0.0)
        deepest = np.unravel_index(int(np.argmax(region_depth)), region.shape)
        if max(region_depth[r - r0, c - c0] for r, c in clicks) >= CENTRE_DEPTH * region_depth[deepest]:
            drop |= region
        else:
            stand_ins.append((int(deepest[0]) + r0, int(deepest[1]) + c0))
            left += clicks
    if drop.any():
        logits = _set_outside(logits, box, drop)
    return logits, stand_ins, left


def merge_at_click(
    logits, previous, click: tuple[int, int], radius: int = CLICK_RADIUS, grow_anywhere: bool = False
):
    """The previous logits, with the new ones only where the mask changed at the click.

    Progressive merge (FocalClick, Chen et al. 2022): of the pixels whose label the
    new prediction flips, only the regions (8-connected) that reach the click disc
    take the new prediction; the rest of the mask stays as it was. A click thus
    corrects the error it was placed in without undoing earlier corrections
    elsewhere.

    Parameters
    ----------
    logits, previous : Tensor of shape (1, 1, T, T)
        The new prediction and the one before the click.
    click : (row, col)
        The new click on the grid.
    radius : int
        A changed region is taken when it reaches within ``radius`` of the click.
    grow_anywhere : bool
        Also take every pixel the new prediction adds to the mask, wherever it is.

    Returns
    -------
    Tensor of shape (1, 1, T, T)
        ``logits`` itself when nothing changed near the click (the decoder ignored
        it: the whole new prediction is taken), else the merge.
    """
    import torch
    from scipy import ndimage as ndi

    from .model.common import mask_bbox

    previous = previous.to(logits)
    new_fg = logits[0, 0] > 0
    changed = new_fg != (previous[0, 0] > 0)
    box = mask_bbox(changed)
    if box is None:
        return logits
    r0, r1, c0, c1 = box
    regions, _ = ndi.label(changed[r0:r1, c0:c1].cpu().numpy(), structure=np.ones((3, 3)))
    keep = _labels_near(regions, click[0] - r0, click[1] - c0, radius)
    if keep.size == 0:
        return logits
    take = new_fg & changed if grow_anywhere else torch.zeros_like(changed)
    take[r0:r1, c0:c1] |= torch.from_numpy(np.isin(regions, keep)).to(take.device)
    return torch.where(take, logits, previous)


def edge_landscape(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gradient magnitude of the grey image after a Gaussian blur of ``sigma`` pixels.

    Parameters
    ----------
    image : ndarray of shape (M, N) or (M, N, C)

    Returns
    -------
    ndarray of shape (M, N), float32
    """
    from scipy import ndimage as ndi

    grey = np.asarray(image, dtype=np.float32)
    if grey.ndim == 3:
        grey = grey.mean(-1)
    return ndi.gaussian_gradient_magnitude(grey, sigma).astype(np.float32)


def refine_boundary(
    mask: np.ndarray,
    image: np.ndarray,
    *,
    band: int = 1,
    surround: tuple[int, int] = (2, 5),
    min_contrast: float = 1.0,
    level: float = 0.5,
    smooth: float | str = 0.0,
    shrink: bool = False,
    clicks: Sequence[tuple[float, float, bool]] = (),
) -> np.ndarray:
    """Give the pixels of the mask's boundary band to the object or its surround by colour.

    The pixels within ``band`` of the mask's outline outside it (and inside
    it, with ``shrink``) join the mask where their colour is past ``level`` of
    the way from the median colour of a ring around the mask (``surround``
    pixels out) to the median colour of its interior (at the default 0.5:
    nearer the interior's), and with ``shrink`` leave it where it is not: the
    outline moves towards that level of a blurred edge. Clicks on the band
    move the level for this object (``clicks``).
    Nothing changes where the object does not stand out: the
    interior-surround distance is below ``min_contrast`` times the interior's
    spread (its per-channel standard deviations, as a vector norm).

    Parameters
    ----------
    mask : ndarray of shape (M, N), bool
    image : ndarray of shape (M, N) or (M, N, C)
    band : int
        Half-width of the band in pixels.
    surround : (int, int)
        Inner and outer distance of the surround ring in pixels.
    min_contrast : float
        Least distance of the interior and surround medians, in units of the
        interior's spread, for anything to change.
    level : float
        Where between the surround's colour (0) and the interior's (1) the
        outline lies: a band pixel belongs to the object when its colour is
        past this fraction of the way (for grey images; in colour, by the
        difference of its distances to the two). Default half-way.
    smooth : float or 'auto'
        Gaussian blur (pixels) of the image before the colours are compared,
        against noise; 0: none. ``'auto'``: a 1-pixel blur where the
        interior-surround distance is below :data:`AUTO_SMOOTH_CNR` times the
        pixel noise near the outline (the robust spread of each pixel's
        difference from its 3x3 mean), none elsewhere.
    shrink : bool
        Also take band pixels out of the mask (default: only add them; on the
        training nuclei of PlantSeg, whose outlines lie outside the half-way
        intensity, shrinking cost clicks, ``docs/evaluation.md``, session 10).
    clicks : sequence of (row, col, positive)
        The object's clicks (image pixels). Those on the band tell where the
        object's outline lies in colour: a positive one lowers the bar for
        joining to its pixel's colour; a negative one raises the bar for joining
        above its pixel's colour, and band pixels inside the mask whose colour
        is no nearer the interior's than its leave the mask; where positive and
        negative clicks contradict, the bars stay at ``level``. Every click
        within ``band + 1`` of the outline keeps its own pixel on its side.

    Returns
    -------
    ndarray of shape (M, N), bool
        A new mask (``mask`` itself if nothing applies).
    """
    from scipy import ndimage as ndi

    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie between 0 and 1, got {level!r}")
    mask = np.asarray(mask, dtype=bool)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return mask
    margin = max(surround[1], band) + 1
    r0, r1 = max(rows[0] - margin, 0), min(rows[-1] + margin + 1, mask.shape[0])
    c0, c1 = max(cols[0] - margin, 0), min(cols[-1] + margin + 1, mask.shape[1])
    crop = mask[r0:r1, c0:c1]
    pixels = np.asarray(image, dtype=np.float32)[r0:r1, c0:c1]
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    # taxicab distances: the same sets as iterated binary erosions / dilations, in one pass
    to_mask = ndi.distance_transform_cdt(~crop, metric="taxicab")
    to_outside = ndi.distance_transform_cdt(np.pad(crop, 1), metric="taxicab")[1:-1, 1:-1]
    interior = to_outside > band + 1
    ring = (to_mask > surround[0]) & (to_mask <= surround[1])
    if interior.sum() < 4 or ring.sum() < 4:
        return mask
    stats = None  # (inside, outside, spread) of the unblurred pixels, once computed
    if smooth == "auto":
        stats = _colour_stats(pixels, interior, ring)
        noisy = np.linalg.norm(stats[0] - stats[1]) < AUTO_SMOOTH_CNR * _pixel_noise(
            pixels, interior | ring
        )
        smooth = 1.0 if noisy else 0.0
    elif isinstance(smooth, str):
        raise ValueError(f"smooth must be a number or 'auto', got {smooth!r}")
    if smooth > 0:
        pixels = ndi.gaussian_filter(pixels, (smooth, smooth, 0))
        stats = None
    if stats is None:
        stats = _colour_stats(pixels, interior, ring)
    inside, outside, spread = stats
    if np.linalg.norm(inside - outside) < min_contrast * max(spread, 1e-6):
        return mask
    near = []  # the clicks' pixels (row, col, positive) in the crop within band + 1 of the outline
    for row, col, positive in clicks:
        r, c = int(round(row)) - r0, int(round(col)) - c0
        in_crop = 0 <= r < crop.shape[0] and 0 <= c < crop.shape[1]
        if in_crop and to_mask[r, c] <= band + 1 and to_outside[r, c] <= band + 1:
            near.append((r, c, bool(positive)))
    edge = (to_mask <= band) & (to_outside <= band)
    on_band = [(r, c, p) for r, c, p in near if edge[r, c]]

    def nearer_inside(colours):  # > 0 where nearer the interior's colour
        return np.linalg.norm(colours - outside, axis=-1) - np.linalg.norm(colours - inside, axis=-1)

    # a band pixel outside the mask joins above join_bar, one inside stays above keep_bar
    level_bar = (2 * level - 1) * np.linalg.norm(inside - outside)
    join_bar, keep_bar = level_bar, (level_bar if shrink else -np.inf)
    if on_band:
        scores = nearer_inside(pixels[tuple(np.array([(r, c) for r, c, _ in on_band]).T)])
        lowest_in = min((s for s, (_, _, p) in zip(scores, on_band) if p), default=np.inf)
        highest_out = max((s for s, (_, _, p) in zip(scores, on_band) if not p), default=-np.inf)
        if highest_out < lowest_in:  # else the colours contradict: no bar moves
            below_lowest_in = np.nextafter(lowest_in, -np.inf)
            join_bar = min(max(join_bar, highest_out), below_lowest_in)
            keep_bar = min(max(keep_bar, highest_out), below_lowest_in)
    score = nearer_inside(pixels[edge])
    out = mask.copy()
    out[r0:r1, c0:c1][edge] = score > np.where(crop[edge], keep_bar, join_bar)
    for r, c, positive in near:
        out[r + r0, c + c0] = positive
    return out


def _colour_stats(
    pixels: np.ndarray, interior: np.ndarray, ring: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Median colour of the interior and of the ring, and the interior's spread (norm of stds)."""
    interior_colours = _every_nth(pixels, interior)
    inside = np.median(interior_colours, axis=0)
    outside = np.median(_every_nth(pixels, ring), axis=0)
    return inside, outside, float(np.linalg.norm(interior_colours.std(axis=0)))


def _pixel_noise(pixels: np.ndarray, where: np.ndarray) -> float:
    """Robust standard deviation (norm over channels) of pixel minus 3x3 mean at ``where``."""
    from scipy import ndimage as ndi

    residual = _every_nth(pixels - ndi.uniform_filter(pixels, (3, 3, 0)), where)
    mad = np.median(np.abs(residual - np.median(residual, axis=0)), axis=0)
    return float(np.linalg.norm(1.4826 * mad))


def _every_nth(pixels: np.ndarray, where: np.ndarray, cap: int = 20_000) -> np.ndarray:
    """The (K, C) colours of ``pixels`` at ``where``, thinned to at most ~``cap`` (statistics)."""
    rows, cols = np.nonzero(where)
    step = max(1, -(-rows.size // cap))
    return pixels[rows[::step], cols[::step]]


def _inside(box: tuple[int, int, int, int], row: float, col: float) -> bool:
    top, bottom, left, right = box
    return top <= row < bottom and left <= col < right


def _mask_ious(masks, mask):
    """IoU of each of ``masks`` (1, K, H, W) bool with ``mask`` (1, H, W) bool: (K,) float."""
    intersection = (masks & mask).flatten(2).sum(-1)[0]
    union = (masks | mask).flatten(2).sum(-1)[0]
    return intersection.float() / union.clamp(min=1).float()


def _with_probability(logits, probability):
    """A float copy of ``logits`` (1, 1, S, S) whose top-left part is ``probability``'s logit.

    ``probability`` (1, 1, rows, cols) covers the resized image; the padding keeps its logits.
    """
    import torch

    rows, cols = probability.shape[-2:]
    out = logits.clone().float()
    out[..., :rows, :cols] = torch.logit(probability, eps=1e-6)
    return out


def is_colour_image(
    rgb: np.ndarray,
    spread: int = COLOUR_SPREAD,
    share: float = COLOUR_SHARE,
    black: int = BLACK_CHANNEL,
) -> bool:
    """Whether an RGB image is in colour like a photograph or a stained slide.

    Grey copied to three channels is not, nor is a composite of one or two
    fluorescence stains shown in primary colours (e.g. nuclei in green, or
    nuclei in blue and membranes in green), which leaves a channel black.
    Composites of three stains, or of colours that mix channels, are not told
    from photographs.

    Parameters
    ----------
    rgb : ndarray of shape (M, N, 3), uint8
    spread : int
        Difference in grey levels between a pixel's largest and smallest channel
        above which the pixel counts as coloured (JPEG noise on a grey photo stays
        below the default).
    share : float
        Share of coloured pixels (every 4th row and column) above which the image
        counts as colour.
    black : int
        A channel whose 99th percentile (over the same pixels) lies below this
        is black, and the image a composite.

    Returns
    -------
    bool
    """
    return _colour_kind(rgb, spread, share, black) == "colour"


def _colour_kind(
    rgb: np.ndarray,
    spread: int = COLOUR_SPREAD,
    share: float = COLOUR_SHARE,
    black: int = BLACK_CHANNEL,
) -> str:
    """'grey' (too few coloured pixels), 'composite' (a black channel) or 'colour'
    (:func:`is_colour_image`'s rule and parameters)."""
    sample = np.asarray(rgb)[::4, ::4, :3].astype(np.int16)
    if sample.size == 0 or ((sample.max(axis=-1) - sample.min(axis=-1)) > spread).mean() <= share:
        return "grey"
    if (np.percentile(sample.reshape(-1, 3), 99, axis=0) < black).any():
        return "composite"
    return "colour"


class Predictor(BasePredictor):
    """Inter2Former on one 2-D image: encoder once, decoder per click.

    Parameters
    ----------
    model : Inter2Former
        The model (see :func:`napari_inter2former.model.build_model`).
    cache_size : int
        How many images' (and zoom crops') features to keep.
    num_threads : int, optional
        Cap on torch's intra-op threads (leave a core to the GUI).
    zoom_in : ZoomIn or None
        Zoom-in on small objects (see :class:`ZoomIn`). Default ``SMALL_OBJECT_ZOOM``:
        an object whose first mask spans under 48 px of the network input is
        segmented again in a crop 8 times its size (at least 96 px), where the
        decoder sees it 4-10 times larger; on generated 256-px images of nuclei 4-8 px
        across NoC85 / NoC90 2.81 / 3.41 instead of 6.28 / 8.53, mIoU@1 0.80 instead
        of 0.72 (``docs/evaluation.md``, session 27). Costs an encoder run of the
        crop at such an object's first click (a crop is not averaged with its turned
        view, ``flip_ensemble``); objects started from a prior mask are not zoomed.
        ``None``: always the whole image (or its tile).
    smooth_noisy : SmoothNoisy or None
        Gaussian smoothing of noisy grey images that the network input enlarges
        many times (see :class:`~napari_inter2former.transforms.SmoothNoisy`). Default
        ``None``: never smoothed. ``NOISY_SMALL_IMAGE_SMOOTHING``: grey images of at most
        128 px whose pixel noise exceeds a tenth of their range are smoothed (sigma 2 px)
        before the encoder and the outline step see them; on the 100-px planes of a
        training volume of faint nuclei mIoU@1 0.79 instead of 0.72, on generated noisy
        100-px images 0.74 instead of 0.56, but more clicks to 85 % in the slice-by-slice
        3-D task (``docs/evaluation.md``, session 28).
    stretch_faint : StretchToClick or None
        Contrast of a zoom crop (``zoom_in``) of a grey image stretched to the
        brightness of the object's first click, so that a faint nucleus beside
        bright ones is seen (see :class:`~napari_inter2former.transforms.StretchToClick`).
        Default ``FAINT_OBJECT_STRETCH``: a first click less than 0.075 of white above the
        crop's median (and above its noise) is mapped to 0.6 of white; on generated images
        of faint nuclei NoC85 / NoC90 6.04 / 6.96 instead of 7.50 / 8.18, mIoU@1 0.54
        instead of 0.37 (``docs/evaluation.md``, session 29). ``None``: crops as cut.
    tiles : Tiles or None
        On an image larger than the network input, segment each object at the
        image's resolution in a tile around it (see :class:`Tiles`; where
        ``zoom_in`` zooms, its crop wins). Default ``Tiles()``: on two generated
        2048-px images of 25-55 px nuclei, NoC85 / NoC90 3.75 / 6.56 instead of 8.62 /
        10.06 and mIoU@1 0.74 instead of 0.50 (``docs/evaluation.md``, session 19).
        ``None``: the whole image, resized, for every object. Costs an encoder run per
        tile visited, two with ``flip_ensemble`` (cached).
    keep_clicked_regions : bool
        Keep only the predicted regions (8-connected) that hold a positive click of
        the object, once it has one; the regions dropped are background for the
        next click too. An object is one region unless the user clicks another
        part: this removes the neighbouring nuclei a mask leaks into, which the
        decoder does not reliably take away on a negative click
        (``docs/evaluation.md``). Default True.
    cut_at_negative_clicks : bool
        A negative click that the decoder left inside the mask removes the part of
        the mask it floods in a compact watershed on the image's edges against the
        positive clicks (:func:`cut_at_negative_clicks`), e.g. the whole
        neighbouring nucleus a mask leaked into. Default True.
    merge_at_click : {'signed', 'all'} or None
        Keep earlier corrections: from the second click on (or the first, after a
        prior mask), the new prediction is taken only where it changed the mask in
        a region reaching the click (:func:`merge_at_click`); with ``'signed'`` a
        positive click also keeps whatever the new prediction adds elsewhere, so a
        mask can still grow as a whole. None (default): take every new prediction
        whole; with the decoder trained under the ``'all'`` attention rule (run 7)
        the merge costs clicks on generated and training nuclei
        (``docs/evaluation.md``).
    boundary_rule : {'all', 'box', 'boundary'} or None
        Which decoder tokens get full attention and routed experts
        (:func:`napari_inter2former.model.hybrid_attention.boundary_tokens`); None:
        the model's own ``boundary_rule``. Default ``'all'``: with the shipped
        decoder the BSQ shortcut of the other rules keeps a mask from growing on
        later clicks (``docs/evaluation.md``).
    dlu_rule : {'threshold', 'clicked'}
        Where the decoder's local upsampling runs (:meth:`Inter2Former.decode`):
        the box of every token its localiser picks (``'threshold'``), or only of
        the groups of those tokens that hold a positive click (``'clicked'``), which
        on an image of many similar nuclei is a small part of it: about 2.4 times
        faster per click there, but with the shipped decoder (trained with the
        first rule) it costs clicks on generated nuclei (``docs/evaluation.md``,
        session 9). Default ``'threshold'``.
    refine_boundary : bool
        Grow the mask by up to one image pixel where the image is nearer the
        object's colour than its surround's (:func:`refine_boundary`): the
        decoder's masks of small nuclei are about a pixel too tight
        (``docs/evaluation.md``, sessions 9-10). Default True.
    refine_smooth : float or 'auto'
        The outline step's blur before its colour test (``smooth`` of
        :func:`refine_boundary`). Default ``'auto'``: a 1-pixel blur for objects
        whose contrast is low against the pixel noise (fewer clicks on the
        generated and training nuclei, ``docs/evaluation.md``, session 11).
    refine_shrink_at_negative : bool
        After every negative click the outline step may also take the band's
        pixels out of the mask (``shrink`` of :func:`refine_boundary`). Default
        False: a negative click on the outline takes out only the band's pixels at
        least as near the surround's colour as its own (``refine_clicks``); the
        shrink at the outline level cost clicks on the blobs of the training
        images (``docs/evaluation.md``, sessions 11-12).
    refine_shrink : bool or 'first'
        After every click (True), or only after the first click of an object
        started without a prior mask (``'first'``), the outline step may also take
        the band's pixels out of the mask, so the outline moves both ways. Default
        ``'first'``: the first mask, decoded twice (``redecode``), fits the object's
        outline both ways, later clicks only grow it (shrinking after every click
        costs clicks on the training blobs, ``docs/evaluation.md``, session 18);
        propagation
        through a volume turns it on for the planes it segments from the previous
        plane's mask (:mod:`napari_inter2former.volume`), where the object's
        outline moves inwards as well as outwards from plane to plane.
    refine_clicks : bool
        The outline step learns from the object's clicks on its band where the
        outline lies in colour (``clicks`` of :func:`refine_boundary`): a positive
        click on a pixel outside the mask lowers the bar for joining to its colour,
        a negative one on a pixel inside raises the bar for staying above its
        colour, and a clicked pixel within a pixel of the band keeps its side.
        Default True (fewer clicks on the generated and training nuclei,
        ``docs/evaluation.md``, session 12).
    refine_level : float
        Where the outline step puts the outline between the surround's colour (0)
        and the interior's (1) (``level`` of :func:`refine_boundary`). Default
        :data:`REFINE_LEVEL` (0.35): annotated outlines of the training nuclei and
        blobs lie outside the half-way colour (``docs/evaluation.md``, session 12).
    refine_band : int
        Half-width of the outline step's band in image pixels. Default 1.
    flip_ensemble : {'first', 'every'} or None
        Decode a click also on the image turned by 180 degrees (flipped upside
        down and left-right: :data:`ENSEMBLE_FLIPS`, the reference map turned
        alike) and average the two predictions' probabilities: ``'first'``
        for the first click of an object started without a prior mask, the
        next clicks starting from that mask; ``'every'`` for every click.
        Costs one more encoder run per image (on the first such click, then
        cached; with ``zoom_in``, per crop too, where the first click is
        replayed) and two decoder runs per click averaged. The turned views
        have their own cache (the image's and one zoom crop's; of a large image also those of
        the tiles kept, see :class:`Tiles`), so they never push an image (or a volume's plane)
        out of the ``cache_size`` entries. Default
        ``'first'``: with the shipped decoder (run 13) it saves 2.3 clicks to
        85 / 90 % over four generated and training sets, as many as averaging
        all three flips (``docs/evaluation.md``, session 16); None: one view.
    split_first_click : bool
        The first click of an object started without a prior mask keeps only the
        part of its region on the click's side of a narrow neck
        (:func:`split_at_necks`): a touching nucleus the mask leaked into. Default
        False: it saves 0.2 clicks over the four generated and training sets, all on one
        set of dense nuclei, and costs clicks on natural images (``docs/evaluation.md``,
        session 17).
    redecode : {'first', 'every'} or None
        Decode a click again from the reference map updated by its own
        prediction (the clicked regions of it), as the training's earlier rounds
        feed a prediction back: ``'first'`` for the first click of an object
        started without a prior mask, ``'every'`` for every click; None: once.
        Default ``'first'``: with ``refine_shrink='first'`` 2.2 clicks fewer to 85 /
        90 % over four generated and training sets of nuclei and better first
        masks (``docs/evaluation.md``, session 18); alone it grows first masks
        that are already a little large on nuclei. ``'every'`` and two rounds saved
        fewer. Costs one more decoder run per view and click it applies to.
    redecode_rounds : int
        How many times ``redecode`` decodes again. Default 1.
    flip_passes : {'all', 'first', 'last'}
        Which of a click's decodes (``redecode`` decodes it more than once) the
        ``flip_ensemble`` average applies to: all of them, the first or the last.
        Default ``'all'``.
    sam_head : SamMaskHead or None
        SAM's prompt encoder and mask decoder on the same image embedding
        (:class:`napari_inter2former.model.sam_decoder.SamMaskHead`; MobileSAM's in
        :meth:`from_pretrained`), for ``blend_sam``. None: never blended.
    photograph_probe : PhotographProbe or None
        Tells grey photographs from grey microscopy by the image embedding
        (:class:`napari_inter2former.model.photograph_probe.PhotographProbe`; the
        shipped one in :meth:`from_pretrained`), for ``blend_sam='photo'``.
    blend_sam : {'photo', 'colour', 'always'} or None
        Average every click's probabilities with ``sam_head``'s answer to the same
        clicks (all of them as point prompts, its previous answer as the mask
        prompt, one of three on an object's first click, see ``sam_agreement``): on photographs
        (colour images, :func:`is_colour_image`, and grey images that
        ``photograph_probe`` takes for photographs), on colour images only, on
        every image, or never. Default ``'photo'``: on 97 natural training images
        blending the 91 in colour needed 2.6 / 3.6 clicks to 85 / 90 % (MobileSAM
        2.6 / 3.6), while the 6 grey ones, left to the Inter2Former decoder, needed
        6.7 / 8.5 (MobileSAM 2.8 / 5.2), blended 1.3 / 3.7; on grey microscopy SAM's
        answers cost clicks (``docs/evaluation.md``, sessions 22-23). Costs one
        SAM mask-decoder run per click; on a blended image the ``'first'`` rules of
        ``flip_ensemble``, ``redecode`` and ``refine_shrink`` do not apply (no turned
        view is encoded), which saved clicks and time on natural images.
    sam_weight : float
        Weight of ``sam_head``'s probability in the blend. Default 0.5.
    sam_weight_large : float or None
        Weight of ``sam_head``'s probability where its mask covers 20 % of the view (the
        image, or its tile) or more; from ``sam_weight`` at 5 % it rises linearly to
        this. SAM segments large objects better than the Inter2Former decoder, trained
        mostly on microscopy. None: ``sam_weight`` whatever the size. Default 1.0: on 50
        large objects of training photographs 2.36 clicks to 90 % instead of 2.64
        (MobileSAM 2.40), on 97 other training photographs 3.36 instead of 3.39
        (``docs/evaluation.md``, session 26).
    sam_agreement : float
        On an object's first click ``sam_head`` answers with three masks (an object's
        part, the object, a larger whole); the blend takes the one with the highest
        predicted IoU plus ``sam_agreement`` times its IoU with the Inter2Former
        decoder's mask for the same click. 0: predicted IoU alone (SAM's own rule).
        Default 0.3: on 200 natural training images the first click's mean IoU went
        from 0.68 to 0.75 (``docs/evaluation.md``, session 24).
    """

    def __init__(
        self,
        model,
        *,
        cache_size: int = 8,
        num_threads: int | None = None,
        zoom_in: ZoomIn | None = SMALL_OBJECT_ZOOM,
        smooth_noisy: SmoothNoisy | None = None,
        stretch_faint: StretchToClick | None = FAINT_OBJECT_STRETCH,
        tiles: Tiles | None = Tiles(),
        keep_clicked_regions: bool = True,
        cut_at_negative_clicks: bool = True,
        merge_at_click: str | None = None,
        boundary_rule: str | None = "all",
        dlu_rule: str = "threshold",
        refine_boundary: bool = True,
        refine_smooth: float | str = "auto",
        refine_shrink_at_negative: bool = False,
        refine_shrink: bool | str = "first",
        refine_clicks: bool = True,
        refine_level: float = REFINE_LEVEL,
        refine_band: int = 1,
        flip_ensemble: str | None = "first",
        split_first_click: bool = False,
        redecode: str | None = "first",
        redecode_rounds: int = 1,
        flip_passes: str = "all",
        sam_head=None,
        photograph_probe=None,
        blend_sam: str | None = "photo",
        sam_weight: float = 0.5,
        sam_weight_large: float | None = 1.0,
        sam_agreement: float = SAM_AGREEMENT,
    ) -> None:
        super().__init__()
        import torch

        if num_threads is not None:
            torch.set_num_threads(max(1, int(num_threads)))
        self.model = model.eval()
        self.keep_clicked_regions = bool(keep_clicked_regions)
        self.cut_at_negative_clicks = bool(cut_at_negative_clicks)
        if merge_at_click not in MERGE_RULES + (None,):
            raise ValueError(f"merge_at_click must be one of {MERGE_RULES} or None, got {merge_at_click!r}")
        self.merge_at_click = merge_at_click
        self.boundary_rule = boundary_rule
        from .model.inter2former import DLU_RULES

        if dlu_rule not in DLU_RULES:
            raise ValueError(f"dlu_rule must be one of {DLU_RULES}, got {dlu_rule!r}")
        self.dlu_rule = dlu_rule
        self.refine_boundary = bool(refine_boundary)
        if isinstance(refine_smooth, str) and refine_smooth != "auto":
            raise ValueError(f"refine_smooth must be a number or 'auto', got {refine_smooth!r}")
        self.refine_smooth = refine_smooth
        self.refine_shrink_at_negative = bool(refine_shrink_at_negative)
        if isinstance(refine_shrink, str) and refine_shrink != "first":
            raise ValueError(f"refine_shrink must be True, False or 'first', got {refine_shrink!r}")
        self.refine_shrink = refine_shrink if refine_shrink == "first" else bool(refine_shrink)
        self.refine_clicks = bool(refine_clicks)
        if not 0.0 < refine_level < 1.0:
            raise ValueError(f"refine_level must lie between 0 and 1, got {refine_level!r}")
        if int(refine_band) < 1:
            raise ValueError(f"refine_band must be at least 1, got {refine_band!r}")
        self.refine_level = float(refine_level)
        self.refine_band = int(refine_band)
        if flip_ensemble not in FLIP_ENSEMBLE_RULES + (None,):
            raise ValueError(
                f"flip_ensemble must be one of {FLIP_ENSEMBLE_RULES} or None, got {flip_ensemble!r}"
            )
        self.flip_ensemble = flip_ensemble
        self.split_first_click = bool(split_first_click)
        if redecode not in REDECODE_RULES + (None,):
            raise ValueError(f"redecode must be one of {REDECODE_RULES} or None, got {redecode!r}")
        if int(redecode_rounds) < 0:
            raise ValueError(f"redecode_rounds must be at least 0, got {redecode_rounds!r}")
        self.redecode = redecode
        self.redecode_rounds = int(redecode_rounds)
        if flip_passes not in FLIP_PASSES:
            raise ValueError(f"flip_passes must be one of {FLIP_PASSES}, got {flip_passes!r}")
        self.flip_passes = flip_passes
        if blend_sam not in BLEND_SAM_RULES + (None,):
            raise ValueError(f"blend_sam must be one of {BLEND_SAM_RULES} or None, got {blend_sam!r}")
        if not 0.0 <= sam_weight <= 1.0:
            raise ValueError(f"sam_weight must lie between 0 and 1, got {sam_weight!r}")
        if sam_weight_large is not None and not 0.0 <= sam_weight_large <= 1.0:
            raise ValueError(f"sam_weight_large must lie between 0 and 1 or be None, got {sam_weight_large!r}")
        if sam_head is not None and tuple(sam_head.input_size) != (model.image_size,) * 2:
            raise ValueError(
                f"sam_head takes {tuple(sam_head.input_size)} inputs, the model "
                f"{(model.image_size,) * 2}"
            )
        self.sam_head = None if sam_head is None else sam_head.eval()
        self.photograph_probe = photograph_probe
        self.blend_sam = blend_sam
        self.sam_weight = float(sam_weight)
        self.sam_weight_large = None if sam_weight_large is None else float(sam_weight_large)
        if sam_agreement < 0:
            raise ValueError(f"sam_agreement must not be negative, got {sam_agreement!r}")
        self.sam_agreement = float(sam_agreement)
        self._kind = "grey"  # the image's kind for blend_sam: colour, photo (grey) or grey
        self._sam_low_res = None  # sam_head's last answer for the object, its next mask prompt
        self._landscape = None
        self.cache = _FeatureCache(cache_size)
        # the turned views of the image (or its tiles; zoom crops are not averaged): an object's
        # first click replayed in a zoom crop must not push them out before the next object
        self.flip_cache = _FeatureCache(2 * len(ENSEMBLE_FLIPS))
        # with tiles it grows up to this, however far the feature cache grows (e.g. for a stack)
        self._max_turned_views = max(self.flip_cache.max_entries, cache_size - 1)
        self.zoom_in = zoom_in
        self.smooth_noisy = smooth_noisy
        self.stretch_faint = stretch_faint
        self.tiles = tiles
        self._rgb: np.ndarray | None = None
        self._view_rgb: np.ndarray | None = None  # the current view's pixels: the image or a crop
        self._grey = False  # the image is grey (not colour, not a composite)
        self._image_features = None
        self._features = None
        self._geometry: InputGeometry | None = None
        self._box: tuple[int, int, int, int] | None = None
        self._image_key: str | None = None
        # image key -> its tiles encoded (through clicks or encode_ahead), oldest first
        self._encoded_tiles: OrderedDict[str, list[tuple[int, int, int, int]]] = OrderedDict()
        self._ref = None
        self.last_logits = None

    @classmethod
    def from_pretrained(cls, name: str = "default", decoder_weights=None, **kwargs) -> "Predictor":
        """The embedded default model, loaded from the package (no network).

        ``decoder_weights``: another decoder weight file (see
        :func:`napari_inter2former.model.build_model`). Unless given, MobileSAM's prompt encoder
        and mask decoder (``sam_head``) and the photograph probe come with it where the model's
        input is MobileSAM's.
        """
        from .model.build import build_model
        from .model.photograph_probe import PhotographProbe
        from .model.sam_decoder import SamMaskHead

        model = build_model(name, pretrained=True, decoder_weights=decoder_weights)
        if model.image_size == IMAGE_SIZE:
            if "sam_head" not in kwargs:
                kwargs["sam_head"] = SamMaskHead.from_pretrained()
            if "photograph_probe" not in kwargs:
                kwargs["photograph_probe"] = PhotographProbe.from_pretrained()
        return cls(model, **kwargs)

    @property
    def model_id(self) -> str:
        return getattr(self.model, "model_id", type(self.model).__name__)

    @property
    def zoom_box(self) -> tuple[int, int, int, int] | None:
        """The crop (top, bottom, left, right) the current object is segmented in, or None."""
        return self._box

    def _encode_rgb(self, rgb: np.ndarray, cache: _FeatureCache | None = None, key: str | None = None):
        import torch

        cache = self.cache if cache is None else cache
        key = image_key(rgb, self.model_id) if key is None else key
        features = cache.get(key)
        if features is None:
            with torch.inference_mode():
                features = self.model.encode(self.model.preprocess(rgb))
            cache.put(key, features)
        return features

    def _to_rgb(self, image: np.ndarray, channel_axis, contrast_limits) -> np.ndarray:
        rgb = super()._to_rgb(image, channel_axis, contrast_limits)
        if self.smooth_noisy is None or channel_axis is not None:
            return rgb
        return self.smooth_noisy(rgb, self.model.image_size)

    def _encode(self, rgb: np.ndarray) -> None:
        self._rgb = rgb
        self._image_key = image_key(rgb, self.model_id)
        self._image_features = self._encode_rgb(rgb, key=self._image_key)  # view: set by _start
        colour_kind = _colour_kind(rgb)
        self._kind = self._image_kind(rgb, self._image_features, colour_kind)
        self._grey = colour_kind == "grey"

    def _image_kind(self, rgb: np.ndarray, features, colour_kind: str | None = None) -> str:
        """'colour' (:func:`is_colour_image`), 'photo' (grey, a photograph to
        :attr:`photograph_probe`) or 'grey' (anything else: microscopy, composites).

        ``colour_kind``: :func:`_colour_kind` of ``rgb``, if known. Independent of
        :attr:`blend_sam`, which may change while the image stays set."""
        kind = _colour_kind(rgb) if colour_kind is None else colour_kind
        if kind == "colour":
            return "colour"
        if kind == "grey" and self.photograph_probe is not None:
            if self.photograph_probe.is_photograph(features.embedding, rgb.shape[:2]):
                return "photo"
        return "grey"

    def _encode_ahead(
        self, rgb: np.ndarray, around: tuple[float, float] | None = None, turned: bool = True
    ) -> None:
        key = image_key(rgb, self.model_id)
        features = self._encode_rgb(rgb, key=key)
        shape = rgb.shape[:2]
        view = rgb  # where the next first click is made, and turned
        if self.tiles is not None and max(shape) > self.tiles.side:
            # large: first clicks are made in tiles; encode the one a click at ``around`` takes
            encoded = self._encoded_tiles.get(key, [])
            tile = None if around is None else self.tiles.window(
                None, [Click(*around)], shape, encoded=encoded
            )
            if tile is None:
                return
            top, bottom, left, right = tile
            view = np.ascontiguousarray(rgb[top:bottom, left:right])
            self._encode_rgb(view)
            self._note_tile(key, tile)
        if turned and self.flip_ensemble is not None and not self._blends_sam(self._image_kind(rgb, features)):
            for axes in ENSEMBLE_FLIPS:
                self._flipped_features(view, axes)

    def _note_tile(self, key: str, tile: tuple[int, int, int, int]) -> None:
        """Remember that ``tile`` of the image ``key`` is encoded (as many as the cache holds).

        The turned views' cache grows to hold the turns of as many tiles (and the image's), so
        that a new object's first click back in a tile visited before skips its turn's encoder run.
        """
        tiles = [t for t in self._encoded_tiles.pop(key, []) if t != tile] + [tile]
        keep = max(self.cache.max_entries - 2, 1)  # the cache holds the image and a crop too
        self._encoded_tiles[key] = tiles[-keep:]
        turns = len(ENSEMBLE_FLIPS) * (len(self._encoded_tiles[key]) + 1)
        self.flip_cache.max_entries = max(
            self.flip_cache.max_entries, min(turns, self._max_turned_views)
        )
        while len(self._encoded_tiles) > self.cache.max_entries:
            self._encoded_tiles.popitem(last=False)

    def _flipped_features(self, rgb: np.ndarray, axes: tuple[int, ...]):
        """Features of ``rgb`` flipped along ``axes`` (cached apart: :attr:`flip_cache`)."""
        return self._encode_rgb(np.ascontiguousarray(np.flip(rgb, axes)), self.flip_cache)

    def _use_view(self, box: tuple[int, int, int, int] | None) -> None:
        """Work on the whole image (None) or on the crop ``box``."""
        self._box = box
        if box is not None and self._in_tile():
            self._note_tile(self._image_key, box)
        if box is None:
            self._view_rgb = self._rgb
            self._features = self._image_features
        else:
            top, bottom, left, right = box
            self._view_rgb = self._stretched(np.ascontiguousarray(self._rgb[top:bottom, left:right]))
            self._features = self._encode_rgb(self._view_rgb)
        rows, cols = self._view_rgb.shape[:2]
        self._geometry = InputGeometry(rows, cols, size=self.model.image_size)
        self._landscape = None

    def _stretched(self, crop: np.ndarray) -> np.ndarray:
        """A zoom ``crop`` of the image, its contrast stretched to the object's first
        positive click in it (:attr:`stretch_faint`; grey images only)."""
        if self.stretch_faint is None or not self._grey or self._kind != "grey" or self._in_tile():
            return crop
        first = next((c for c in self._clicks if c.positive and self._in_view(c)), None)
        if first is None:
            return crop
        top, left = self._view_origin()
        return self.stretch_faint(crop, int(first.row) - top, int(first.col) - left)

    def _edge_landscape(self) -> np.ndarray:
        """Edge strength of the current view on the network grid (computed once per view)."""
        if self._landscape is None:
            import torch

            rgb = np.ascontiguousarray(self._view_rgb)
            with torch.inference_mode():
                grid = self.model.preprocess(rgb)[0].float().cpu().numpy()
            sigma = max(1.0, EDGE_SIGMA * self._geometry.scale)
            self._landscape = edge_landscape(grid.transpose(1, 2, 0), sigma)
        return self._landscape

    def _start_ref(self) -> None:
        """The reference map of a fresh object in the current view (from the prior, if any)."""
        import torch

        from .reference_map import new_reference_map, reference_from_mask

        size = self._geometry.size
        prior = None if self._prior is None else self._crop(self._prior)
        self.last_logits = None
        self._sam_low_res = None
        if prior is None or not prior.any():
            self._ref = new_reference_map(size, size)
        else:
            grid = torch.from_numpy(self._mask_to_grid(prior))[None, None]
            self._ref = reference_from_mask(grid)
            self.last_logits = torch.where(grid, -OUTSIDE_LOGIT, OUTSIDE_LOGIT).float()
            if self._blends_sam():
                self._sam_low_res = self.sam_head.mask_prompt(grid)

    def _start(self, prior: np.ndarray | None) -> None:
        self._use_view(None if prior is None else self._window(prior, []))
        self._start_ref()

    def _window(self, mask, clicks, current=None) -> tuple[int, int, int, int] | None:
        """The crop to segment the object of ``mask`` and ``clicks`` in (None: the whole image).

        ``mask`` None: no mask yet (``zoom_in`` waits for one).
        """
        box = self._zoom_window(mask, clicks)
        if box is not None:
            return box
        if self.tiles is None:
            return None
        encoded = self._encoded_tiles.get(self._image_key, [])
        return self.tiles.window(mask, clicks, self._shape, current=current, encoded=encoded)

    def _zoom_window(self, mask, clicks) -> tuple[int, int, int, int] | None:
        """The :attr:`zoom_in` crop for ``mask`` and ``clicks``, or None for no zoom."""
        zoom = self.zoom_in
        if zoom is None or mask is None or not (zoom.prior or self._prior is None):
            return None
        side = max(self._shape)  # of the view unzoomed: the whole image or, if it has them, a tile
        if self.tiles is not None:
            side = min(side, self.tiles.side)
        return zoom.window(mask, clicks, self._shape, view_side=side)

    def _in_tile(self) -> bool:
        """Whether the current view is the whole image or one of :attr:`tiles`."""
        if self._box is None:
            return True
        if self.tiles is None:
            return False
        rows, cols = self._shape
        top, bottom, left, right = self._box
        return (
            top in self.tiles.starts(rows) and bottom - top == min(self.tiles.side, rows)
            and left in self.tiles.starts(cols) and right - left == min(self.tiles.side, cols)
        )

    def _decode_click(self, click: Click, clicks: list[Click] | None = None) -> np.ndarray:
        """Paint one click into the current view, decode; the view's mask.

        ``clicks``: the object's clicks up to this one (default: all of them).
        """
        from .reference_map import paint_clicks, update_by_prediction

        row, col = self._to_view_grid(click)
        ref = paint_clicks(self._ref.clone(), [(row, col, click.positive)])
        clicks = self._clicks if clicks is None else clicks
        first = self.last_logits is None and len(clicks) == 1
        blend = self._blends_sam()
        # the 'first' rules: not where SAM's answer joins the average (no gain, docs/evaluation.md)
        alone_first = first and not blend
        ensemble = self.flip_ensemble == "every" or (self.flip_ensemble == "first" and alone_first)
        # not in a zoom crop: its turned view would cost an encoder run, for no gain (session 27)
        ensemble = ensemble and (self._box is None or self._in_tile())
        seeds = [self._to_view_grid(c) for c in clicks if c.positive and self._in_view(c)]
        again = self.redecode == "every" or (self.redecode == "first" and alone_first)
        last = self.redecode_rounds if again else 0
        flipped = {"all": range(last + 1), "first": (0,), "last": (last,)}[self.flip_passes]
        logits = self._decode_view(ref, ensemble and 0 in flipped)
        for i in range(1, last + 1):
            shown = keep_regions_at(logits, seeds) if self.keep_clicked_regions else logits
            logits = self._decode_view(update_by_prediction(ref, shown > 0), ensemble and i in flipped)
        if blend:
            logits = self._blend_with_sam(logits, clicks)
        if self.cut_at_negative_clicks:
            negative = [self._to_view_grid(c) for c in clicks if not c.positive and self._in_view(c)]
            if negative:
                logits = cut_at_negative_clicks(logits, seeds, negative, self._edge_landscape)
        if self.keep_clicked_regions:
            logits = keep_regions_at(logits, seeds)
        if self.split_first_click and first and seeds:
            logits = split_at_necks(logits, seeds[0], extent=self._geometry.resized_shape)
        if self.merge_at_click and self.last_logits is not None:
            grow = self.merge_at_click == "signed" and click.positive
            logits = merge_at_click(logits, self.last_logits, (row, col), grow_anywhere=grow)
        self._ref = update_by_prediction(ref, logits > 0)
        self.last_logits = logits
        shrink = (
            self.refine_shrink is True
            or (self.refine_shrink == "first" and alone_first)
            or (self.refine_shrink_at_negative and not click.positive)
        )
        top, left = self._view_origin()
        outline_clicks = [
            (c.row - top, c.col - left, c.positive) for c in clicks if self._in_view(c)
        ] if self.refine_clicks else ()
        return self._logits_to_mask(logits, shrink=shrink, clicks=outline_clicks)

    def _blends_sam(self, kind: str | None = None) -> bool:
        """Whether clicks are blended with :attr:`sam_head`'s answers on the current image
        (on an image of ``kind``, see :meth:`_image_kind`)."""
        kind = self._kind if kind is None else kind
        return self.sam_head is not None and (
            self.blend_sam == "always"
            or (self.blend_sam == "photo" and kind in ("colour", "photo"))
            or (self.blend_sam == "colour" and kind == "colour")
        )

    def _blend_with_sam(self, logits, clicks: list[Click]):
        """``logits`` (1, 1, S, S) averaged (as probabilities) with :attr:`sam_head`'s for ``clicks``."""
        import torch
        import torch.nn.functional as F

        g = self._geometry
        top, left = self._view_origin()
        shown = [c for c in clicks if self._in_view(c)]
        points = torch.tensor(
            [[((c.col - left) * g.scale, (c.row - top) * g.scale) for c in shown]], dtype=torch.float32
        )  # SAM's (x, y) on the network input
        labels = torch.tensor([[int(c.positive) for c in shown]])
        with torch.inference_mode():
            candidates, predicted_iou = self.sam_head.candidates(
                self._features.embedding, points, labels, mask_input=self._sam_low_res
            )
        rows, cols = g.resized_shape
        sam = F.interpolate(candidates, size=(g.size, g.size), mode="bilinear", align_corners=False)
        sam = sam[..., :rows, :cols]
        score = predicted_iou[0].float()
        if sam.shape[1] > 1 and self.sam_agreement > 0:
            score = score + self.sam_agreement * _mask_ious(sam > 0, logits[0, :, :rows, :cols] > 0)
        best = int(score.argmax())
        self._sam_low_res = candidates[:, best : best + 1]
        sam = torch.sigmoid(sam[:, best : best + 1].float())
        weight = self._sam_weight_for(sam)
        probability = weight * sam + (1.0 - weight) * torch.sigmoid(logits[..., :rows, :cols].float())
        return _with_probability(logits, probability)

    def _sam_weight_for(self, sam_probability) -> float:
        """:attr:`sam_weight`, raised towards :attr:`sam_weight_large` as SAM's mask grows."""
        if self.sam_weight_large is None:
            return self.sam_weight
        low, high = SAM_LARGE_SHARE
        share = float((sam_probability > 0.5).float().mean())
        ramp = min(max((share - low) / (high - low), 0.0), 1.0)
        return self.sam_weight + ramp * (self.sam_weight_large - self.sam_weight)

    def _decode_view(self, ref, ensemble: bool):
        """The current view's logits for ``ref``; with ``ensemble``, averaged with its turned view's."""
        logits = self._decode(self._features, ref)
        return self._flip_ensemble_logits(logits, ref) if ensemble else logits

    def _decode(self, features, ref):
        """The decoder's logits (1, 1, S, S) for ``features`` and the reference map ``ref``."""
        import torch

        with torch.inference_mode():
            return self.model.decode(
                features, ref, boundary_rule=self.boundary_rule, dlu_rule=self.dlu_rule
            )

    def _flip_ensemble_logits(self, logits, ref):
        """``logits`` for the reference map ``ref``, averaged (as probabilities) with the flipped views'."""
        import torch

        rows, cols = self._geometry.resized_shape
        rgb = self._view_rgb
        probability = torch.sigmoid(logits[..., :rows, :cols].float())
        for axes in ENSEMBLE_FLIPS:
            dims = [axis - 2 for axis in axes]  # image axes 0, 1 -> grid dims -2, -1
            features = self._flipped_features(rgb, axes)
            flipped_ref = ref.clone()
            flipped_ref[..., :rows, :cols] = ref[..., :rows, :cols].flip(dims)
            flipped = self._decode(features, flipped_ref)
            probability += torch.sigmoid(flipped[..., :rows, :cols].float().flip(dims))
        probability /= len(ENSEMBLE_FLIPS) + 1
        return _with_probability(logits, probability)

    def _replay(self, box: tuple[int, int, int, int] | None) -> np.ndarray:
        """Move to ``box`` and replay the object's clicks there; the image-sized mask."""
        self._use_view(box)
        self._start_ref()
        mask = None
        for i, click in enumerate(self._clicks):
            if self._in_view(click):
                mask = self._decode_click(click, self._clicks[: i + 1])
        return self._paste(mask)

    def _predict(self, click: Click) -> np.ndarray:
        if self._in_tile():  # the whole image or a tile: zoom in, or move to another tile
            box = self._window(self._mask, self._clicks, current=self._box)
            if box != self._box:
                mask = self._replay(box)
            else:
                mask = self._paste(self._decode_click(click))
            # (with no mask yet the view above is a tile or the whole image, never a zoom crop)
            first = self._mask is None and self.zoom_in is not None and self.zoom_in.first_click
            box = self._zoom_window(mask, self._clicks) if first else None
            if box is not None:  # a small object: its first click again, zoomed in
                return self._settle(self._replay(box))
            return self._settle(mask)
        elif not _inside(self._box, click.row, click.col):  # a click outside the zoom crop
            return self._settle(self._replay(self._window(self._mask, self._clicks)))
        return self._settle(self._paste(self._decode_click(click)))

    def _settle(self, mask: np.ndarray) -> np.ndarray:
        """Move the crop once if the mask reaches one of its inner borders."""
        box = self._box
        if box is None or not self._touches_inner_border(mask, box):
            return mask
        moved = self._window(mask, self._clicks, current=box if self._in_tile() else None)
        if moved == box:
            return mask
        return self._replay(moved)

    def _touches_inner_border(self, mask: np.ndarray, box: tuple[int, int, int, int]) -> bool:
        top, bottom, left, right = box
        rows, cols = self._shape
        crop = mask[top:bottom, left:right]
        return bool(
            (top > 0 and crop[0].any())
            or (bottom < rows and crop[-1].any())
            or (left > 0 and crop[:, 0].any())
            or (right < cols and crop[:, -1].any())
        )

    def _get_state(self):
        return self._box, self._ref.clone(), self.last_logits, self._sam_low_res

    def _set_state(self, state) -> None:
        box, ref, logits, sam_low_res = state
        if box != self._box:
            self._use_view(box)
        self._ref = ref
        self.last_logits = logits
        self._sam_low_res = sam_low_res

    # ----- crop helpers -----
    def _in_view(self, click: Click) -> bool:
        return self._box is None or _inside(self._box, click.row, click.col)

    def _view_origin(self) -> tuple[int, int]:
        """Image (row, col) of the current view's top-left pixel."""
        return (0, 0) if self._box is None else (self._box[0], self._box[2])

    def _to_view_grid(self, click: Click) -> tuple[int, int]:
        top, left = self._view_origin()
        row, col = self._geometry.to_grid(click.row - top, click.col - left)
        return int(row), int(col)

    def _crop(self, mask: np.ndarray) -> np.ndarray:
        if self._box is None:
            return mask
        top, bottom, left, right = self._box
        return mask[top:bottom, left:right]

    def _paste(self, mask: np.ndarray | None) -> np.ndarray:
        """An image-sized mask from a mask of the current view (None: empty)."""
        if self._box is None and mask is not None:
            return mask
        out = np.zeros(self._shape, dtype=bool)
        if mask is not None:
            top, bottom, left, right = self._box
            out[top:bottom, left:right] = mask
        return out

    # ----- geometry helpers -----
    def _mask_to_grid(self, mask: np.ndarray) -> np.ndarray:
        """Nearest-neighbour resize of an image-sized mask onto the padded grid."""
        g = self._geometry
        rr, rc = g.resized_shape
        rows = np.minimum(((np.arange(rr) + 0.5) / g.scale).astype(int), g.rows - 1)
        cols = np.minimum(((np.arange(rc) + 0.5) / g.scale).astype(int), g.cols - 1)
        grid = np.zeros((g.size, g.size), dtype=bool)
        grid[:rr, :rc] = mask[np.ix_(rows, cols)]
        return grid

    def _logits_to_mask(self, logits, shrink: bool = False, clicks=()) -> np.ndarray:
        """Crop the padding off (1, 1, T, T) logits, resize to the image, threshold."""
        import torch.nn.functional as F

        g = self._geometry
        rr, rc = g.resized_shape
        crop = logits[:, :, :rr, :rc].float()
        if (rr, rc) != (g.rows, g.cols):
            crop = F.interpolate(crop, size=(g.rows, g.cols), mode="bilinear", align_corners=False)
        mask = (crop[0, 0] > 0).cpu().numpy()
        if self.refine_boundary:
            mask = refine_boundary(
                mask, self._view_rgb, smooth=self.refine_smooth, shrink=shrink,
                clicks=clicks, level=self.refine_level, band=self.refine_band,
            )
        return mask
