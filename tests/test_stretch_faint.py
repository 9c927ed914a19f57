"""Zoom crops of faint objects stretched to the clicked object's brightness:
the transform, and what the predictor's encoder and outline step are given."""

import numpy as np
import pytest

from napari_inter2former.predictor import FAINT_OBJECT_STRETCH, Predictor, ZoomIn
from napari_inter2former.transforms import StretchToClick
from stub_models import ClickDiscModel


def faint_beside_bright(side=64):
    """Grey uint8: background 10, a bright square of 250, a faint one of 16 at (40:46, 40:46)."""
    grey = np.full((side, side), 10, np.uint8)
    grey[10:20, 10:20] = 250
    grey[40:46, 40:46] = 16
    return grey


def as_rgb(grey):
    return np.repeat(grey[:, :, None], 3, axis=2)


def test_a_faint_click_is_stretched_to_the_level_and_brighter_objects_saturate():
    rgb = as_rgb(faint_beside_bright())
    stretch = StretchToClick(level=0.6)
    assert stretch.gain(rgb[..., 0], 43, 43) == pytest.approx(0.6 * 255 / 6)
    out = stretch(rgb, 43, 43)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert (out[..., 0] == out[..., 2]).all()
    assert out[43, 43, 0] == 153  # 0.6 of white
    assert out[15, 15, 0] == 255 and out[0, 0, 0] == 0


def test_bright_and_dark_clicks_leave_the_crop_as_it_is():
    rgb = as_rgb(faint_beside_bright())
    stretch = StretchToClick()
    assert stretch(rgb, 15, 15) is rgb  # a visible object
    grey = faint_beside_bright()
    grey[40:46, 40:46] = 10 + 20  # 20 grey levels above the background: over 0.075 of white
    assert stretch.gain(grey, 43, 43) == 1.0
    grey[40:46, 40:46] = 10 + 19
    assert stretch.gain(grey, 43, 43) == pytest.approx(0.6 * 255 / 19)
    grey[40:46, 40:46] = 10 + 2  # within the noise: left alone
    assert stretch.gain(grey, 43, 43) == 1.0
    dark = as_rgb(255 - faint_beside_bright())
    assert stretch.gain(dark[..., 0], 43, 43) == 1.0
    assert stretch(dark, 43, 43) is dark  # darker than the background: a dark object


def test_the_background_is_the_crops_median_so_dark_objects_on_bright_ground_are_left_alone():
    grey = np.full((64, 64), 200, np.uint8)  # brightfield: a bright ground
    grey[:20, :] = 5  # dark cells, some of them darker than the clicked one
    grey[40:46, 40:46] = 190
    assert StretchToClick().gain(grey, 43, 43) == 1.0
    grey[40:46, 40:46] = 210  # a faint bright object on that ground is stretched to it
    assert StretchToClick().gain(grey, 43, 43) == pytest.approx(0.6 * 255 / 10)


def test_a_spot_within_the_background_noise_is_left_alone():
    rng = np.random.default_rng(1)
    grey = np.clip(20 + rng.normal(0, 6.0, (96, 96)), 0, 255).astype(np.uint8)
    grey[40:46, 40:46] = np.median(grey) + 5  # 5 levels above a ground whose noise is 6
    assert StretchToClick().gain(grey, 43, 43) == 1.0
    assert StretchToClick(min_snr=0.5).gain(grey, 43, 43) > 1.0
    quiet = np.clip(20 + rng.normal(0, 1.0, (96, 96)), 0, 255).astype(np.uint8)
    quiet[40:46, 40:46] = np.median(quiet) + 5  # the same spot on a quiet ground
    assert StretchToClick().gain(quiet, 43, 43) == pytest.approx(0.6 * 255 / 5)


def test_the_click_spot_is_a_median_so_one_noisy_pixel_does_not_set_it():
    grey = faint_beside_bright()
    grey[43, 43] = 200
    assert StretchToClick(radius=1).gain(grey, 43, 43) == pytest.approx(0.6 * 255 / 6)
    assert StretchToClick(radius=0).gain(grey, 43, 43) == 1.0


