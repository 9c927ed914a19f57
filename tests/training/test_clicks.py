import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_inter2former.training.clicks import (
    first_click,
    random_error_click,
    region_depth,
)


def _square(shape=(40, 50), box=(5, 30, 10, 40)):
    m = np.zeros(shape, bool)
    m[box[0] : box[1], box[2] : box[3]] = True
    return m


def _depth(region):
    return ndi.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]


def test_first_click_is_deep_inside_object():
    gt = _square()
    depth = _depth(gt)
    for seed in range(20):
        row, col, positive = random_error_click(
            gt, None, np.random.default_rng(seed), max_side=None
        )
        assert positive and gt[row, col]
        assert depth[row, col] > depth.max() / 1.7 - 1e-9


def test_k_one_gives_a_deepest_pixel():
    gt = _square()
    depth = _depth(gt)
    row, col, _ = random_error_click(
        gt, None, np.random.default_rng(0), k=1.0, max_side=None
    )
    assert depth[row, col] == depth.max()


def test_larger_false_positive_region_gives_negative_click():
    gt = _square(box=(5, 10, 5, 10))  # small object, missed
    pred = _square(box=(15, 38, 10, 45))  # large wrong prediction
    row, col, positive = random_error_click(
        gt, pred, np.random.default_rng(1), max_side=None
    )
    assert not positive and pred[row, col] and not gt[row, col]


def test_larger_false_negative_region_gives_positive_click():
    gt = _square(box=(2, 38, 2, 48))
    pred = _square(box=(2, 10, 2, 48))  # covers the top strip only
    row, col, positive = random_error_click(
        gt, pred, np.random.default_rng(1), max_side=None
    )
    assert positive and gt[row, col] and not pred[row, col]


def test_no_error_gives_none_and_valid_is_respected():
    gt = _square()
    assert random_error_click(gt, gt.copy(), np.random.default_rng(0)) is None
    valid = np.zeros_like(gt)
    valid[:, :20] = True
    for seed in range(10):
        row, col, _ = random_error_click(
            gt, None, np.random.default_rng(seed), valid=valid
        )
        assert valid[row, col] and gt[row, col]


def test_downsampled_depth_still_lands_in_region():
    yy, xx = np.mgrid[:600, :500]
    gt = (yy - 300) ** 2 / 250**2 + (xx - 240) ** 2 / 200**2 <= 1
    depth_full = _depth(gt)
    depth, _, factor = region_depth(gt, max_side=64)
    assert factor > 1 and max(depth.shape) <= 64
    assert abs(depth.max() - depth_full.max()) <= 2 * factor
    for seed in range(10):
        row, col, positive = random_error_click(
            gt, None, np.random.default_rng(seed), max_side=64
        )
        assert positive and gt[row, col]
        assert depth_full[row, col] > depth_full.max() / 1.7 - 2 * factor


def test_seeded_draws_repeat():
    gt = _square()
    a = [random_error_click(gt, None, np.random.default_rng(s)) for s in range(5)]
    b = [random_error_click(gt, None, np.random.default_rng(s)) for s in range(5)]
    assert a == b
    assert len(set(a)) > 1  # the draw is random, not always the same pixel


def test_first_click_deepest_prob_one():
    gt = _square()
    depth = _depth(gt)
    for seed in range(5):
        row, col, _ = first_click(
            gt, np.random.default_rng(seed), deepest_prob=1.0, max_side=None
        )
        assert depth[row, col] == depth.max()


def test_bad_inputs():
    gt = _square()
    with pytest.raises(ValueError, match="k must be"):
        random_error_click(gt, None, np.random.default_rng(0), k=0.5)
    with pytest.raises(ValueError, match="shape"):
        random_error_click(gt, gt[:10], np.random.default_rng(0))
