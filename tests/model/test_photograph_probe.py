"""The photograph probe: embedding statistics over the image's tokens, the logistic answer."""

import numpy as np
import pytest
import torch

from napari_inter2former.model.photograph_probe import PhotographProbe, embedding_statistics


def test_statistics_leave_out_the_padding_tokens():
    embedding = torch.full((1, 2, 8, 8), 100.0)  # padding: far off
    embedding[0, 0, :4, :] = torch.arange(32.0).view(4, 8)
    embedding[0, 1, :4, :] = 1.0
    stats = embedding_statistics(embedding, (50, 100))  # rows: 50 / 100 of the grid -> 4 of 8
    expected = torch.tensor([15.5, 1.0, torch.arange(32.0).std().item(), 0.0])
    torch.testing.assert_close(stats, expected)


def test_the_probability_is_the_logistic_of_the_standardised_statistics():
    probe = PhotographProbe(
        mean=torch.tensor([1.0, 0.0]), scale=torch.tensor([2.0, 1.0]),
        weight=torch.tensor([3.0, 0.0]), bias=-1.0, threshold=0.9,
    )
    embedding = torch.full((1, 1, 4, 4), 5.0)  # mean 5, std 0
    assert probe.probability(embedding, (4, 4)) == pytest.approx(1 / (1 + np.exp(-5.0)))
    assert probe.is_photograph(embedding, (4, 4))
    assert not probe.is_photograph(torch.zeros(1, 1, 4, 4), (4, 4))  # logit -2.5
    with pytest.raises(ValueError, match="channels"):
        probe.probability(torch.zeros(1, 3, 4, 4), (4, 4))
    with pytest.raises(ValueError, match="one shape"):
        PhotographProbe(torch.zeros(2), torch.ones(3), torch.zeros(2), 0.0)


def _probability(predictor, rgb):
    predictor.set_image(rgb, channel_axis=-1)
    return predictor.photograph_probe.probability(predictor._image_features.embedding, rgb.shape[:2])


@pytest.mark.slow
def test_the_shipped_probe_tells_grey_photographs_from_microscopy(shared_data):
    """Generated nuclei and cells (seeds outside the probe's) against grey copies of three
    training photographs the probe was not fitted on (``coco100``). Measured with the
    session-26 probe: microscopy p 0.0054 and 0.0010, photographs p >= 0.9956."""
    from skimage import io

    from napari_inter2former.evaluation.datasets import normalize_intensity
    from napari_inter2former.predictor import Predictor
    from napari_inter2former.training.synthetic import synthetic_image
    from napari_inter2former.transforms import to_rgb_uint8

    predictor = Predictor.from_pretrained()
    for seed, kind in ((70000, "nuclei"), (70001, "cells")):
        image = synthetic_image(seed, kind=kind, size_range=(256, 256)).image
        p = _probability(predictor, to_rgb_uint8(normalize_intensity(image)))
        assert p < 0.5, (seed, kind, p)
    folder = shared_data / "train" / "coco_mval" / "images"
    for stem in ("cell phone02_000000180878", "donut02_000000238866", "bird08_000000456496"):
        rgb = io.imread(folder / f"{stem}.jpg")[..., :3]
        grey = (rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).round().astype(np.uint8)
        p = _probability(predictor, np.repeat(grey[..., None], 3, axis=-1))
        assert p >= predictor.photograph_probe.threshold, (stem, p)
