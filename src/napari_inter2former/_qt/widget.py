"""The dock widget: pick an image, click objects, commit, propagate, save.

Handlers only: the object/commit logic is in :mod:`napari_inter2former.annotation`,
layer writes in :mod:`._qt.layers`, background work in :mod:`._qt.workers`.

The current object is written straight into the target Labels layer under the
id it will keep (so what is shown is what a commit keeps). Each model step is
one ``data_setitem`` inside ``block_history()``: Ctrl+Z / Ctrl+Shift+Z on the
Labels layer walk back and forth through model steps, clears and propagated
planes. After an undo the next click restarts the model from what the layer
shows.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Labels, Points
from napari.utils import progress
from napari.utils.events import Event
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .. import volume as volume_ops
from .._writer import load_clicks, save_clicks, save_labels
from ..annotation import (
    NEGATIVE,
    POSITIVE,
    Annotation,
    ClickRecord,
    annotated_planes,
    next_label_id,
    replay,
    stop_plane,
)
from . import layers as L
from .workers import ModelRunner, fit_feature_cache

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = ["Inter2FormerWidget"]

logger = logging.getLogger(__name__)

NEW_LABELS = "<new labels layer>"
PROGRESS_DELAY_MS = 300  # clicks faster than this show no progress bar
ENCODE_AHEAD_DELAY_MS = 400  # encode the shown plane once the view has rested this long
TILE_AHEAD_STEP = 256  # px: a large image's tile is encoded ahead again once the view moves this far
KEYS = {
    "toggle": "T",
    "commit": "C",
    "clear": "Shift-C",
    "refine": "R",
    "propagate": "Shift-P",
    "fill": "Shift-F",
    "cancel": "Escape",
}


# the "Flip average" choices: text, Predictor(flip_ensemble=...)
FLIP_CHOICES = (("off", None), ("first click", "first"), ("every click", "every"))


def camera(viewer):
    """The viewer's camera (``viewer.scene.camera`` since napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return viewer.camera if scene is None else scene.camera


