import numpy as np
import pytest

from napari_inter2former.evaluation.clicker import Click, Clicker, depth_map, next_click


def rect(shape, rows, cols):
    mask = np.zeros(shape, dtype=bool)
    mask[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = True
    return mask


def test_depth_map_counts_image_border_as_boundary():
    # 3 x 7 block on the top-left corner of a 6 x 7 image
    region = rect((6, 7), (0, 2), (0, 6))
    depth = depth_map(region)
    assert depth[0, 3] == 1  # touches the top border
    assert depth[1, 0] == 1  # touches the left border
    assert depth[1, 3] == 2  # 2 from the top border and from row 3
    assert depth.max() == 2
    assert np.all(depth[~region] == 0)


def test_first_click_is_deepest_point_with_border_as_boundary():
    # without the border rule the deepest row would be row 0 (3 from row 3)
    gt = rect((6, 7), (0, 2), (0, 6))
    assert next_click(gt, None) == Click(1, 1, True)


def test_first_click_centre_of_square():
    gt = rect((10, 10), (2, 7), (2, 7))  # 6 x 6: depth 3 at rows/cols 4..5
    assert next_click(gt, np.zeros_like(gt)) == Click(4, 4, True)


def test_larger_false_negative_region_gives_positive_click():
    gt = rect((20, 20), (2, 14), (2, 14))
    pred = gt & ~rect((20, 20), (6, 10), (6, 10))  # 5 x 5 hole: FN depth 3 at (8, 8)
    pred |= rect((20, 20), (16, 18), (2, 4))  # 3 x 3 FP: depth 2
    assert next_click(gt, pred) == Click(8, 8, True)


def test_equal_depths_give_negative_click():
    gt = rect((20, 20), (2, 14), (2, 14))
    pred = gt & ~rect((20, 20), (6, 10), (6, 10))  # FN depth 3 at (8, 8)
    pred |= rect((20, 20), (15, 19), (6, 10))  # FP on the border: depth 3 at (17, 8)
    assert next_click(gt, pred) == Click(17, 8, False)


def test_larger_false_positive_region_gives_negative_click():
    gt = rect((20, 20), (2, 14), (2, 14))
    pred = gt & ~rect((20, 20), (7, 9), (7, 9))  # FN depth 2
    pred |= rect((20, 20), (15, 19), (6, 10))  # FP depth 3 at (17, 8)
    assert next_click(gt, pred) == Click(17, 8, False)


def test_ignore_region_gets_no_click():
    gt = rect((7, 13), (1, 5), (1, 11))  # deepest (3, 3) in raster order
    assert next_click(gt, None) == Click(3, 3, True)
    ignore = rect((7, 13), (0, 6), (0, 6))
    # allowed part: rows 1..5, cols 7..11, a 5 x 5 block whose centre is (3, 9)
    assert next_click(gt, None, ignore=ignore) == Click(3, 9, True)


def test_clicked_pixels_are_not_clicked_again():
    gt = rect((5, 5), (1, 3), (1, 3))  # depth 2 only at (2, 2)
    clicked = np.zeros_like(gt)
    clicked[2, 2] = True
    # every remaining pixel has depth 1: first in raster order
    assert next_click(gt, None, clicked=clicked) == Click(1, 1, True)


def test_no_error_no_click():
    gt = rect((8, 8), (2, 5), (2, 5))
    assert next_click(gt, gt.copy()) is None
    ignore = np.ones_like(gt)
    assert next_click(gt, None, ignore=ignore) is None


def test_seeded_tie_breaking_is_deterministic_and_among_deepest():
    gt = rect((12, 12), (1, 10), (1, 10))  # 10 x 10: depth 5 at rows/cols 5..6
    deepest = {(r, c) for r in (5, 6) for c in (5, 6)}
    picks = []
    for seed in range(12):
        a = next_click(gt, None, rng=np.random.default_rng(seed))
        b = next_click(gt, None, rng=np.random.default_rng(seed))
        assert a == b
        assert (a.row, a.col) in deepest
        picks.append((a.row, a.col))
    assert len(set(picks)) > 1  # draws, not always the raster-first pixel


def test_clicker_records_clicks_and_state():
    gt = rect((5, 5), (1, 3), (1, 3))
    clicker = Clicker(gt)
    assert clicker.make_next_click(None) == Click(2, 2, True)
    state = clicker.get_state()
    assert clicker.make_next_click(None) == Click(1, 1, True)
    assert len(clicker.clicks) == 2
    clicker.set_state(state)
    assert clicker.make_next_click(None) == Click(1, 1, True)
    assert clicker.clicks == [Click(2, 2, True), Click(1, 1, True)]


def test_bad_inputs():
    gt = np.zeros((4, 4), bool)
    with pytest.raises(ValueError, match="2-D"):
        next_click(np.zeros((2, 4, 4), bool), None)
    with pytest.raises(ValueError, match="pred has shape"):
        next_click(gt, np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match="ignore has shape"):
        next_click(gt, None, ignore=np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match="2-D"):
        Clicker(np.zeros(4, bool))