def test_smoothing_a_stretched_crop_lowers_its_noise():
    rng = np.random.default_rng(0)
    grey = np.clip(faint_beside_bright(128) + rng.normal(0, 1.0, (128, 128)), 0, 255).astype(np.uint8)
    grey[40:46, 40:46] = 16
    rough = StretchToClick()(as_rgb(grey), 43, 43)[80:, 80:, 0].std()
    smooth = StretchToClick(sigma=1.0)(as_rgb(grey), 43, 43)[80:, 80:, 0].std()
    assert smooth < 0.6 * rough


@pytest.mark.parametrize(
    "field, value", [("level", 0.0), ("level", 1.5), ("faint", 0.0), ("faint", 0.7), ("min_contrast", 0.0), ("min_contrast", 20.0), ("min_snr", -1.0), ("low", 100.0), ("radius", -1), ("sigma", -1.0)]
)
def test_stretch_settings_are_checked(field, value):
    with pytest.raises(ValueError, match=field):
        StretchToClick(**{field: value})


class RecordingModel(ClickDiscModel):
    """Keeps every image it encoded, (M, N, 3) uint8."""

    def __init__(self, image_size=128):
        super().__init__(image_size)
        self.seen = []

    def preprocess(self, rgb):
        self.seen.append(rgb.copy())
        return super().preprocess(rgb)


def zoomed_predictor(image, stretch_faint=StretchToClick(), channel_axis=None):
    model = RecordingModel()
    zoom = ZoomIn(expansion=4, min_side=16, max_fraction=0.6, below=0.5, first_click=True)
    predictor = Predictor(model, flip_ensemble=None, zoom_in=zoom, stretch_faint=stretch_faint)
    predictor.set_image(image, channel_axis=channel_axis, contrast_limits=(0, 255))
    return predictor, model


def test_the_zoom_crop_of_a_faint_object_is_encoded_stretched():
    image = np.zeros((256, 256), np.uint8) + 10
    image[100:110, 100:110] = 250
    image[160:166, 160:166] = 16
    predictor, model = zoomed_predictor(image)
    np.testing.assert_array_equal(model.seen[0][..., 0], image)  # the whole image as it is
    predictor.add_click(163, 163)
    top, bottom, left, right = predictor.zoom_box
    crop = model.seen[-1][..., 0]
    assert crop.shape == (bottom - top, right - left)
    assert crop[163 - top, 163 - left] == 153 and crop.min() == 0
    assert (predictor._view_rgb[..., 0] == crop).all()  # the outline step sees the same pixels

    predictor.reset()
    predictor.add_click(105, 105)  # a bright object's crop: as cut from the image
    top, bottom, left, right = predictor.zoom_box
    np.testing.assert_array_equal(model.seen[-1][..., 0], image[top:bottom, left:right])


def test_crops_are_not_stretched_when_off_or_in_colour():
    image = np.zeros((256, 256), np.uint8) + 10
    image[160:166, 160:166] = 16
    predictor, model = zoomed_predictor(image, stretch_faint=None)
    predictor.add_click(163, 163)
    top, bottom, left, right = predictor.zoom_box
    np.testing.assert_array_equal(model.seen[-1][..., 0], image[top:bottom, left:right])
    assert Predictor(RecordingModel()).stretch_faint == FAINT_OBJECT_STRETCH == StretchToClick()

    rng = np.random.default_rng(0)
    colour = rng.integers(0, 40, (256, 256, 3)).astype(np.uint8)
    colour[160:166, 160:166] = (30, 60, 30)
    predictor, model = zoomed_predictor(colour, channel_axis=-1)
    predictor.add_click(163, 163)
    top, bottom, left, right = predictor.zoom_box
    np.testing.assert_array_equal(model.seen[-1], colour[top:bottom, left:right])
