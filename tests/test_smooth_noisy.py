"""Smoothing of noisy grey images that the network input enlarges many times:
the noise estimate, the gate, and what the predictor's encoder is given."""

import numpy as np
import pytest

from napari_inter2former.predictor import NOISY_SMALL_IMAGE_SMOOTHING, Predictor
from napari_inter2former.training.synthetic import shot_noise
from napari_inter2former.transforms import SmoothNoisy, noise_level
from stub_models import ClickDiscModel


def disc_with_noise(side=100, noise=0.0, seed=0):
    """A bright disc on a dark ramp, 0..1, plus Gaussian noise of ``noise`` x the range."""
    rows, cols = np.mgrid[:side, :side]
    clean = 0.2 + 0.3 * cols / side + 0.5 * ((rows - side / 2) ** 2 + (cols - side / 2) ** 2 < (side / 4) ** 2)
    return clean + np.random.default_rng(seed).normal(0, noise, clean.shape)


def to_uint8(image):
    low, high = np.percentile(image, [1, 99])
    return np.clip(np.round((image - low) / (high - low) * 255), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("noise", [0.05, 0.1, 0.2])
def test_noise_level_estimates_the_noise_as_a_share_of_the_range(noise):
    image = disc_with_noise(200, noise)
    low, high = np.percentile(image, [1, 99])
    assert noise_level(image) == pytest.approx(noise / (high - low), rel=0.1)


def test_noise_level_ignores_edges_and_ramps_of_a_clean_image():
    assert noise_level(disc_with_noise(200, 0.0)) < 0.01
    assert noise_level(np.full((20, 20), 7.0)) == 0.0
    assert noise_level(np.ones((2, 50))) == 0.0
    with pytest.raises(ValueError, match="2-D"):
        noise_level(np.zeros((4, 4, 3)))


def test_smoothing_needs_both_noise_and_a_large_enlargement():
    smooth = SmoothNoisy(threshold=0.1, min_upscale=8.0, sigma=2.0)
    noisy_small = to_uint8(disc_with_noise(100, 0.15))  # 1024 / 100: enlarged 10 times
    noisy_large = to_uint8(disc_with_noise(256, 0.15))  # 4 times
    clean_small = to_uint8(disc_with_noise(100, 0.01))
    assert smooth.applies(noisy_small)
    assert not smooth.applies(noisy_large)
    assert not smooth.applies(clean_small)
    assert smooth.applies(noisy_large, size=4096)  # the enlargement is the input's side over the image's

    rgb = np.repeat(noisy_small[:, :, None], 3, axis=2)
    out = smooth(rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert (out[..., 0] == out[..., 2]).all()
    assert noise_level(out[..., 0]) < 0.3 * noise_level(noisy_small)
    untouched = np.repeat(noisy_large[:, :, None], 3, axis=2)
    assert smooth(untouched) is untouched


def test_a_few_photons_per_pixel_are_noise_the_smoothing_takes_for_noise():
    clean = to_uint8(disc_with_noise(100, 0.0))
    noisy = shot_noise(clean, 6.0, np.random.default_rng(0))
    assert noisy.dtype == np.uint8 and noisy.shape == clean.shape and noisy.max() == 255
    assert noise_level(noisy) > 0.1 > noise_level(clean)
    assert noise_level(shot_noise(clean, 600.0, np.random.default_rng(0))) < 0.1  # bright: little noise
    assert SmoothNoisy().applies(noisy)


@pytest.mark.parametrize("field, value", [("threshold", -0.1), ("min_upscale", 0.0), ("sigma", 0.0)])
def test_smoothing_settings_are_checked(field, value):
    with pytest.raises(ValueError, match=field):
        SmoothNoisy(**{field: value})


class RecordingModel(ClickDiscModel):
    """Keeps the last image it encoded, (M, N, 3) uint8."""

    def preprocess(self, rgb):
        self.last_rgb = rgb.copy()
        return super().preprocess(rgb)


def encoded_image(image, smooth_noisy=NOISY_SMALL_IMAGE_SMOOTHING):
    model = RecordingModel(image_size=128)
    predictor = Predictor(model, flip_ensemble=None, zoom_in=None, smooth_noisy=smooth_noisy)
    predictor.set_image(image, channel_axis=-1 if image.ndim == 3 else None)
    mask = predictor.add_click(6, 6)
    assert mask.shape == image.shape[:2]
    return model.last_rgb


def test_the_smoothing_predictor_encodes_a_noisy_small_grey_image_smoothed():
    assert NOISY_SMALL_IMAGE_SMOOTHING == SmoothNoisy(threshold=0.1, min_upscale=8.0, sigma=2.0)
    assert Predictor(RecordingModel()).smooth_noisy is None  # opt-in (session 28)
    noisy = to_uint8(disc_with_noise(12, 0.15, seed=1))  # the stub's 128-px input: 10.7 times
    seen = encoded_image(noisy)
    assert noise_level(seen[..., 0]) < 0.5 * noise_level(noisy)
    np.testing.assert_array_equal(encoded_image(noisy, smooth_noisy=None)[..., 0], noisy)
    # colour images are left as they are
    rgb = np.stack([noisy, noisy[::-1], noisy[:, ::-1]], axis=-1)
    np.testing.assert_array_equal(encoded_image(rgb), rgb)
