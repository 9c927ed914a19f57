import numpy as np
import pytest
from widget_helpers import (
    EncodeAheadRecorder,
    SlowFakePredictor,
    ball_stack,
    discs_image,
    wait_idle,
)

from napari_inter2former._qt import widget as widget_module
from napari_inter2former._writer import load_clicks, read_labels
from napari_inter2former.annotation import as_volume, replay

pytestmark = pytest.mark.gui


@pytest.fixture
def notes(monkeypatch):
    """Capture the widget's napari notifications as (kind, message)."""
    seen = []
    for kind in ("show_info", "show_warning", "show_error"):
        monkeypatch.setattr(
            widget_module, kind, lambda msg, kind=kind: seen.append((kind, str(msg)))
        )
    return seen


class FakeMouse:
    def __init__(self, modifiers=()):
        self.modifiers = list(modifiers)


def test_click_shows_mask_with_layer_geometry(make_widget, qtbot):
    image, left, _right = discs_image()
    _viewer, widget = make_widget(image, scale=(2.0, 0.5), translate=(10, -4))
    labels, points = widget.labels, widget.points
    assert (labels.name, points.name) == ("labels [img]", "clicks [img]")
    np.testing.assert_array_equal(labels.scale, [2.0, 0.5])
    np.testing.assert_array_equal(points.translate, [10, -4])
    # a click in world coordinates lands on the right pixel (row 30, col 20)
    widget.add_click_world([10 + 2.0 * 30, -4 + 0.5 * 20])
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(labels.data == 1, left)
    object_ids = points.features["object_id"].tolist()
    assert object_ids == [1]
    assert len(widget.latencies) == 1


def test_negative_clicks_by_modifier_and_toggle(make_widget, qtbot):
    image, left, right = discs_image()
    _viewer, widget = make_widget(image)
    widget.add_click(0, 30, 20)
    widget.add_click(0, 30, 56)
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.labels.data == 1, left | right)
    # Shift held at mouse press makes the next added point negative
    widget._on_mouse_press(widget.points, FakeMouse(["Shift"]))
    widget.points.add(np.array([[30.0, 56.0]]))
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.labels.data == 1, left)
    labels_feature = widget.points.features["label"].tolist()
    assert labels_feature == ["positive", "positive", "negative"]
    # T toggles the class of the next click, colour follows the feature
    widget.toggle_polarity()
    assert "negative" in widget.toggle_btn.text() and "[T]" in widget.toggle_btn.text()
    widget.points.add(np.array([[30.0, 20.0]]))
    wait_idle(qtbot, widget)
    assert widget.points.features["label"].iloc[-1] == "negative"
    assert not (widget.labels.data == 1).any()
    colours = widget.points.face_color
    np.testing.assert_allclose(colours[0], colours[1])
    assert not np.allclose(colours[0], colours[2])


def test_commit_gives_new_ids_and_keeps_existing(make_widget, qtbot):
    image, _left, right = discs_image()
    _viewer, widget = make_widget(image)
    widget.add_click(0, 30, 20)
    wait_idle(qtbot, widget)
    widget.commit()
    assert widget.annotation.current is None
    # paint a line of label 7 through the right disc: keep-existing protects it
    widget.labels.data_setitem((np.full(10, 30), np.arange(50, 60)), 7)
    widget.add_click(0, 30, 56)
    wait_idle(qtbot, widget)
    widget.commit()
    data = widget.labels.data
    assert set(np.unique(data)) == {0, 1, 7, 8}
    assert (data[30, 50:60] == 7).all()
    np.testing.assert_array_equal(data == 8, right & (data != 7))
    # overwrite mode: a new object over object 8 takes its pixels
    widget.overwrite_check.setChecked(True)
    widget.add_click(0, 30, 56)
    wait_idle(qtbot, widget)
    widget.commit()
    np.testing.assert_array_equal(widget.labels.data == 9, right)