class Inter2FormerWidget(QWidget):
    """Click-to-segment dock widget.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    predictor_factory : callable, optional
        Returns the predictor; default: the packaged Inter2Former, created in a
        worker on first use. Tests pass ``FakePredictor``.
    """

    def __init__(
        self,
        napari_viewer: napari.viewer.Viewer,
        predictor_factory: Callable | None = None,
    ) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.runner = ModelRunner(predictor_factory, on_idle=self._dispatch)
        # a worker still running when the widget's Qt objects are deleted (the viewer
        # closed) must not call back into them
        self.destroyed.connect(self.runner.shut_down)
        self.annotation = Annotation()
        self.source: L.ImageSource | None = None
        self.points: Points | None = None
        self.labels: Labels | None = None
        self._owned_labels = False
        self._pending: list[ClickRecord] = []
        self._inflight: list[ClickRecord] = []
        self._next_positive = True
        self._press_modifiers: set[str] = set()
        self._order = 0
        self._adding = False
        self._commit_after_run = False
        self._progress = None
        self._click_time: float | None = None
        self.latencies: list[float] = []  # seconds from click to labels drawn
        self._encoded_ahead: set[int] = set()  # planes encoded (or being) since the image was picked
        # (plane, row // TILE_AHEAD_STEP, col // TILE_AHEAD_STEP) of the view centres whose tile of
        # a large image was encoded ahead
        self._tiles_ahead: set[tuple[int, int, int]] = set()
        # the view moved (or the image, plane or settings changed) since the last click: its
        # centre's tile is worth encoding ahead; after a click, the clicks' tiles are encoded
        self._centre_tile_wanted = True
        self._after_encode: Callable[[], None] | None = None  # an action waiting for it
        self._encode_timer = QTimer(self)
        self._encode_timer.setSingleShot(True)
        self._encode_timer.setInterval(ENCODE_AHEAD_DELAY_MS)
        self._encode_timer.timeout.connect(self.encode_ahead)
        self._build()
        self._add_callbacks()
        self._refresh_layer_choices()
        self._on_image_changed()

    # ----- construction -----
    def _build(self) -> None:
        self.image_combo = QComboBox()
        self.channel_spin = QSpinBox()
        self.channel_spin.setRange(-1, 64)
        self.channel_spin.setValue(-1)
        self.channel_spin.setSpecialValueText("none")
        self.channel_spin.setToolTip("Index along the first axis when it holds channels")
        self.labels_combo = QComboBox()
        self.overwrite_check = QCheckBox("Overwrite existing labels")
        from ..predictor import SMALL_OBJECT_ZOOM

        self.zoom_check = self._predictor_check(
            "Zoom in on small objects",
            "Segment an object a few pixels across again in an enlarged crop right after "
            "its first click (far better masks of small nuclei; a faint one's crop in a grey "
            "image is stretched to its brightness; that click waits for one more encoder run)",
            "zoom_in",
            values=(SMALL_OBJECT_ZOOM, None),
        )
        from ..predictor import NOISY_SMALL_IMAGE_SMOOTHING

        self.smooth_check = self._predictor_check(
            "Smooth noisy small images",
            "Smooth a grey image of at most 128 px whose pixel noise is strong before "
            "segmenting it (faint nuclei seen whole at the first click, not only where "
            "brightest; costs clicks when propagating through a stack); applies from the "
            "next object",
            "smooth_noisy",
            values=(NOISY_SMALL_IMAGE_SMOOTHING, None),
            checked=False,
        )
        self.regions_check = self._predictor_check(
            "Keep only clicked regions",
            "Drop predicted regions that hold no positive click (e.g. neighbouring "
            "nuclei the mask leaked into); click a part to keep it",
            "keep_clicked_regions",
        )
        self.cut_check = self._predictor_check(
            "Cut at negative clicks",
            "A negative click on the mask removes the part of it on the click's side of "
            "the nearest image edges (e.g. a neighbouring nucleus), not only the click",
            "cut_at_negative_clicks",
        )
        self.split_check = self._predictor_check(
            "Split first mask at necks",
            "An object's first mask keeps only the part on the clicked side of a narrow waist "
            "(a touching nucleus it leaked into); a positive click on the other part takes it in",
            "split_first_click",
            checked=False,
        )
        self.redecode_check = self._predictor_check(
            "Decode first click twice",
            "An object's first click is decoded again from its own first mask, whose outline "
            "may then also shrink to the object's edge: better first masks, fewer clicks",
            "redecode",
            values=("first", None),
            checked=True,
            # the two go together (docs/evaluation.md, session 18): off is the session-16 first click
            linked={"refine_shrink": ("first", False)},
        )
        self.refine_check = self._predictor_check(
            "Snap outline to edges",
            "Grow the mask's outline by up to a pixel to where the intensity is a third of "
            "the way from the surround's to the object's (small nuclei come out about a pixel "
            "too tight); a click on the outline moves that level for the object. On planes "
            "filled by Propagate the outline sits half-way and may move inwards too",
            "refine_boundary",
        )
        from ..predictor import Tiles

        self._tiles = Tiles()  # what the box switches on
        self.tiles_check = self._predictor_check(
            "Full resolution on large images",
            "On an image larger than 1024 px, segment each object at the image's resolution "
            "in a 1024-px tile around it (small nuclei come out far better); the first click "
            "in each new tile waits for the encoder",
            "tiles",
            values=(self._tiles, None),
        )
        self.tiles_check.toggled.connect(lambda on: on and self._want_centre_tile())
        self.flip_combo = QComboBox()
        for text, value in FLIP_CHOICES:
            self.flip_combo.addItem(text, value)
        self.flip_combo.setToolTip(
            "Segment a click also on the image turned by 180 degrees and average the two "
            "predictions: fewer stray pixels on touching nuclei, fewer clicks. One more encoder "
            "run per image; each click averaged takes about twice as long"
        )
        self.flip_combo.setCurrentIndex(self.flip_combo.findData("first"))  # the predictor's default
        self.flip_combo.currentIndexChanged.connect(self._on_flip_changed)
        self.sam_check = self._predictor_check(
            "Blend MobileSAM on photographs",
            "On a photograph (a colour image such as stained tissue, or a grey image the "
            "model takes for a photograph) average every click's mask with the answer of "
            "MobileSAM's mask decoder to the same clicks: far fewer clicks on natural images. "
            "Grey microscopy and composites of one or two fluorescence stains are never blended",
            "blend_sam",
            values=("photo", None),
        )
        self.merge_check = self._predictor_check(
            "Keep earlier corrections",
            "A click changes the mask only where the change reaches the click (a positive "
            "click may also grow it elsewhere), so it cannot undo earlier corrections",
            "merge_at_click",
            values=("signed", None),
            checked=False,
        )
        self.encode_ahead_check = QCheckBox("Encode ahead")
        self.encode_ahead_check.setToolTip(
            "Encode the shown image (of a stack: the plane shown; of a large image also the "
            "tile at the middle of the view) in the background as soon as it is picked or "
            "shown, so that the first click answers without waiting for the encoder"
        )
        self.encode_ahead_check.setChecked(True)
        self.encode_ahead_check.toggled.connect(lambda checked: checked and self.encode_ahead())
        self.iou_spin = QDoubleSpinBox()
        self.iou_spin.setRange(0.0, 1.0)
        self.iou_spin.setSingleStep(0.05)
        self.iou_spin.setValue(0.5)
        self.iou_spin.setToolTip("Propagation stops when slice-to-slice IoU drops below this")

        form = QFormLayout()
        form.addRow("Image", self.image_combo)
        form.addRow("Channel", self.channel_spin)
        form.addRow("Labels", self.labels_combo)
        form.addRow("", self.overwrite_check)
        form.addRow("", self.zoom_check)
        form.addRow("", self.smooth_check)
        form.addRow("", self.tiles_check)
        form.addRow("", self.regions_check)
        form.addRow("", self.cut_check)
        form.addRow("", self.split_check)
        form.addRow("", self.redecode_check)
        form.addRow("", self.refine_check)
        form.addRow("Flip average", self.flip_combo)
        form.addRow("", self.sam_check)
        form.addRow("", self.merge_check)
        form.addRow("", self.encode_ahead_check)
        form.addRow("Stop IoU", self.iou_spin)

        def button(text, key, slot):
            btn = QPushButton(f"{text} [{KEYS[key]}]" if key else text)
            btn.clicked.connect(lambda *_: slot())
            return btn

        self.toggle_btn = button("Next click: positive", "toggle", self.toggle_polarity)
        self.commit_btn = button("Commit object", "commit", self.commit)
        self.clear_btn = button("Clear object", "clear", self.clear)
        self.refine_btn = button("Refine selected label", "refine", self.refine_selected)
        self.propagate_btn = button("Propagate", "propagate", self.propagate)
        self.fill_btn = button("Fill between", "fill", self.fill_between)
        self.precompute_btn = button("Precompute stack", None, self.precompute)
        self.cancel_btn = button("Cancel", "cancel", self.cancel)
        self.save_btn = button("Save...", None, self._save_dialog)
        self.load_btn = button("Load clicks...", None, self._load_dialog)
        grid = QGridLayout()
        for i, btn in enumerate(
            [
                self.toggle_btn,
                self.refine_btn,
                self.commit_btn,
                self.clear_btn,
                self.propagate_btn,
                self.fill_btn,
                self.precompute_btn,
                self.cancel_btn,
                self.save_btn,
                self.load_btn,
            ]
        ):
            grid.addWidget(btn, i // 2, i % 2)
        self.status = QLabel()
        self.status.setWordWrap(True)
        help_text = QLabel(
            "Click on the image to add a positive point; Shift+click (or T) for a "
            "negative one. Ctrl+Z on the labels layer undoes model steps."
        )
        help_text.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(grid)
        layout.addWidget(self.status)
        layout.addWidget(help_text)
        layout.addStretch(1)

    def _add_callbacks(self) -> None:
        events = self.viewer.layers.events
        events.inserted.connect(self._on_layer_inserted)
        events.removed.connect(self._on_layer_removed)
        self.image_combo.currentIndexChanged.connect(self._on_image_changed)
        self.channel_spin.valueChanged.connect(self._on_image_changed)
        self.labels_combo.currentIndexChanged.connect(self._on_labels_changed)
        self.viewer.dims.events.current_step.connect(self._on_plane_shown)
        camera(self.viewer).events.center.connect(self._on_view_moved)

    def _refresh_layer_choices(self, event: Event | None = None) -> None:
        for combo, kind, extra in (
            (self.image_combo, Image, []),
            (self.labels_combo, Labels, [NEW_LABELS]),
        ):
            current = combo.currentText()
            names = extra + [ly.name for ly in self.viewer.layers if isinstance(ly, kind)]
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            if current in names:
                combo.setCurrentText(current)
            combo.blockSignals(False)
        if self.labels is not None and self.labels in self.viewer.layers:
            self.labels_combo.blockSignals(True)
            self.labels_combo.setCurrentText(self.labels.name)
            self.labels_combo.blockSignals(False)

    def _on_layer_inserted(self, event: Event) -> None:
        self._refresh_layer_choices()
        if self.source is None and isinstance(event.value, Image):
            self._on_image_changed()

    # ----- layer set-up -----
    def _on_image_changed(self, *args) -> None:
        name = self.image_combo.currentText()
        if not name or name not in self.viewer.layers:
            return
        channel = self.channel_spin.value()
        try:
            source = L.image_source(self.viewer.layers[name], None if channel < 0 else channel)
        except ValueError as err:
            self.source = None
            show_error(f"Inter2Former: {err}")
            return
        self._reset_session()
        self.source = source
        self._setup_points()
        self._on_labels_changed()
        self._want_centre_tile()

    def _on_plane_shown(self, *args) -> None:
        if self.source is not None and self.source.is_volume:
            self._want_centre_tile()  # restarted while the user scrolls

    def _on_view_moved(self, *args) -> None:
        if self._tiled():
            self._want_centre_tile()  # restarted while the user pans

    def _want_centre_tile(self) -> None:
        """Encode ahead once the view rests: the plane shown and, of a large image, the tile there."""
        self._centre_tile_wanted = True
        self._encode_timer.start()

    def _tiled(self) -> bool:
        """Whether objects of the image are segmented in tiles (larger than the network input)."""
        return (
            self.source is not None
            and self.tiles_check.isChecked()
            and max(self.source.shape[-2:]) > self._tiles.side
        )

    def _view_centre(self) -> tuple[float, float] | None:
        """Image (row, col) of the plane shown at the middle of the canvas (None: no labels yet)."""
        if self.labels is None or self.viewer.dims.ndisplay != 2:
            return None
        world = list(self.viewer.dims.point)[-self.labels.ndim :]
        world[-2:] = list(camera(self.viewer).center)[-2:]
        row, col = np.asarray(self.labels.world_to_data(world), dtype=float)[-2:]
        rows, cols = self.labels.data.shape[-2:]
        return float(np.clip(row, 0, rows - 1)), float(np.clip(col, 0, cols - 1))

    def _on_labels_changed(self, *args) -> None:
        if self.source is None:
            return
        choice = self.labels_combo.currentText()
        if choice and choice != NEW_LABELS and choice in self.viewer.layers:
            layer = self.viewer.layers[choice]
            try:
                L.check_labels_layer(layer, self.source)
            except ValueError as err:
                show_error(f"Inter2Former: {err}; using a new labels layer instead.")
                layer = None
        else:
            layer = None
        if layer is self.labels and layer is not None:
            return
        self.annotation.commit()
        if layer is None:
            name = f"labels [{self.source.layer.name}]"
            existing = self._layer_named(name)
            if existing is not None and isinstance(existing, Labels):
                try:
                    L.check_labels_layer(existing, self.source)
                    layer = existing
                except ValueError:
                    existing.name = f"{name} (old)"
            if layer is None:
                layer = L.make_labels_layer(self.viewer, self.source, name)
            self._owned_labels = True
            self._bind_keys(layer)
        else:
            self._owned_labels = False
        self.labels = layer
        self.labels_combo.blockSignals(True)
        self.labels_combo.setCurrentText(layer.name)
        self.labels_combo.blockSignals(False)
        if self.points is not None:
            self.viewer.layers.selection.active = self.points
        self._update_status()

    def _layer_named(self, name: str):
        """The viewer's layer called ``name``, or None (LayerList has no ``get``)."""
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _setup_points(self) -> None:
        name = f"clicks [{self.source.layer.name}]"
        layer = self._layer_named(name)
        if not isinstance(layer, Points) or layer.ndim != self.source.ndim:
            if layer is not None:
                layer.name = f"{name} (old)"
            layer = L.make_points_layer(self.viewer, self.source, name)
        if self.points is not layer:
            if self.points is not None:
                self._disconnect_points(self.points)
            layer.events.data.connect(self._on_points_data)
            layer.mouse_drag_callbacks.append(self._on_mouse_press)
            self._bind_keys(layer)
            self.points = layer
        records = L.records_from_points(layer, self.source.is_volume)
        self._order = max((r.order for r in records), default=-1) + 1

    def _disconnect_points(self, layer) -> None:
        layer.events.data.disconnect(self._on_points_data)
        if self._on_mouse_press in layer.mouse_drag_callbacks:
            layer.mouse_drag_callbacks.remove(self._on_mouse_press)

    def _bind_keys(self, layer) -> None:
        bindings = {
            "T": self.toggle_polarity,
            "C": self.commit,
            "Shift-C": self.clear,
            "R": self.refine_selected,
            "Shift-P": self.propagate,
            "Shift-F": self.fill_between,
            "Escape": self.cancel,
        }
        for key, func in bindings.items():
            layer.bind_key(key, lambda _layer, f=func: f(), overwrite=True)

    def _on_layer_removed(self, event: Event) -> None:
        """A layer went away: stop work that used it; layers are re-made on the next action."""
        removed = event.value
        self._refresh_layer_choices()
        if removed not in (getattr(self.source, "layer", None), self.labels, self.points):
            return
        if self.runner.cancel():
            show_warning("Inter2Former: a layer in use was deleted; the running job stopped.")
        self._pending.clear()
        self._inflight = []
        self._close_progress()
        self.annotation.commit()
        if removed is self.points:
            self._disconnect_points(removed)
            self.points = None
        if removed is self.labels:
            self.labels = None
        if self.source is not None and removed is self.source.layer:
            self.source = None
        self._update_status()

    def _reset_session(self) -> None:
        self.runner.cancel()
        self._pending.clear()
        self._encoded_ahead.clear()
        self._tiles_ahead.clear()
        self._after_encode = None
        self.annotation = Annotation()

    # ----- clicks -----
    def _on_mouse_press(self, layer, event) -> None:
        self._press_modifiers = {str(getattr(m, "name", m)) for m in event.modifiers}

    def _on_points_data(self, event: Event) -> None:
        if self._adding or getattr(event, "action", None) != "added":
            return
        n = len(self.points.data) if self.points is not None else 0
        for index in sorted(int(i) % n for i in event.data_indices if n):  # napari: -1, -2 ...
            self._on_point_added(index)

    def _ready(self) -> bool:
        if self.source is None:
            self._on_image_changed()
        elif self.points is None:
            self._setup_points()
        if self.source is not None and self.labels is None:
            self._on_labels_changed()
        if self.source is None or self.labels is None or self.points is None:
            show_warning("Inter2Former: pick a 2-D or 3-D image layer first.")
            return False
        return True

    def _on_point_added(self, index: int) -> None:
        modifiers, self._press_modifiers = self._press_modifiers, set()
        if not self._ready():
            self._remove_points([index])
            return
        if self.viewer.dims.ndisplay == 3:
            self._remove_points([index])
            show_warning("Inter2Former: clicks work in 2-D view only (press Ctrl+Y).")
            return
        plane, row, col = L.click_position(self.points, index, self.source.is_volume)
        spatial = self.source.volume.shape[:3]
        if not (0 <= plane < spatial[0] and 0 <= row < spatial[1] and 0 <= col < spatial[2]):
            self._remove_points([index])
            show_info("Inter2Former: the click lies outside the image.")
            return
        positive = self.points.features["label"].iloc[index] == POSITIVE
        if modifiers & {"Shift", "Control", "Meta"}:
            positive = False
        if self.annotation.current is None:
            if not self._start_object(next_label_id(self.labels.data)):
                self._remove_points([index])
                return
        limits = self.source.contrast_limits
        record = ClickRecord(
            object_id=self.annotation.current.object_id,
            plane=plane,
            row=float(row),
            col=float(col),
            positive=positive,
            order=self._order,
            overwrite=self.overwrite_check.isChecked(),
            contrast_limits=limits,
        )
        self._order += 1
        self._set_point_features(index, record)
        self._pending.append(record)
        self._centre_tile_wanted = False
        self._click_time = time.perf_counter()
        self._dispatch()

    def add_click(self, plane: int, row: float, col: float, positive: bool = True) -> None:
        """Add a click at a pixel of the image, as a user click on the clicks layer would."""
        if not self._ready():
            return
        self.points.feature_defaults = {
            **self.points.feature_defaults.iloc[0].to_dict(),
            "label": POSITIVE if positive else NEGATIVE,
        }
        coords = [plane, row, col] if self.source.is_volume else [row, col]
        self.points.add(np.asarray([coords], dtype=float))
        self._set_default_label()

    def add_click_world(self, position, positive: bool = True) -> None:
        """Add a click at a world position (as from a mouse event)."""
        if not self._ready():
            return
        data = np.asarray(self.points.world_to_data(position), dtype=float)
        self.points.feature_defaults = {
            **self.points.feature_defaults.iloc[0].to_dict(),
            "label": POSITIVE if positive else NEGATIVE,
        }
        self.points.add(data[None])
        self._set_default_label()

    def _set_point_features(self, index: int, record: ClickRecord) -> None:
        feats = self.points.features.copy()
        low, high = record.contrast_limits or (np.nan, np.nan)
        feats.loc[index, "label"] = POSITIVE if record.positive else NEGATIVE
        feats.loc[index, "object_id"] = record.object_id
        feats.loc[index, "order"] = record.order
        feats.loc[index, "overwrite"] = record.overwrite
        feats.loc[index, "contrast_low"] = low
        feats.loc[index, "contrast_high"] = high
        self.points.features = feats
        # a selected point takes later feature_defaults (T): deselect the processed click
        self.points.selected_data = set()
        self.points.refresh_colors()

    def _remove_points(self, indices) -> None:
        if self.points is None or not len(indices):
            return
        self._adding = True
        try:
            self.points.selected_data = {int(i) for i in indices}
            self.points.remove_selected()
        finally:
            self._adding = False

    def _remove_clicks(self, records) -> None:
        orders = {r.order for r in records}
        if self.points is None or not orders:
            return
        feats = self.points.features
        self._remove_points([i for i in range(len(feats)) if feats["order"].iloc[i] in orders])

    def _start_object(self, object_id: int) -> bool:
        dtype = self.labels.data.dtype
        if np.issubdtype(dtype, np.integer) and object_id > np.iinfo(dtype).max:
            show_error(
                f"Inter2Former: label id {object_id} does not fit the labels layer's {dtype}."
            )
            return False
        self.annotation.start_object(object_id)
        self._update_status()
        return True

    def _dispatch(self) -> None:
        """Start the next batch of clicks if the model is free (latest click wins)."""
        if self.runner.busy:
            if self.runner.kind == "encode" and self._pending and self._progress is None:
                self._show_progress(f"Inter2Former: encoding {self._encoded_views()}", total=0)
            if self.runner.cancelling or self._pending:
                self._update_status()
            return
        if self._after_encode is not None and not self._pending:
            action, self._after_encode = self._after_encode, None
            action()
            return
        if self._commit_after_run and not self._pending:
            self._commit_after_run = False
            self.commit()
        if not self._pending or self.source is None or self.labels is None:
            self._update_status()
            self.encode_ahead()
            return
        key = self._pending[0].key
        batch = []
        while self._pending and self._pending[0].key == key:
            batch.append(self._pending.pop(0))
        if self.annotation.current is None or self.annotation.current.object_id != key[0]:
            self._pending.clear()  # the object was cleared while its clicks waited
            self._remove_clicks(batch)
            return
        is_volume = self.source.is_volume
        jobs = [
            self.annotation.click_job(rec, L.read_plane(self.labels, rec.plane, is_volume))
            for rec in batch
        ]
        self._inflight = batch
        if jobs[0].restart:  # may encode a new plane: a progress bar if it takes long
            self._encoded_ahead.add(batch[0].plane)
            self._show_progress_later(
                f"Inter2Former: encoding {self._encoded_views()}", PROGRESS_DELAY_MS
            )
        self.runner.run_clicks(
            self.source.volume,
            jobs,
            rgb=self.source.rgb,
            on_done=lambda result, b=batch: self._on_click_result(result, b[-1].overwrite),
            on_error=self._on_error,
            on_finished=self._on_run_finished,
        )
        self._update_status()

    def _on_click_result(self, result, overwrite: bool) -> None:
        object_id, plane, mask = result
        self._inflight = []
        if self.labels is None:
            return
        is_volume = self.source.is_volume
        new = self.annotation.apply_mask(
            object_id, plane, mask, L.read_plane(self.labels, plane, is_volume), overwrite=overwrite
        )
        if new is not None:
            L.write_planes(self.labels, {plane: new}, is_volume)
        if self._click_time is not None and not self._pending:
            self.latencies.append(time.perf_counter() - self._click_time)
            self._click_time = None

    def _on_run_finished(self) -> None:
        self._close_progress()

    def _encoded_views(self) -> str:
        """What the encoder runs on at an object's first click, for the progress bar."""
        if self.flip_combo.currentData() is None:
            return "the image"
        return "the image and its 180-degree turn"

    def encode_ahead(self) -> None:
        """Encode the shown plane in the background, ahead of its first click.

        Does nothing while the model is busy or clicks wait (the dispatcher calls
        it again when the model is free), when "Encode ahead" is off, or when
        the plane was encoded (or clicked) since the image was picked.
        """
        if (
            not self.encode_ahead_check.isChecked()
            or self.source is None
            or self.runner.busy
            or self._pending
        ):
            return
        plane = self.current_plane()
        around = self._view_centre() if self._tiled() and self._centre_tile_wanted else None
        spot = None if around is None else (plane, *(int(v // TILE_AHEAD_STEP) for v in around))
        if plane in self._encoded_ahead and (spot is None or spot in self._tiles_ahead):
            return
        self._encoded_ahead.add(plane)  # also when cancelled: not again unless asked
        if spot is not None:
            self._tiles_ahead.add(spot)
        volume, kwargs = self.source.volume, self._image_kwargs()

        def planes(predictor):
            predictor.encode_ahead(np.asarray(volume[plane]), around=around, **kwargs)
            yield plane, None

        self.runner.run_planes(
            planes,
            kind="encode",
            on_plane=lambda item: None,
            on_error=self._on_error,
            on_finished=self._on_run_finished,
        )
        self._update_status()

    def _wait_for_encode_ahead(self, action: Callable[[], None]) -> bool:
        """While only an encode-ahead runs, queue ``action`` for when it ends (True)."""
        if self.runner.kind != "encode" or self._pending:
            return False
        self._after_encode = action
        self._show_progress(f"Inter2Former: encoding {self._encoded_views()} first", total=0)
        self._update_status()
        return True

    def _on_error(self, exc: Exception) -> None:
        self._close_progress()
        self.annotation.predictor_key = None
        self._remove_clicks(self._inflight + self._pending)
        self._inflight = []
        self._pending.clear()
        if self.runner.predictor is None:
            show_error(f"Inter2Former: the model could not be loaded: {exc}")
        else:
            show_error(f"Inter2Former: the model failed: {exc}")
        logger.error("model error", exc_info=exc)

    # ----- actions -----
    def _on_flip_changed(self, _index: int) -> None:
        self.runner.predictor_settings["flip_ensemble"] = self.flip_combo.currentData()
        if self.flip_combo.currentData() is not None:  # the turned views are not encoded yet
            self._encoded_ahead.clear()
            self._tiles_ahead.clear()
            self._want_centre_tile()

    def _predictor_check(
        self,
        text: str,
        tooltip: str,
        setting: str,
        values: tuple = (True, False),
        checked: bool = True,
        linked: dict[str, tuple] | None = None,
    ) -> QCheckBox:
        """A check box setting the predictor attribute ``setting``.

        ``values``: what the attribute is set to when checked and unchecked;
        ``checked``: the box's start state, matching the predictor's default;
        ``linked``: other attributes the box sets alike, each to its (checked,
        unchecked) values.
        """
        box = QCheckBox(text)
        box.setToolTip(tooltip)
        box.setChecked(checked)
        settings = {setting: values, **(linked or {})}

        def toggled(checked: bool) -> None:
            for name, (on, off) in settings.items():
                self.runner.predictor_settings[name] = on if checked else off

        box.toggled.connect(toggled)
        return box

    def toggle_polarity(self) -> None:
        """Switch the class of the next click between positive and negative."""
        self._next_positive = not self._next_positive
        self._set_default_label()
        self.toggle_btn.setText(
            f"Next click: {'positive' if self._next_positive else 'negative'} [{KEYS['toggle']}]"
        )

    def _set_default_label(self) -> None:
        if self.points is not None:
            self.points.selected_data = set()
            defaults = self.points.feature_defaults.iloc[0].to_dict()
            defaults["label"] = POSITIVE if self._next_positive else NEGATIVE
            self.points.feature_defaults = defaults

    def commit(self) -> None:
        """Keep the current object; the next click starts a new one."""
        if self.runner.busy and self.runner.kind == "clicks" or self._pending:
            self._commit_after_run = True
            return
        obj = self.annotation.commit()
        if obj is not None:
            show_info(f"Inter2Former: object {obj.object_id} committed.")
        self._update_status()

    def clear(self) -> None:
        """Drop the current object: its pixels go back to what was there before."""
        if self.runner.busy and self.runner.kind not in ("precompute", "encode"):
            self.runner.cancel()
        if self._pending:
            self._remove_clicks(self._pending)
            self._pending.clear()
        if self.labels is None or self.annotation.current is None:
            return
        oid = self.annotation.current.object_id
        is_volume = self.source.is_volume
        restored = self.annotation.clear(lambda p: L.read_plane(self.labels, p, is_volume))
        L.write_planes(self.labels, restored, is_volume)
        self._remove_clicks([r for r in self._records() if r.object_id == oid])
        self._update_status()

    def refine_selected(self) -> None:
        """Make the labels layer's selected label the current object (clicks correct it)."""
        if not self._ready():
            return
        label = int(self.labels.selected_label)
        if label <= 0:
            show_warning("Inter2Former: select a label to refine (e.g. with the picker, L).")
            return
        if not (np.asarray(self.labels.data) == label).any():
            show_warning(f"Inter2Former: label {label} is not in {self.labels.name!r}.")
            return
        self.commit()
        self.annotation.commit()
        self._start_object(label)
        self._focus_points()

    def _focus_points(self) -> None:
        if self.points is not None:
            self.viewer.layers.selection.active = self.points
            self.points.mode = "add"

    def _records(self) -> list[ClickRecord]:
        if self.points is None or self.source is None:
            return []
        return L.records_from_points(self.points, self.source.is_volume)

    def current_plane(self) -> int:
        """Plane of the image shown in the viewer (0 for 2-D)."""
        if self.source is None or not self.source.is_volume:
            return 0
        world = list(self.viewer.dims.point)[-3:]
        data = self.labels.world_to_data(world) if self.labels is not None else world
        return int(np.clip(np.round(data[0]), 0, self.source.volume.shape[0] - 1))

    def _volume_ready(self, action: str) -> bool:
        if not self._ready():
            return False
        if not self.source.is_volume:
            show_info(f"Inter2Former: {action} needs a 3-D stack.")
            return False
        if self.annotation.current is None:
            show_info(f"Inter2Former: click an object (or refine a label) before {action}.")
            return False
        if self.runner.busy or self._pending:
            show_info("Inter2Former: the model is busy; wait or cancel.")
            return False
        return True

    def _image_kwargs(self) -> dict:
        if self.source.rgb:
            return {"channel_axis": -1}
        return {"contrast_limits": self.source.contrast_limits}

    def propagate(self) -> None:
        """Carry the current object from this plane up and down the stack."""
        if self._wait_for_encode_ahead(self.propagate) or not self._volume_ready("propagation"):
            return
        obj = self.annotation.current
        plane = self.current_plane()
        if plane not in obj.planes:
            if not obj.planes:
                show_info("Inter2Former: the current object is empty.")
                return
            plane = min(obj.planes, key=lambda p: abs(p - plane))  # nearest object plane
        start = L.read_plane(self.labels, plane, True) == obj.object_id
        records = self._records()
        n_planes = self.source.volume.shape[0]
        runs = []
        for direction in (+1, -1):
            stop = stop_plane(records, obj.object_id, plane, direction)
            last = (n_planes - 1 if direction > 0 else 0) if stop is None else stop - direction
            if (last - plane) * direction > 0:
                runs.append((direction, last))
        if not runs:
            show_info("Inter2Former: nothing to propagate (stop clicks next to this plane).")
            return
        iou, volume, kwargs = self.iou_spin.value(), self.source.volume, self._image_kwargs()

        def planes(predictor):
            for direction, last in runs:
                yield from volume_ops.propagate(
                    predictor, volume, plane, start, direction=direction, stop_plane=last,
                    iou_threshold=iou, **kwargs,
                )

        total = sum(abs(last - plane) for _, last in runs)
        self._run_planes(planes, "propagate", f"Inter2Former: propagating from plane {plane}",
                         total)

    def fill_between(self) -> None:
        """Fill the planes between the object's annotated planes from both ends."""
        if self._wait_for_encode_ahead(self.fill_between) or not self._volume_ready(
            "filling between planes"
        ):
            return
        obj = self.annotation.current
        anchors = [p for p in annotated_planes(self._records(), obj.object_id) if p in obj.planes]
        if obj.object_id not in {r.object_id for r in self._records()}:
            anchors = obj.planes
        pairs = [(a, b) for a, b in itertools.pairwise(anchors) if b - a > 1]
        if not pairs:
            show_info("Inter2Former: annotate the object on two planes with a gap between them.")
            return
        masks = {p: L.read_plane(self.labels, p, True) == obj.object_id for p in anchors}
        iou, volume, kwargs = self.iou_spin.value(), self.source.volume, self._image_kwargs()

        def planes(predictor):
            for a, b in pairs:
                yield from volume_ops.fill_between(
                    predictor, volume, a, masks[a], b, masks[b], iou_threshold=iou, **kwargs
                )

        total = sum(b - a - 1 for a, b in pairs)
        self._run_planes(planes, "fill", "Inter2Former: filling between planes", total)

    def _run_planes(self, planes, kind, description, total) -> None:
        self.annotation.predictor_key = None
        oid = self.annotation.current.object_id
        overwrite = self.overwrite_check.isChecked()
        self._show_progress(description, total=total)

        def on_plane(item):
            plane, mask = item
            if self._progress is not None:
                self._progress.update(1)
            if self.labels is None:
                return
            new = self.annotation.apply_mask(
                oid, plane, mask, L.read_plane(self.labels, plane, True), overwrite=overwrite
            )
            if new is not None:
                L.write_planes(self.labels, {plane: new}, True)

        self.runner.run_planes(
            planes, kind=kind, on_plane=on_plane, on_error=self._on_error,
            on_finished=self._on_run_finished,
        )
        self._update_status()

    def precompute(self) -> None:
        """Encode every plane in the background (features cached for fast clicks)."""
        if self._wait_for_encode_ahead(self.precompute) or not self._ready():
            return
        if self.runner.busy or self._pending:
            show_info("Inter2Former: the model is busy; wait or cancel.")
            return
        self.annotation.predictor_key = None
        volume, rgb = self.source.volume, self.source.rgb
        kwargs = {"channel_axis": -1 if rgb else None, "contrast_limits": self.source.contrast_limits}
        n = volume.shape[0]
        # large planes: also the tile at the view centre, where propagation segments its objects
        around = self._view_centre() if self._tiled() else None

        def planes(predictor):
            for p in range(n):
                image = np.asarray(volume[p])
                predictor.set_image(image, **kwargs)
                if around is not None:
                    predictor.encode_ahead(image, around=around, turned=False, **kwargs)
                if p == 0:
                    fit_feature_cache(predictor, n if around is None else 2 * n)
                yield p, None

        what = "planes" if around is None else "planes and their tiles at the view centre"
        self._show_progress(f"Inter2Former: encoding {what}", total=n)
        self.runner.run_planes(
            planes,
            kind="precompute",
            on_plane=lambda item: self._progress is not None and self._progress.update(1),
            on_error=self._on_error,
            on_finished=self._on_run_finished,
        )

    def cancel(self) -> None:
        """Stop the running job; nothing it produces afterwards is written."""
        cancelled = self.runner.cancel()
        dropped = self._inflight + self._pending
        if dropped:
            self._remove_clicks(dropped)
        self._inflight = []
        self._pending.clear()
        self._commit_after_run = False
        self._after_encode = None
        self.annotation.predictor_key = None
        self._close_progress()
        if cancelled:
            show_info("Inter2Former: cancelled.")
        self._update_status()

    # ----- saving and replay -----
    def save(self, path) -> tuple[str, str]:
        """Write the labels to ``path`` (TIFF) and the clicks to ``<stem>_clicks.csv``."""
        if self.labels is None:
            raise RuntimeError("there is no labels layer to save")
        path = Path(path)
        if path.suffix.lower() not in (".tif", ".tiff"):
            path = path.with_suffix(".tif")
        tif = save_labels(
            path, np.asarray(self.labels.data), scale=self.labels.scale,
            translate=self.labels.translate, name=self.labels.name,
        )
        csv = save_clicks(path.with_name(f"{path.stem}_clicks.csv"), self._records())
        return tif, csv

    def load_clicks(self, path) -> None:
        """Load a clicks CSV into the clicks layer and replay it into the labels."""
        if self._wait_for_encode_ahead(lambda: self.load_clicks(path)) or not self._ready():
            return
        if self.runner.busy or self._pending:
            show_info("Inter2Former: the model is busy; wait or cancel.")
            return
        try:
            records = load_clicks(path)
        except (OSError, ValueError, KeyError) as err:
            show_error(f"Inter2Former: could not read {path}: {err}")
            return
        self.annotation.commit()
        is_volume = self.source.is_volume
        coords = [[r.plane, r.row, r.col] if is_volume else [r.row, r.col] for r in records]
        feats = L.empty_click_features()
        for i, r in enumerate(records):
            low, high = r.contrast_limits or (np.nan, np.nan)
            feats.loc[i] = [POSITIVE if r.positive else NEGATIVE, r.object_id, r.order,
                            r.overwrite, low, high]
        self._adding = True
        try:
            self.points.data = np.asarray(coords, dtype=float).reshape(-1, self.source.ndim)
            self.points.features = feats
            self.points.refresh_colors()
        finally:
            self._adding = False
        self._order = max((r.order for r in records), default=-1) + 1
        start = np.asarray(self.labels.data)
        start = start if is_volume else start[None]
        volume, rgb = self.source.volume, self.source.rgb

        def planes(predictor):
            yield -1, replay(predictor, volume, records, start, rgb=rgb)

        def on_result(item):
            _, labels = item
            if self.labels is None:
                return
            L.write_planes(
                self.labels, {p: labels[p] for p in range(labels.shape[0])} if is_volume
                else {0: labels[0]}, is_volume,
            )

        self._show_progress("Inter2Former: replaying clicks", total=0)
        self.runner.run_planes(planes, kind="replay", on_plane=on_result,
                               on_error=self._on_error, on_finished=self._on_run_finished)

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save labels", "labels.tif", "TIFF (*.tif)")
        if path:
            tif, csv = self.save(path)
            show_info(f"Inter2Former: saved {tif} and {csv}")

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load clicks", "", "CSV (*.csv)")
        if path:
            self.load_clicks(path)

    # ----- feedback -----
    def _show_progress_later(self, description: str, delay_ms: int) -> None:
        """Show an indeterminate bar only if the job still runs after ``delay_ms``."""
        worker_token = self.runner._token + 1  # the token of the job about to start

        def show():
            if self.runner.is_current(worker_token) and self._progress is None:
                self._show_progress(description, total=0)

        QTimer.singleShot(delay_ms, show)

    def _show_progress(self, description: str, total: int) -> None:
        self._close_progress()
        self._progress = progress(total=total, desc=description)

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def _update_status(self) -> None:
        obj = self.annotation.current
        parts = [f"Object: {obj.object_id}" if obj else "Object: none (click to start)"]
        if self.runner.busy:
            parts.append(f"busy: {self.runner.kind}")
        if self._pending:
            parts.append(f"{len(self._pending)} click(s) waiting")
        if self.latencies:
            parts.append(f"last click {1000 * self.latencies[-1]:.0f} ms")
        self.status.setText(" | ".join(parts))

    def closeEvent(self, event) -> None:
        self._encode_timer.stop()
        self.runner.cancel()
        super().closeEvent(event)
