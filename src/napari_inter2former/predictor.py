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
from typing import Any

import numpy as np

from .transforms import InputGeometry, to_rgb_uint8

__all__ = ["Click", "BasePredictor", "Predictor"]


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
        rgb = to_rgb_uint8(image, channel_axis=channel_axis, contrast_limits=contrast_limits)
        self._encode(rgb)
        self._shape = rgb.shape[:2]
        self.reset()

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
    def _encode(self, rgb: np.ndarray) -> None:
        raise NotImplementedError

    def _start(self, prior: np.ndarray | None) -> None:
        raise NotImplementedError

    def _predict(self, click: Click) -> np.ndarray:
        raise NotImplementedError

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


def image_key(rgb: np.ndarray, model_id: str) -> str:
    """Cache key from the image content, its shape and the model identity."""
    digest = hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=16)
    digest.update(str(rgb.shape).encode())
    digest.update(model_id.encode())
    return digest.hexdigest()


class Predictor(BasePredictor):
    """Inter2Former on one 2-D image: encoder once, decoder per click.

    Parameters
    ----------
    model : Inter2Former
        The model (see :func:`napari_inter2former.model.build_model`).
    cache_size : int
        How many images' features to keep (for slices of a volume).
    num_threads : int, optional
        Cap on torch's intra-op threads (leave a core to the GUI).
    """

    def __init__(self, model, *, cache_size: int = 8, num_threads: int | None = None) -> None:
        super().__init__()
        import torch

        if num_threads is not None:
            torch.set_num_threads(max(1, int(num_threads)))
        self.model = model.eval()
        self.cache = _FeatureCache(cache_size)
        self._features = None
        self._geometry: InputGeometry | None = None
        self._ref = None
        self.last_logits = None

    @classmethod
    def from_pretrained(cls, name: str = "default", **kwargs) -> "Predictor":
        """The embedded default model, loaded from the package (no network)."""
        from .model.build import build_model

        return cls(build_model(name, pretrained=True), **kwargs)

    @property
    def model_id(self) -> str:
        return getattr(self.model, "model_id", type(self.model).__name__)

    def _encode(self, rgb: np.ndarray) -> None:
        import torch

        key = image_key(rgb, self.model_id)
        features = self.cache.get(key)
        if features is None:
            with torch.inference_mode():
                features = self.model.encode(self.model.preprocess(rgb))
            self.cache.put(key, features)
        self._features = features
        self._geometry = InputGeometry(*rgb.shape[:2], size=self.model.image_size)

    def _start(self, prior: np.ndarray | None) -> None:
        import torch

        from .reference_map import new_reference_map, reference_from_mask

        size = self._geometry.size
        if prior is None:
            self._ref = new_reference_map(size, size)
        else:
            grid = self._mask_to_grid(prior)
            self._ref = reference_from_mask(torch.from_numpy(grid)[None, None])

    def _predict(self, click: Click) -> np.ndarray:
        import torch

        from .reference_map import paint_clicks, update_by_prediction

        row, col = self._geometry.to_grid(click.row, click.col)
        ref = paint_clicks(self._ref.clone(), [(row, col, click.positive)])
        with torch.inference_mode():
            logits = self.model.decode(self._features, ref)
        self._ref = update_by_prediction(ref, logits > 0)
        self.last_logits = logits
        return self._logits_to_mask(logits)

    def _get_state(self):
        return self._ref.clone()

    def _set_state(self, state) -> None:
        self._ref = state

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

    def _logits_to_mask(self, logits) -> np.ndarray:
        """Crop the padding off (1, 1, T, T) logits, resize to the image, threshold."""
        import torch.nn.functional as F

        g = self._geometry
        rr, rc = g.resized_shape
        crop = logits[:, :, :rr, :rc].float()
        if (rr, rc) != (g.rows, g.cols):
            crop = F.interpolate(crop, size=(g.rows, g.cols), mode="bilinear", align_corners=False)
        return (crop[0, 0] > 0).cpu().numpy()
