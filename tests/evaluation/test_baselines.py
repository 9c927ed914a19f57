import subprocess
import sys

import numpy as np
import pytest

from napari_inter2former.evaluation.baselines import RandomWalkerPredictor, load_predictor
from napari_inter2former.evaluation.metrics import iou
from napari_inter2former.testing import FakePredictor


def test_random_walker_segments_disc(disc):
    image, mask = disc
    predictor = RandomWalkerPredictor()
    predictor.set_image(image)
    pred = predictor.add_click(30, 40)
    assert iou(pred, mask) > 0.9
    pred = predictor.add_click(5, 5, positive=False)  # background: still the disc
    assert iou(pred, mask) > 0.9


def test_random_walker_negative_only_is_empty(disc):
    image, _ = disc
    predictor = RandomWalkerPredictor()
    predictor.set_image(image)
    assert not predictor.add_click(30, 40, positive=False).any()


def test_random_walker_stays_inside_crop():
    image = np.full((200, 200), 200, np.uint8)  # one huge bright region
    image[::7] = 190
    predictor = RandomWalkerPredictor(margin=32)
    predictor.set_image(image)
    pred = predictor.add_click(100, 100)
    rows, cols = np.nonzero(pred)
    # crop: the click grown by max(32, 1) on every side; its border is background
    assert rows.min() >= 68 and rows.max() <= 132 and cols.min() >= 68 and cols.max() <= 132
    assert pred[100, 100]


def test_load_predictor_names(tmp_path):
    assert isinstance(load_predictor("fake"), FakePredictor)
    assert isinstance(load_predictor("random-walker"), RandomWalkerPredictor)
    with pytest.raises(ValueError, match="neither"):
        load_predictor(str(tmp_path / "missing.safetensors"))
    with pytest.raises(ValueError, match="neither"):
        load_predictor("default-dlu-clicked:" + str(tmp_path / "missing.safetensors"))


def test_load_predictor_variant_with_a_weight_file(tmp_path, monkeypatch):
    from napari_inter2former.model import build

    built, build_model = [], build.build_model

    def tiny(name, pretrained=False, decoder_weights=None, **kwargs):
        built.append(decoder_weights)
        return build_model("tiny")

    weights = tmp_path / "run.safetensors"
    weights.write_bytes(b"")
    monkeypatch.setattr(build, "build_model", tiny)
    clicked = load_predictor(f"default-dlu-clicked:{weights}", threads=None)
    plain = load_predictor(str(weights), threads=None)
    assert (clicked.dlu_rule, plain.dlu_rule) == ("clicked", "threshold")
    joined = load_predictor(f"default-dlu-clicked+default-refine-no-clicks:{weights}", threads=None)
    assert (joined.dlu_rule, joined.refine_clicks, plain.refine_clicks) == ("clicked", False, True)
    assert built == [str(weights)] * 3
    with pytest.raises(ValueError, match="neither"):
        load_predictor(f"default-dlu-clicked+nonsense:{weights}")


def test_import_does_not_load_torch():
    code = (
        "import sys; import napari_inter2former.evaluation.__main__, "
        "napari_inter2former.evaluation.baselines; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_bad_inputs():
    with pytest.raises(ValueError, match="margin"):
        RandomWalkerPredictor(margin=0)
