import numpy as np
import pytest

from napari_inter2former.transforms import InputGeometry, to_rgb_uint8


def test_uint8_grey_is_kept_and_replicated():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = to_rgb_uint8(image)
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 1], image)


def test_uint16_uses_robust_percentiles():
    rng = np.random.RandomState(0)
    image = rng.randint(1000, 2000, size=(50, 50)).astype(np.uint16)
    image[0, 0] = 65535  # a hot pixel must not squash the contrast
    rgb = to_rgb_uint8(image)
    assert rgb[..., 0].max() == 255 and rgb[..., 0].min() == 0
    assert np.median(rgb[..., 0]) > 100  # the bulk keeps its contrast


def test_float_with_nan_and_contrast_limits():
    image = np.array([[0.0, 0.5], [1.0, np.nan]], dtype=np.float32)
    rgb = to_rgb_uint8(image, contrast_limits=(0.0, 1.0))
    assert rgb[..., 0].tolist() == [[0, 128], [255, 0]]


def test_channel_axis_first_rgb():
    image = np.zeros((3, 5, 6), dtype=np.uint8)
    image[2] = 200
    rgb = to_rgb_uint8(image, channel_axis=0)
    assert rgb.shape == (5, 6, 3) and (rgb[..., 2] == 200).all() and (rgb[..., 0] == 0).all()


@pytest.mark.parametrize(
    "image, kwargs, match",
    [
        (np.zeros((0, 5)), {}, "empty"),
        (np.full((4, 4), np.nan), {}, "finite"),
        (np.zeros((2, 3, 4)), {}, "2-D grey"),
        (np.zeros((4, 4)), {"channel_axis": 0}, "must be 3-D"),
        (np.zeros((4, 4, 2)), {"channel_axis": -1}, "channels"),
        (np.array([["a"]]), {}, "real numbers"),
    ],
)
def test_bad_inputs(image, kwargs, match):
    with pytest.raises(ValueError, match=match):
        to_rgb_uint8(image, **kwargs)


def test_geometry_maps_corners_inside_the_grid():
    g = InputGeometry(256, 128, size=1024)
    assert g.scale == 4.0 and g.resized_shape == (1024, 512)
    assert g.to_grid(0, 0) == (2, 2)
    assert g.to_grid(255, 127) == (1022, 510)
    odd = InputGeometry(333, 1000, size=1024)
    assert odd.resized_shape == (341, 1024)
    assert odd.to_grid(332.9, 999.9) == (340, 1023)