def test_undo_redo_steps_through_model_steps_and_clear(make_widget, qtbot):
    image, left, right = discs_image()
    _viewer, widget = make_widget(image)
    labels = widget.labels
    widget.add_click(0, 30, 20)
    wait_idle(qtbot, widget)
    widget.add_click(0, 30, 56)
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(labels.data == 1, left | right)
    labels.undo()
    np.testing.assert_array_equal(labels.data == 1, left)
    labels.undo()
    assert not labels.data.any()
    labels.redo()
    np.testing.assert_array_equal(labels.data == 1, left)
    # the next click continues from what the layer shows (the undone state)
    widget.add_click(0, 5, 5, positive=False)
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(labels.data == 1, left)
    # clear drops the object, and is itself undoable
    widget.clear()
    assert not labels.data.any()
    assert len(widget.points.data) == 0
    labels.undo()
    np.testing.assert_array_equal(labels.data == 1, left)


def test_commit_while_running_waits_for_the_result(make_widget, qtbot):
    image, left, right = discs_image()
    _viewer, widget = make_widget(image, predictor=SlowFakePredictor(0.2))
    widget.add_click(0, 30, 20)
    widget.add_click(0, 30, 56)  # waits while the first runs: drawn in the next batch
    widget.commit()
    assert widget.annotation.current is not None
    wait_idle(qtbot, widget)
    qtbot.waitUntil(lambda: widget.annotation.current is None, timeout=3000)
    np.testing.assert_array_equal(widget.labels.data == 1, left | right)


def test_refine_existing_label(make_widget, qtbot):
    image, left, right = discs_image()
    viewer, widget = make_widget(image)
    start = np.zeros(image.shape, np.uint16)
    start[left] = 3  # e.g. from cellpose
    layer = viewer.add_labels(start, name="cellpose")
    widget.labels_combo.setCurrentText("cellpose")
    assert widget.labels is layer
    layer.selected_label = 3
    widget.refine_selected()
    assert widget.annotation.current.object_id == 3
    widget.add_click(0, 30, 56)
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(layer.data == 3, left | right)
    widget.add_click(0, 30, 20, positive=False)
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(layer.data == 3, right)


def test_propagate_fills_the_object_planes(make_widget, qtbot):
    volume, expected = ball_stack()
    viewer, widget = make_widget(volume, scale=(3.0, 1.0, 1.0))
    assert widget.labels.data.shape == volume.shape
    widget.add_click(7, 24, 24)
    wait_idle(qtbot, widget)
    assert set(np.nonzero(widget.labels.data.any(axis=(1, 2)))[0]) == {7}
    viewer.dims.set_point(0, 7 * 3.0)
    assert widget.current_plane() == 7
    widget.propagate()
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.labels.data == 1, expected)
    # each propagated plane is its own undo step
    widget.labels.undo()
    filled = set(np.nonzero((widget.labels.data == 1).any(axis=(1, 2)))[0])
    assert len(filled) == expected.any(axis=(1, 2)).sum() - 1


def test_negative_click_stops_propagation(make_widget, qtbot):
    volume, _expected = ball_stack()
    viewer, widget = make_widget(volume)
    widget.add_click(7, 24, 24)
    widget.add_click(10, 24, 24, positive=False)  # "stop here" marker
    wait_idle(qtbot, widget)
    viewer.dims.set_point(0, 7)
    widget.propagate()
    wait_idle(qtbot, widget)
    planes = set(np.nonzero((widget.labels.data == 1).any(axis=(1, 2)))[0])
    assert planes == set(range(3, 10))


def test_fill_between_two_annotated_planes(make_widget, qtbot):
    volume, expected = ball_stack(planes=(2, 13))
    _viewer, widget = make_widget(volume)
    widget.add_click(4, 24, 24)
    widget.add_click(10, 24, 24)
    wait_idle(qtbot, widget)
    widget.fill_between()
    wait_idle(qtbot, widget)
    planes = set(np.nonzero((widget.labels.data == 1).any(axis=(1, 2)))[0])
    assert planes == set(range(4, 11))
    np.testing.assert_array_equal(widget.labels.data[4:11] == 1, expected[4:11])


