"""napari layer wiring: image planes, the clicks Points layer and Labels writes.

Labels are only ever changed through ``Labels.data_setitem`` inside
``block_history()``, so each model step, commit, clear and propagated plane is
one entry of napari's own undo history (Ctrl+Z / Ctrl+Shift+Z on the layer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..annotation import NEGATIVE, POSITIVE, ClickRecord, as_volume, changed_indices

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = [
    "POINT_COLORS",
    "ImageSource",
    "check_labels_layer",
    "click_position",
    "empty_click_features",
    "image_source",
    "make_labels_layer",
    "make_points_layer",
    "read_plane",
    "records_from_points",
    "write_planes",
]

POINT_COLORS = {POSITIVE: "#00ff00", NEGATIVE: "#ff00ff"}


class ImageSource:
    """The picked image as planes, with the geometry its output layers copy.

    Attributes
    ----------
    volume : array of shape (P, M, N) or (P, M, N, C)
    is_volume : bool
        False for a 2-D image (then P == 1 and layers are 2-D).
    rgb : bool
    scale, translate : tuple of float
        Of the spatial axes (2 or 3 values).
    contrast_limits : (float, float) or None
        The layer's display range (None for RGB).
    """

    def __init__(self, layer: napari.layers.Image, channel: int | None = None) -> None:
        data = layer.data[0] if layer.multiscale else layer.data
        self.volume, self.is_volume = as_volume(data, rgb=layer.rgb, channel=channel)
        self.rgb = bool(layer.rgb)
        drop = 1 if channel is not None else 0
        self.scale = tuple(float(s) for s in layer.scale[drop:])
        self.translate = tuple(float(t) for t in layer.translate[drop:])
        self.contrast_limits = None if self.rgb else tuple(float(c) for c in layer.contrast_limits)
        self.layer = layer

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape of the layers: (M, N) or (P, M, N)."""
        spatial = tuple(self.volume.shape[:3])
        return spatial if self.is_volume else spatial[1:]

    @property
    def ndim(self) -> int:
        return len(self.shape)


def image_source(layer, channel=None) -> ImageSource:
    """:class:`ImageSource` of a layer; ``ValueError`` for unusable data."""
    return ImageSource(layer, channel)


def empty_click_features() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": pd.Categorical([], categories=[POSITIVE, NEGATIVE]),
            "object_id": np.array([], dtype=np.int64),
            "order": np.array([], dtype=np.int64),
            "overwrite": np.array([], dtype=bool),
            "contrast_low": np.array([], dtype=np.float64),
            "contrast_high": np.array([], dtype=np.float64),
        }
    )


def make_points_layer(viewer, source: ImageSource, name: str):
    """A Points layer for clicks: class in ``features['label']``, coloured by it."""
    layer = viewer.add_points(
        np.empty((0, source.ndim)),
        ndim=source.ndim,
        name=name,
        features=empty_click_features(),
        face_color="label",
        face_color_cycle=POINT_COLORS,
        border_color="white",
        border_width=0.15,
        size=max(4.0, 0.03 * max(source.shape[-2:])),
        scale=source.scale,
        translate=source.translate,
    )
    layer.feature_defaults = {
        "label": POSITIVE,
        "object_id": 0,
        "order": 0,
        "overwrite": False,
        "contrast_low": np.nan,
        "contrast_high": np.nan,
    }
    layer.mode = "add"
    return layer


def make_labels_layer(viewer, source: ImageSource, name: str):
    return viewer.add_labels(
        np.zeros(source.shape, dtype=np.uint32),
        name=name,
        scale=source.scale,
        translate=source.translate,
        opacity=0.6,
    )


def check_labels_layer(layer, source: ImageSource) -> None:
    """``ValueError`` unless ``layer`` can hold the labels of ``source``."""
    shape = tuple(layer.data.shape)
    if shape != source.shape:
        raise ValueError(
            f"labels layer {layer.name!r} has shape {shape}, the image has {source.shape}"
        )
    if not np.issubdtype(layer.data.dtype, np.integer):
        raise ValueError(f"labels layer {layer.name!r} has dtype {layer.data.dtype}")


def read_plane(layer, plane: int, is_volume: bool) -> np.ndarray:
    """The labels of one plane (a view for numpy data)."""
    return np.asarray(layer.data[plane] if is_volume else layer.data)


def write_planes(layer, planes: dict[int, np.ndarray], is_volume: bool) -> int:
    """Write new plane labels as ONE undo step; returns the number of pixels changed."""
    parts = []
    for plane, new in planes.items():
        idx, values = changed_indices(read_plane(layer, plane, is_volume), new)
        if idx[0].size:
            if is_volume:
                idx = (np.full(idx[0].shape, plane, dtype=idx[0].dtype),) + idx
            parts.append((idx, values))
    if not parts:
        return 0
    with layer.block_history():
        for idx, values in parts:
            layer.data_setitem(idx, values)
    return int(sum(v.size for _, v in parts))


def click_position(points_layer, index: int, is_volume: bool) -> tuple[int, int, int]:
    """(plane, row, col) pixel of a point of the clicks layer (same grid as the image)."""
    coords = np.asarray(points_layer.data[index], dtype=float)
    pixel = np.round(coords).astype(int)
    plane = int(pixel[0]) if is_volume else 0
    return plane, int(pixel[-2]), int(pixel[-1])


def records_from_points(points_layer, is_volume: bool) -> list[ClickRecord]:
    """Click records (sorted by order) from the clicks layer's data and features."""
    feats = points_layer.features
    records = []
    for i in range(len(points_layer.data)):
        plane, row, col = click_position(points_layer, i, is_volume)
        low, high = feats["contrast_low"].iloc[i], feats["contrast_high"].iloc[i]
        limits = (float(low), float(high)) if np.isfinite(low) and np.isfinite(high) else None
        records.append(
            ClickRecord(
                object_id=int(feats["object_id"].iloc[i]),
                plane=plane,
                row=float(row),
                col=float(col),
                positive=feats["label"].iloc[i] == POSITIVE,
                order=int(feats["order"].iloc[i]),
                overwrite=bool(feats["overwrite"].iloc[i]),
                contrast_limits=limits,
            )
        )
    return sorted(records, key=lambda r: r.order)
