import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_inter2former.training.synthetic import synthetic_image

SMALL = (96, 192)  # small images keep the tests fast


def test_same_seed_same_image():
    a = synthetic_image(3, size_range=SMALL)
    b = synthetic_image(3, size_range=SMALL)
    c = synthetic_image(4, size_range=SMALL)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.image.shape != c.image.shape or not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("kind", ["nuclei", "cells"])
def test_image_and_label_properties(kind):
    for seed in range(6):
        s = synthetic_image(seed, size_range=SMALL, kind=kind)
        assert s.image.dtype in (np.uint8, np.uint16)
        assert s.image.shape == s.labels.shape
        assert SMALL[0] <= max(s.image.shape) <= SMALL[1] + 1
        assert s.image.max() > s.image.min()  # not a constant image
        assert s.labels.dtype == np.int32
        ids = np.unique(s.labels)
        np.testing.assert_array_equal(
            ids[ids > 0], np.arange(1, s.labels.max() + 1)
        )  # sequential
        assert s.labels.max() >= 1
        assert s.meta["kind"] == kind


def test_both_bit_depths_and_full_16bit_range_used():
    images = [synthetic_image(seed, size_range=SMALL).image for seed in range(12)]
    assert {im.dtype for im in images} == {np.dtype(np.uint8), np.dtype(np.uint16)}
    assert any(im.dtype == np.uint16 and im.max() > 255 for im in images)


def test_object_sizes_cover_network_range():
    """Equivalent diameters on the 1024 grid span about 20-400 px over many images."""
    medians = []
    for seed in range(24):
        s = synthetic_image(seed, size_range=(128, 320))
        areas = np.bincount(s.labels.ravel())[1:]
        diam = 2 * np.sqrt(areas[areas > 0] / np.pi) * 1024 / max(s.labels.shape)
        medians.append(np.median(diam))
    medians = np.array(medians)
    assert medians.min() < 45
    assert medians.max() > 200
    assert np.mean((medians > 15) & (medians < 500)) > 0.9


def test_touching_and_dim_objects_occur():
    touching = dim = False
    for seed in range(12):
        s = synthetic_image(seed, size_range=SMALL, kind="nuclei")
        lab = s.labels
        # two different labels side by side (no background between)
        right = (lab[:, :-1] > 0) & (lab[:, 1:] > 0) & (lab[:, :-1] != lab[:, 1:])
        down = (lab[:-1] > 0) & (lab[1:] > 0) & (lab[:-1] != lab[1:])
        touching |= bool(right.any() or down.any())
        dim |= s.meta["dim_objects"] > 0
    assert touching and dim


def test_the_share_and_brightness_of_dim_objects_can_be_set():
    from napari_inter2former.training.synthetic import DIM_BRIGHTNESS, DIM_SHARE

    default = synthetic_image(7, size_range=SMALL, kind="nuclei")
    same = synthetic_image(7, size_range=SMALL, kind="nuclei", dim_share=DIM_SHARE, dim_brightness=DIM_BRIGHTNESS)
    np.testing.assert_array_equal(default.image, same.image)
    assert len(default.meta["dim_labels"]) == default.meta["dim_objects"]
    none = synthetic_image(7, size_range=SMALL, kind="nuclei", dim_share=(0.0, 0.0))
    assert none.meta["dim_labels"] == []
    every = synthetic_image(7, size_range=SMALL, kind="nuclei", dim_share=(1.0, 1.0))
    assert every.meta["dim_labels"] == list(range(1, every.labels.max() + 1))


def test_faint_objects_are_fainter_than_the_others():
    s = synthetic_image(
        47510, size_range=(256, 256), diameter_range=(16, 60), kind="nuclei",
        dim_share=(0.3, 0.5), dim_brightness=(0.02, 0.1),
    )
    image = s.image.astype(float)
    faint = np.isin(s.labels, s.meta["dim_labels"])
    bright = (s.labels > 0) & ~faint
    background = np.median(image[s.labels == 0])
    assert image[faint].mean() - background < 0.2 * (image[bright].mean() - background)


def test_objects_are_connected():
    s = synthetic_image(5, size_range=SMALL, kind="cells")
    for index, sl in enumerate(ndi.find_objects(s.labels), start=1):
        if sl is not None:
            assert ndi.label(s.labels[sl] == index)[1] == 1


def test_bad_inputs():
    with pytest.raises(ValueError, match="kind"):
        synthetic_image(0, kind="bacteria")
    with pytest.raises(ValueError, match="size_range"):
        synthetic_image(0, size_range=(300, 100))
    with pytest.raises(ValueError, match="dim_share"):
        synthetic_image(0, dim_share=(0.5, 1.5))
    with pytest.raises(ValueError, match="dim_brightness"):
        synthetic_image(0, dim_brightness=(0.0, 0.1))
    with pytest.raises(ValueError, match="diameter_range"):
        synthetic_image(0, diameter_range=(0, 10))


def test_stain_composites_add_the_stretched_stains_in_their_colours():
    from napari_inter2former.training.synthetic import stain_composite

    ramp = np.tile(np.linspace(0, 1000, 50), (10, 1))
    flat = np.zeros((10, 50))
    rgb = stain_composite([ramp, ramp[:, ::-1], flat], [(1, 0, 1), (0, 1, 0), (0, 0, 1)])
    assert rgb.dtype == np.uint8 and rgb.shape == (10, 50, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])  # magenta: red and blue alike
    assert rgb[0, -1, 0] == 255 and rgb[0, 0, 0] == 0 and rgb[0, 0, 1] == 255  # stretched to 0-255