def test_cancel_mid_propagation_leaves_no_partial_planes(make_widget, qtbot):
    volume, expected = ball_stack(n_planes=24, planes=(0, 23))
    viewer, widget = make_widget(volume, predictor=SlowFakePredictor(0.1))
    widget.add_click(2, 24, 24)
    wait_idle(qtbot, widget)
    viewer.dims.set_point(0, 2)
    widget.propagate()
    qtbot.waitUntil(lambda: (widget.labels.data[4] == 1).any(), timeout=5000)
    widget.cancel()
    at_cancel = widget.labels.data.copy()
    qtbot.wait(500)  # the worker would have yielded a few more planes by now
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.labels.data, at_cancel)
    filled = np.nonzero((at_cancel == 1).any(axis=(1, 2)))[0]
    assert 3 <= len(filled) < 20 and list(filled) == list(range(2, 2 + len(filled)))
    # every written plane is complete: exactly the object
    for plane in filled:
        np.testing.assert_array_equal(at_cancel[plane] == 1, expected[plane])


def test_save_round_trip_and_csv_replay(make_widget, qtbot, tmp_path):
    image, _left, _right = discs_image()
    _viewer, widget = make_widget(image, scale=(0.5, 0.25))
    widget.add_click(0, 30, 20)
    widget.add_click(0, 30, 56)
    wait_idle(qtbot, widget)
    widget.add_click(0, 30, 56, positive=False)
    wait_idle(qtbot, widget)
    widget.commit()
    widget.add_click(0, 30, 56)
    wait_idle(qtbot, widget)
    widget.commit()
    tif, csv = widget.save(tmp_path / "labels.tif")
    data, meta = read_labels(tif)
    assert data.dtype == widget.labels.data.dtype
    np.testing.assert_array_equal(data, widget.labels.data)
    assert meta["scale"] == [0.5, 0.25]
    records = load_clicks(csv)
    assert [r.object_id for r in records] == [1, 1, 1, 2]
    assert [r.positive for r in records] == [True, True, False, True]
    # replay without Qt reproduces the labels bit for bit
    from napari_inter2former.testing import FakePredictor

    vol, _ = as_volume(image)
    np.testing.assert_array_equal(replay(FakePredictor(), vol, records)[0], data)
    # and the widget's "Load clicks" replays into a fresh labels layer
    widget.clear()
    widget.labels.data = np.zeros_like(data)
    widget.load_clicks(csv)
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.labels.data, data)
    assert len(widget.points.data) == 4


def test_bad_inputs_notify(make_widget, qtbot, notes):
    image, _left, _right = discs_image()
    viewer, widget = make_widget(image)
    # 4-D data: a notification, no traceback
    viewer.add_image(np.zeros((2, 3, 16, 16), np.uint8), name="4d")
    widget.image_combo.setCurrentText("4d")
    assert notes[-1][0] == "show_error" and "4-D" in notes[-1][1]
    assert widget.source is None
    # picking a channel makes it usable
    widget.channel_spin.setValue(1)
    assert widget.source is not None and widget.source.is_volume
    widget.channel_spin.setValue(-1)
    widget.image_combo.setCurrentText("img")
    # a labels layer of the wrong shape is refused
    viewer.add_labels(np.zeros((5, 5), np.uint8), name="small")
    widget.labels_combo.setCurrentText("small")
    assert notes[-1][0] == "show_error" and "shape" in notes[-1][1]
    assert widget.labels.name == "labels [img]"
    # clicks in 3-D rendering are refused and removed
    viewer.dims.ndisplay = 3
    widget.add_click(0, 30, 20)
    assert len(widget.points.data) == 0 and "2-D view" in notes[-1][1]
    viewer.dims.ndisplay = 2


