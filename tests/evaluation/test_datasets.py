import numpy as np
import pytest
import tifffile
from skimage import io

from napari_inter2former.evaluation.datasets import (
    list_pairs,
    load_dataset,
    normalize_intensity,
    object_views_2d,
    select_labels,
    split_mask,
)


def test_split_mask_binary_with_ignore():
    mask = np.array([[0, 128, 255], [255, 255, 0]], np.uint8)
    labels, ignore = split_mask(mask)
    np.testing.assert_array_equal(labels, [[0, 0, 1], [1, 1, 0]])
    np.testing.assert_array_equal(ignore, [[False, True, False], [False, False, False]])
    labels, ignore = split_mask(np.array([[0, 255]], np.uint8))
    assert ignore is None and labels.tolist() == [[0, 1]]


def test_split_mask_instance_labels():
    mask = np.array([[0, 1, 2], [3, 128, 0]], np.uint16)  # 128 is an ordinary label here
    labels, ignore = split_mask(mask)
    assert ignore is None
    np.testing.assert_array_equal(labels, mask)


def test_normalize_intensity_percentiles_of_whole_array():
    data = np.arange(1000, dtype=np.uint16).reshape(10, 10, 10)  # a volume
    out = normalize_intensity(data)
    low, high = np.percentile(data, [1, 99.8])
    assert out.dtype == np.uint8
    assert out.flat[int(low)] == 0 and out.max() == 255
    assert out.flat[500] == round((500 - low) / (high - low) * 255)
    rgb = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    assert normalize_intensity(rgb, rgb=True) is rgb


def test_select_labels_skips_small_and_samples_with_seed():
    sizes = {1: 15, 2: 16, 3: 100, 4: 40, 5: 50, 6: 3}
    kept, skipped = select_labels(sizes, min_size=16)
    assert kept == [2, 3, 4, 5] and skipped == 2
    a, _ = select_labels(sizes, max_objects=2, seed=1, stem="x")
    b, _ = select_labels(sizes, max_objects=2, seed=1, stem="x")
    assert a == b and len(a) == 2 and set(a) <= {2, 3, 4, 5}
    draws = {tuple(select_labels(sizes, max_objects=2, seed=s, stem="x")[0]) for s in range(10)}
    assert len(draws) > 1
    with pytest.raises(ValueError, match="max_objects"):
        select_labels(sizes, max_objects=0)


def make_dataset(root):
    (root / "images").mkdir()
    (root / "masks").mkdir()
    image = np.full((20, 24, 3), 30, np.uint8)
    image[5:15, 5:15] = 220
    mask = np.zeros((20, 24), np.uint8)
    mask[5:15, 5:15] = 255
    mask[4, 5:15] = 128
    io.imsave(root / "images" / "a.png", image, check_contrast=False)
    io.imsave(root / "masks" / "a.png", mask, check_contrast=False)
    volume = np.full((5, 16, 16), 100, np.uint16)
    labels = np.zeros((5, 16, 16), np.uint16)
    labels[1:4, 2:8, 2:8] = 7  # 36 px on each of planes 1..3
    labels[2, 2:6, 2:8] = 7 + 0  # unchanged
    labels[2, 10:15, 10:15] = 9  # 25 px on plane 2 only
    labels[3, 10:14, 10:13] = 9  # 12 px
    labels[0, 0:3, 0:5] = 4  # 15 px: skipped
    volume[labels > 0] = 3000
    tifffile.imwrite(root / "images" / "v.tif", volume)
    tifffile.imwrite(root / "masks" / "v.tif", labels)
    io.imsave(root / "images" / "orphan.png", image, check_contrast=False)


def test_load_dataset_2d_and_volume(tmp_path):
    make_dataset(tmp_path)
    assert [s for s, _, _ in list_pairs(tmp_path)] == ["a", "v"]
    a, v = load_dataset(tmp_path)
    assert not a.is_volume and a.image.shape == (20, 24, 3) and a.ignore.sum() == 10
    assert v.is_volume and v.image.dtype == np.uint8 and v.image.shape == (5, 16, 16)
    views, skipped = object_views_2d(v)
    assert skipped == 1
    assert [(o.label, o.plane, int(o.gt.sum())) for o in views] == [(7, 1, 36), (9, 2, 25)]
    np.testing.assert_array_equal(views[1].image, v.image[2])
    views, _ = object_views_2d(a)
    assert len(views) == 1 and views[0].plane is None and views[0].gt.sum() == 100


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="images/ and masks/"):
        list_pairs(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match="no image"):
        list_pairs(tmp_path)
    with pytest.raises(ValueError, match="integer"):
        split_mask(np.array([[0.5, 1.0]]))
