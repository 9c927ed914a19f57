import numpy as np
import pytest

from napari_inter2former.evaluation.clicker import Click
from napari_inter2former.evaluation.datasets import Sample
from napari_inter2former.evaluation.loop import (
    RunResult,
    evaluate_dataset,
    evaluate_dataset_3d,
    evaluate_object,
    evaluate_volume_object,
    summarize,
)
from napari_inter2former.predictor import BasePredictor
from napari_inter2former.testing import FakePredictor


class ScriptedPredictor(BasePredictor):
    """Returns the k-th scripted mask at the k-th click (the last one after that)."""

    def __init__(self, masks):
        super().__init__()
        self.masks = masks

    def _encode(self, rgb):
        pass

    def _start(self, prior):
        pass

    def _predict(self, click):
        return self.masks[min(len(self._clicks), len(self.masks)) - 1]


def block(rows, cols, shape=(10, 10)):
    mask = np.zeros(shape, bool)
    mask[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = True
    return mask


def test_evaluate_object_by_hand():
    gt = block((2, 7), (2, 7))  # 36 px
    masks = [
        block((2, 7), (2, 4)),  # 18 px: IoU 0.5
        block((2, 7), (2, 6)),  # 30 px: IoU 30/36
        block((2, 7), (2, 8)),  # 42 px: IoU 36/42
        gt,  # IoU 1, then nothing is left to click
    ]
    predictor = ScriptedPredictor(masks)
    predictor.set_image(np.zeros((10, 10), np.uint8))
    ious, biou, clicks, seconds = evaluate_object(predictor, gt, max_clicks=20)
    expected = [0.5, 30 / 36, 36 / 42] + [1.0] * 17
    np.testing.assert_allclose(ious, expected)
    assert clicks == [Click(4, 4, True), Click(3, 6, True), Click(2, 7, True), Click(2, 8, False)]
    assert predictor.clicks == clicks and len(seconds) == 4
    assert biou == 1.0  # after click 5 (here: the last, click 4)
    result = RunResult("2d")
    from napari_inter2former.evaluation.loop import ObjectResult

    result.objects.append(ObjectResult("x", 1, None, ious, biou, clicks, [0.01] * 4))
    result.encoder_seconds = [0.4]
    out = summarize(result)
    assert (out["noc85"], out["noc90"], out["noc95"]) == (3, 4, 4)
    assert out["miou@1"] == 0.5 and out["miou@3"] == pytest.approx(36 / 42)
    assert out["spc_ms"] == pytest.approx(10.0)
    assert out["encoder_s"] == pytest.approx(0.4)
    assert out["spc20_ms"] == pytest.approx((0.4 + 20 * 0.01) / 20 * 1e3)


def test_evaluate_dataset_one_set_image_per_image(disc):
    image, mask = disc
    labels = mask.astype(np.int32)
    labels[2:8, 2:8] = 2  # a second object, dark: the fake segments a disc there
    labels[0:2, 0:3] = 3  # 6 px: skipped
    sample = Sample("d", image, labels, None)
    predictor = FakePredictor()
    result = evaluate_dataset(predictor, [sample], max_clicks=5)
    assert predictor.encode_calls == 1 and len(result.encoder_seconds) == 1
    assert result.n_skipped == 1 and [o.label for o in result.objects] == [1, 2]
    np.testing.assert_allclose(result.objects[0].ious, 1.0)  # the bright disc, click 1
    out = summarize(result, max_clicks=5)
    assert out["n_objects"] == 2 and out["n_skipped"] == 1 and out["noc85"] >= 1
    assert evaluate_dataset(FakePredictor(), [sample], max_clicks=5, max_objects=1).objects[0].label in (1, 2)


def cylinder_volume():
    """Bright cylinder (radius 4) on planes 2..6, and a separate bright ball-ish neighbour."""
    rng = np.random.default_rng(0)
    volume = 20 + rng.integers(0, 6, (9, 24, 24))
    rr, cc = np.ogrid[:24, :24]
    obj = np.zeros(volume.shape, bool)
    obj[2:7] = (rr - 12) ** 2 + (cc - 8) ** 2 <= 16
    other = np.zeros(volume.shape, bool)
    other[3:5] = (rr - 12) ** 2 + (cc - 19) ** 2 <= 9
    volume[obj | other] = 200
    return volume.astype(np.uint8), obj


def test_volume_task_one_click_and_propagation():
    volume, obj = cylinder_volume()
    result = evaluate_volume_object(FakePredictor(), volume, obj, max_clicks=20)
    assert result.span == 5 and result.budget == 100
    assert result.clicks == [(2, Click(12, 8, True))]  # largest error: first of the equal planes
    assert result.ious == [1.0]  # propagated to planes 3..6, stopped at 7
    assert result.noc(0.85) == 1 and result.noc(0.90) == 1


def test_volume_task_per_slice_baseline_clicks_every_plane():
    volume, obj = cylinder_volume()
    result = evaluate_volume_object(
        FakePredictor(), volume, obj, max_clicks=20, propagate=False
    )
    # no propagation: one click per plane the cylinder spans, planes 2..6 in turn
    assert [p for p, _ in result.clicks] == [2, 3, 4, 5, 6]
    assert result.ious == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert result.noc(0.85) == 5


class EmptyPredictor(ScriptedPredictor):
    def _predict(self, click):
        return np.zeros(self.image_shape, bool)


def test_volume_task_budget_when_never_reached():
    volume, obj = cylinder_volume()
    sample = Sample("v", volume, obj.astype(np.int32) * 5, None)
    result = evaluate_dataset_3d(EmptyPredictor([]), [sample], max_clicks=2)
    (obj_result,) = result.objects
    assert obj_result.label == 5 and obj_result.budget == 10
    assert obj_result.ious == [0.0] * 10
    assert len({(p, c.row, c.col) for p, c in obj_result.clicks}) == 10  # never the same pixel
    out = summarize(result, max_clicks=2)
    assert out["noc85"] == 10 and out["noc85_per_slice"] == 2.0
    assert out["iou3d@1"] == 0.0 and out["over90"] == 1 and "noc95" not in out


def test_volume_task_summary_per_slice():
    volume, obj = cylinder_volume()
    sample = Sample("v", volume, obj.astype(np.int32), None)
    out = summarize(evaluate_dataset_3d(FakePredictor(), [sample]))
    assert out["noc85"] == 1 and out["noc90_per_slice"] == pytest.approx(1 / 5)
    assert out["iou3d@1"] == 1.0 and out["iou3d@3"] == 1.0


def test_bad_inputs():
    predictor = FakePredictor()
    predictor.set_image(np.zeros((6, 6), np.uint8))
    with pytest.raises(ValueError, match="max_clicks"):
        evaluate_object(predictor, np.ones((6, 6), bool), max_clicks=0)
    with pytest.raises(ValueError, match="gt has shape"):
        evaluate_object(predictor, np.ones((5, 6), bool))
    with pytest.raises(ValueError, match="must match"):
        evaluate_volume_object(predictor, np.zeros((3, 6, 6)), np.zeros((3, 6, 5), bool))
    with pytest.raises(ValueError, match="tie_break"):
        evaluate_dataset(predictor, [], tie_break="nearest")
