"""The shipped default model: loads offline with its sha256 checks and segments nuclei.

Thresholds are below what was measured (one click on each of 8 sample nuclei: mean IoU 0.84
when this test was written) so that they fail on a broken or untrained decoder
(a random decoder gives mean IoU 0.01 here), not on small retraining changes.
"""

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_inter2former._sample_data import nuclei_2d


@pytest.fixture(scope="module")
def predictor():
    from napari_inter2former import Predictor

    p = Predictor.from_pretrained()
    image, labels = nuclei_2d()
    p.set_image(image)
    return p, labels


def deepest_point(mask):
    depth = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return np.unravel_index(depth.argmax(), depth.shape)


@pytest.mark.slow
def test_one_click_segments_sample_nuclei(predictor):
    p, labels = predictor
    ious = []
    for label in range(1, 9):
        obj = labels == label
        p.reset()
        mask = p.add_click(*deepest_point(obj))
        ious.append((mask & obj).sum() / (mask | obj).sum())
    assert np.mean(ious) > 0.6, ious


@pytest.mark.slow
def test_negative_click_removes_a_wrong_region(predictor):
    p, labels = predictor
    obj = labels == 1
    p.reset()
    first = p.add_click(*deepest_point(obj))
    other = labels == 2
    p.reset()
    # click the object, then put a negative click in the middle of its neighbour
    p.add_click(*deepest_point(obj))
    mask = p.add_click(*deepest_point(other), positive=False)
    assert not mask[deepest_point(other)]
    assert (mask & obj).sum() >= 0.5 * (first & obj).sum()


@pytest.mark.slow
def test_model_id_names_the_shipped_decoder():
    from napari_inter2former.model.build import DECODER_FILE, build_model
    from napari_inter2former.model.weights import weights_json

    model = build_model("default", pretrained=True)
    assert model.model_id.endswith(weights_json()[DECODER_FILE]["sha256"][:12])