def test_layer_deleted_mid_run(make_widget, qtbot, notes):
    image, _left, right = discs_image()
    viewer, widget = make_widget(image, predictor=SlowFakePredictor(0.3))
    widget.add_click(0, 30, 20)
    assert widget.runner.busy
    viewer.layers.remove(widget.labels)
    assert widget.labels is None
    assert any("deleted" in msg for _, msg in notes)
    wait_idle(qtbot, widget)
    qtbot.wait(100)
    # the next click makes a fresh labels layer and works
    widget.add_click(0, 30, 56)
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.labels.data > 0, right)


def test_model_load_failure_is_a_notification(make_napari_viewer, qtbot, notes):
    from napari_inter2former._qt.widget import Inter2FormerWidget

    def broken():
        raise FileNotFoundError("inter2former_decoder.safetensors is missing")

    viewer = make_napari_viewer()
    viewer.add_image(discs_image()[0], name="img")
    widget = Inter2FormerWidget(viewer, predictor_factory=broken)
    widget.add_click(0, 30, 20)
    wait_idle(qtbot, widget)
    qtbot.waitUntil(lambda: any(k == "show_error" for k, _ in notes), timeout=3000)
    assert "could not be loaded" in notes[-1][1] and "safetensors" in notes[-1][1]
    assert len(widget.points.data) == 0
    assert not widget.labels.data.any()


def test_a_model_load_failure_while_encoding_ahead_is_notified_once(
    make_napari_viewer, qtbot, notes
):
    from napari_inter2former._qt.widget import Inter2FormerWidget

    calls = []

    def broken():
        calls.append(1)
        raise FileNotFoundError("inter2former_decoder.safetensors is missing")

    viewer = make_napari_viewer()
    viewer.add_image(discs_image()[0], name="img")
    widget = Inter2FormerWidget(viewer, predictor_factory=broken)
    qtbot.waitUntil(lambda: any(k == "show_error" for k, _ in notes), timeout=5000)
    qtbot.wait(3 * widget_module.ENCODE_AHEAD_DELAY_MS)
    wait_idle(qtbot, widget)
    assert len(calls) == 1 and [k for k, _ in notes].count("show_error") == 1
    assert "could not be loaded" in notes[-1][1]


def test_keys_are_bound_on_our_layers_only(make_widget, qtbot):
    image, _, _ = discs_image()
    viewer, widget = make_widget(image)
    for layer in (widget.points, widget.labels):
        assert {"T", "C", "Shift+C", "Shift+P", "Escape"} <= {str(k) for k in layer.keymap}
    other = viewer.add_labels(np.zeros(image.shape, np.uint8), name="other")
    assert "C" not in {str(k) for k in other.keymap}
    texts = [widget.commit_btn.text(), widget.clear_btn.text(), widget.propagate_btn.text()]
    assert texts == ["Commit object [C]", "Clear object [Shift-C]", "Propagate [Shift-P]"]


