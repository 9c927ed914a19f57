import numpy as np
import pytest

from napari_inter2former.evaluation.metrics import (
    boundary_band,
    boundary_iou,
    iou,
    noc,
    pad_curve,
    summarize_ious,
    timing_summary,
)


def square(shape, top, left, side):
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_iou_by_hand():
    pred = np.zeros((4, 5), bool)
    pred[0:2, 0:2] = True  # 4 px
    gt = np.zeros((4, 5), bool)
    gt[0:2, 1:4] = True  # 6 px, 2 shared
    assert iou(pred, gt) == pytest.approx(2 / 8)
    ignore = np.zeros_like(gt)
    ignore[:, 3] = True  # removes 2 gt pixels from the union
    assert iou(pred, gt, ignore) == pytest.approx(2 / 6)


def test_iou_empty_cases():
    gt = square((6, 6), 1, 1, 3)
    assert iou(np.zeros_like(gt), gt) == 0.0
    assert iou(np.zeros_like(gt), np.zeros_like(gt)) == 1.0
    assert iou(gt, gt) == 1.0


def test_iou_works_in_3d():
    gt = np.zeros((3, 4, 4), bool)
    gt[0:2, :2, :2] = True  # 8 voxels
    pred = np.zeros_like(gt)
    pred[1:3, :2, :2] = True  # 8 voxels, 4 shared
    assert iou(pred, gt) == pytest.approx(4 / 12)


def test_boundary_band_widths():
    mask = square((9, 9), 2, 2, 5)
    assert boundary_band(mask, 1).sum() == 16  # the one-pixel contour
    assert boundary_band(mask, 2).sum() == 24  # all but the centre
    assert not boundary_band(mask, 2)[4, 4]


def test_boundary_iou_by_hand():
    gt = square((9, 10), 2, 2, 5)
    pred = square((9, 10), 2, 3, 5)  # shifted one column right
    # contours: rows 2 and 6 share cols 3..6 (8 px); the side columns share nothing
    assert boundary_iou(pred, gt, width=1) == pytest.approx(8 / 24)
    assert iou(pred, gt) == pytest.approx(20 / 30)
    assert boundary_iou(gt, gt, width=2) == 1.0


def test_noc_by_hand():
    ious = [0.5, 0.86, 0.91, 0.96]
    assert noc(ious, 0.85) == 2
    assert noc(ious, 0.90) == 3
    assert noc(ious, 0.95) == 4
    assert noc(ious, 0.99) == 4  # never reached: the number of clicks
    assert noc(ious, 0.99, max_clicks=20) == 20
    assert noc([0.2, 0.95], 0.9, max_clicks=1) == 1  # reached after the limit


def test_summarize_ious_by_hand():
    curves = np.array([
        [0.5, 0.86, 0.91, 0.96, 0.97],
        [0.9, 0.80, 0.84, 0.85, 0.86],
    ])
    out = summarize_ious(curves)
    assert out["noc85"] == pytest.approx((2 + 1) / 2)
    assert out["noc90"] == pytest.approx((3 + 1) / 2)
    assert out["noc95"] == pytest.approx((4 + 5) / 2)
    assert (out["over85"], out["over90"], out["over95"]) == (0, 0, 1)
    assert out["miou@1"] == pytest.approx(0.7)
    assert out["miou@3"] == pytest.approx(0.875)
    assert out["miou@5"] == pytest.approx(0.915)
    assert summarize_ious(np.zeros((0, 5))) == {}
    assert "miou@5" not in summarize_ious(curves[:, :3])


def test_setbacks_count_clicks_that_lose_more_than_the_margin():
    curves = np.array([
        [0.5, 0.9, 0.8, 0.85, 0.7],  # two losses of 0.1 and 0.15
        [0.8, 0.77, 0.9, 0.9, 0.9],  # a loss of 0.03 is no setback
    ])
    assert summarize_ious(curves)["setbacks"] == pytest.approx((2 + 0) / 2)


def test_pad_curve_repeats_last_value():
    np.testing.assert_array_equal(pad_curve([0.3, 0.9], 4), [0.3, 0.9, 0.9, 0.9])
    np.testing.assert_array_equal(pad_curve([0.3, 0.9, 1.0], 2), [0.3, 0.9])


def test_timing_summary_is_median():
    assert timing_summary([0.1, 0.3, 10.0]) == pytest.approx(0.3)
    assert np.isnan(timing_summary([]))


def test_bad_inputs():
    a = np.zeros((3, 3), bool)
    with pytest.raises(ValueError, match="shape"):
        iou(a, np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="ignore"):
        iou(a, a, np.zeros((2, 2), bool))
    with pytest.raises(ValueError, match="width"):
        boundary_iou(a, a, width=0)
    with pytest.raises(ValueError, match="2-D"):
        boundary_iou(np.zeros((2, 3, 3), bool), np.zeros((2, 3, 3), bool))
    with pytest.raises(ValueError, match="1-D"):
        noc([], 0.5)
    with pytest.raises(ValueError, match="empty"):
        pad_curve([], 3)
    with pytest.raises(ValueError, match="2-D"):
        summarize_ious(np.zeros(5))