def test_rgb_image(make_widget, qtbot):
    image, _left, right = discs_image()
    rgb = np.stack([image // 8] * 3, axis=-1).astype(np.uint8)
    _viewer, widget = make_widget(rgb, rgb=True)
    assert widget.labels.data.shape == image.shape
    widget.add_click(0, 30, 56)
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(widget.labels.data == 1, right)


def test_precompute_encodes_every_plane(make_widget, qtbot):
    volume, _ = ball_stack(n_planes=6)
    from napari_inter2former.testing import FakePredictor

    predictor = FakePredictor()
    _viewer, widget = make_widget(volume, predictor=predictor)
    widget.precompute()
    wait_idle(qtbot, widget)
    assert predictor.encode_calls == 6


def test_precompute_of_large_planes_encodes_the_tiles_at_the_view_centre(make_widget, qtbot):
    volume = np.zeros((3, 1100, 1300), dtype=np.uint8)
    predictor = EncodeAheadRecorder()
    _viewer, widget = make_widget(volume, predictor=predictor)
    qtbot.waitUntil(lambda: len(predictor.encoded_ahead) == 1, timeout=5000)  # the shown plane
    wait_idle(qtbot, widget)
    widget.precompute()
    wait_idle(qtbot, widget)
    assert predictor.encode_calls == 3  # every plane whole
    assert len(predictor.around) == 4  # and its tile at the view centre, not turned
    assert all(a == pytest.approx((550, 650), abs=2) for a in predictor.around[1:])
    assert predictor.turned == [True, False, False, False]


def test_the_shown_plane_is_encoded_ahead_of_its_first_click(make_widget, qtbot):
    from napari_inter2former.transforms import to_rgb_uint8

    volume, _ = ball_stack(n_planes=8)
    predictor = EncodeAheadRecorder()
    viewer, widget = make_widget(volume, predictor=predictor)
    limits = widget.source.contrast_limits
    plane_rgb = lambda p: to_rgb_uint8(volume[p], contrast_limits=limits)
    shown = widget.current_plane()  # napari opens a stack on its middle plane
    qtbot.waitUntil(lambda: len(predictor.encoded_ahead) == 1, timeout=5000)
    viewer.dims.set_point(0, 3)
    viewer.dims.set_point(0, 5)  # scrolled on before the view rested: plane 5 only
    qtbot.waitUntil(lambda: len(predictor.encoded_ahead) == 2, timeout=5000)
    wait_idle(qtbot, widget)
    np.testing.assert_array_equal(predictor.encoded_ahead[0], plane_rgb(shown))
    np.testing.assert_array_equal(predictor.encoded_ahead[1], plane_rgb(5))
    widget.add_click(5, 24, 24)  # clicked planes and planes encoded once are not encoded again
    wait_idle(qtbot, widget)
    viewer.dims.set_point(0, shown)
    qtbot.wait(3 * widget_module.ENCODE_AHEAD_DELAY_MS)
    wait_idle(qtbot, widget)
    assert len(predictor.encoded_ahead) == 2
    widget.flip_combo.setCurrentText("off")
    widget.flip_combo.setCurrentText("every click")  # the shown plane's turned view is needed
    qtbot.waitUntil(lambda: len(predictor.encoded_ahead) == 3, timeout=5000)
    wait_idle(qtbot, widget)
    widget.encode_ahead_check.setChecked(False)
    viewer.dims.set_point(0, 6)
    qtbot.wait(3 * widget_module.ENCODE_AHEAD_DELAY_MS)
    assert len(predictor.encoded_ahead) == 3 and not widget.runner.busy
    assert predictor.around == [None] * 3  # planes no larger than the network input: no tiles


def test_the_tile_at_the_view_centre_of_a_large_image_is_encoded_ahead(make_widget, qtbot):
    image = np.zeros((1100, 1300), dtype=np.uint8)
    predictor = EncodeAheadRecorder()
    viewer, widget = make_widget(image, predictor=predictor, scale=(0.5, 0.5))
    qtbot.waitUntil(lambda: len(predictor.encoded_ahead) == 1, timeout=5000)
    wait_idle(qtbot, widget)
    assert predictor.around[0] == pytest.approx((550, 650), abs=2)  # the view starts centred
    widget_module.camera(viewer).center = (0, 100 * 0.5, 200 * 0.5)  # world coordinates: scale 0.5
    qtbot.waitUntil(lambda: len(predictor.encoded_ahead) == 2, timeout=5000)
    wait_idle(qtbot, widget)
    assert predictor.around[1] == pytest.approx((100, 200), abs=1)
    widget_module.camera(viewer).center = (0, 120 * 0.5, 230 * 0.5)  # the same 256-px step: not again
    qtbot.wait(3 * widget_module.ENCODE_AHEAD_DELAY_MS)
    wait_idle(qtbot, widget)
    assert len(predictor.encoded_ahead) == 2
    widget.tiles_check.setChecked(False)  # no tiles: panning encodes nothing
    widget_module.camera(viewer).center = (0, 900 * 0.5, 1200 * 0.5)
    qtbot.wait(3 * widget_module.ENCODE_AHEAD_DELAY_MS)
    wait_idle(qtbot, widget)
    assert len(predictor.encoded_ahead) == 2
    widget.tiles_check.setChecked(True)  # back on: the tile where the view now rests
    qtbot.waitUntil(lambda: len(predictor.encoded_ahead) == 3, timeout=5000)
    wait_idle(qtbot, widget)
    assert predictor.around[2] == pytest.approx((900, 1200), abs=1)
    # a click right after the view moved: its own tile is encoded by the click, and the view
    # centre's is not encoded ahead while the object is refined
    widget_module.camera(viewer).center = (0, 300 * 0.5, 300 * 0.5)
    widget.add_click(0, 700, 900)
    qtbot.wait(3 * widget_module.ENCODE_AHEAD_DELAY_MS)
    wait_idle(qtbot, widget)
    assert len(predictor.encoded_ahead) == 3
    widget_module.camera(viewer).center = (0, 900 * 0.5, 300 * 0.5)  # moved again: encoded
    qtbot.waitUntil(lambda: len(predictor.encoded_ahead) == 4, timeout=5000)
    wait_idle(qtbot, widget)


def test_clicks_and_actions_wait_for_a_running_encode_ahead(make_widget, qtbot):
    volume, _ = ball_stack(n_planes=6)
    predictor = EncodeAheadRecorder(delay=1.0)
    viewer, widget = make_widget(volume, predictor=predictor)
    qtbot.waitUntil(lambda: widget.runner.kind == "encode", timeout=5000)
    widget.add_click(0, 24, 24, positive=False)  # waits, with a progress bar
    assert widget.runner.kind == "encode" and len(widget._pending) == 1
    assert widget._progress is not None
    wait_idle(qtbot, widget)
    assert len(predictor.encoded_ahead) == 1 and widget.points.features["object_id"].tolist() == [1]
    widget.clear()
    viewer.dims.set_point(0, 4)
    qtbot.waitUntil(lambda: widget.runner.kind == "encode", timeout=5000)
    widget.precompute()  # runs once the encoder is free, not refused as busy
    assert widget._after_encode is not None
    wait_idle(qtbot, widget)
    assert predictor.encode_calls == 1 + volume.shape[0] and widget._after_encode is None


def test_predictor_checkboxes_reach_the_predictor_at_the_next_click(make_widget, qtbot):
    import inspect

    from napari_inter2former.predictor import (
        NOISY_SMALL_IMAGE_SMOOTHING, SMALL_OBJECT_ZOOM, Predictor, Tiles,
    )
    from napari_inter2former.testing import FakePredictor

    class SettingsRecorder(FakePredictor):
        zoom_in = SMALL_OBJECT_ZOOM
        keep_clicked_regions = True
        cut_at_negative_clicks = True
        merge_at_click = None
        refine_boundary = True
        flip_ensemble = "first"
        split_first_click = False
        redecode = "first"
        tiles = Tiles()
        blend_sam = "photo"
        seen: list = []

        def _predict(self, click):
            self.seen.append(
                (
                    self.zoom_in,
                    self.keep_clicked_regions,
                    self.cut_at_negative_clicks,
                    self.merge_at_click,
                    self.refine_boundary,
                    self.flip_ensemble,
                    self.split_first_click,
                    self.redecode,
                    self.tiles,
                    self.blend_sam,
                )
            )
            return super()._predict(click)

    predictor = SettingsRecorder()
    image, _left, _right = discs_image()
    _viewer, widget = make_widget(image, predictor=predictor)
    # each box starts as the predictor's default
    defaults = inspect.signature(Predictor).parameters
    assert widget.zoom_check.isChecked() == (defaults["zoom_in"].default is not None)
    assert widget.smooth_check.isChecked() == (defaults["smooth_noisy"].default is not None)
    assert widget.regions_check.isChecked() == defaults["keep_clicked_regions"].default
    assert widget.cut_check.isChecked() == defaults["cut_at_negative_clicks"].default
    assert widget.merge_check.isChecked() == (defaults["merge_at_click"].default is not None)
    assert widget.refine_check.isChecked() == defaults["refine_boundary"].default
    assert widget.flip_combo.currentData() == defaults["flip_ensemble"].default
    assert widget.split_check.isChecked() == defaults["split_first_click"].default
    assert widget.redecode_check.isChecked() == (defaults["redecode"].default is not None)
    assert widget.tiles_check.isChecked() == (defaults["tiles"].default is not None)
    assert widget.sam_check.isChecked() == (defaults["blend_sam"].default == "photo")
    assert defaults["refine_shrink"].default == "first"  # the box switches both
    changes = [
        [],
        [(widget.zoom_check, False)],
        [(widget.zoom_check, True), (widget.regions_check, False)],
        [(widget.cut_check, False)],
        [(widget.merge_check, True)],
        [(widget.merge_check, False)],
        [(widget.refine_check, False)],
        [(widget.flip_combo, "every click")],
        [(widget.flip_combo, "off")],
        [(widget.split_check, True)],
        [(widget.redecode_check, False)],
        [(widget.tiles_check, False)],
        [(widget.tiles_check, True)],
        [(widget.sam_check, False)],
    ]
    for i, change in enumerate(changes):
        for box, checked in change:
            if isinstance(checked, str):
                box.setCurrentText(checked)
            else:
                box.setChecked(checked)
        widget.add_click_world([30 + i, 20 + i])
        wait_idle(qtbot, widget)
    assert widget.runner.predictor_settings["refine_shrink"] is False
    widget.smooth_check.setChecked(True)
    assert widget.runner.predictor_settings["smooth_noisy"] == NOISY_SMALL_IMAGE_SMOOTHING
    widget.smooth_check.setChecked(False)
    assert widget.runner.predictor_settings["smooth_noisy"] is None
    assert predictor.seen == [
        (SMALL_OBJECT_ZOOM, True, True, None, True, "first", False, "first", Tiles(), "photo"),
        (None, True, True, None, True, "first", False, "first", Tiles(), "photo"),
        (SMALL_OBJECT_ZOOM, False, True, None, True, "first", False, "first", Tiles(), "photo"),
        (SMALL_OBJECT_ZOOM, False, False, None, True, "first", False, "first", Tiles(), "photo"),
        (SMALL_OBJECT_ZOOM, False, False, "signed", True, "first", False, "first", Tiles(), "photo"),
        (SMALL_OBJECT_ZOOM, False, False, None, True, "first", False, "first", Tiles(), "photo"),
        (SMALL_OBJECT_ZOOM, False, False, None, False, "first", False, "first", Tiles(), "photo"),
        (SMALL_OBJECT_ZOOM, False, False, None, False, "every", False, "first", Tiles(), "photo"),
        (SMALL_OBJECT_ZOOM, False, False, None, False, None, False, "first", Tiles(), "photo"),
        (SMALL_OBJECT_ZOOM, False, False, None, False, None, True, "first", Tiles(), "photo"),
        (SMALL_OBJECT_ZOOM, False, False, None, False, None, True, None, Tiles(), "photo"),
        (SMALL_OBJECT_ZOOM, False, False, None, False, None, True, None, None, "photo"),
        (SMALL_OBJECT_ZOOM, False, False, None, False, None, True, None, Tiles(), "photo"),
        (SMALL_OBJECT_ZOOM, False, False, None, False, None, True, None, Tiles(), None),
    ]


def test_a_job_ending_after_the_widget_is_deleted_calls_nothing_back(make_widget, qtbot):
    volume, _ = ball_stack(n_planes=4)
    predictor = EncodeAheadRecorder(delay=0.5)
    viewer, widget = make_widget(volume, predictor=predictor)
    qtbot.waitUntil(lambda: widget.runner.kind == "encode", timeout=5000)
    runner = widget.runner
    viewer.window.remove_dock_widget(widget)
    widget.deleteLater()
    qtbot.wait(50)  # deleted: its status label is gone while the encoder still runs
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    qtbot.wait(50)  # the finished worker's callbacks have run (a deleted label would raise)
    assert runner.on_idle is None
