import pytest
import torch

from napari_inter2former.model import (
    CONFIGS,
    build_model,
    decoder_state_dict,
    load_decoder_state_dict,
)
from napari_inter2former.model.weights import save_weights




def test_registry():
    assert {"default", "official-edges", "tiny"} <= set(CONFIGS)
    d, o = CONFIGS["default"], CONFIGS["official-edges"]
    assert (d.image_size, d.embed_dim, d.depth, d.num_experts, d.code_size) == (
        1024,
        256,
        2,
        8,
        8,
    )
    assert o.edge_widths == (4, 16, 64, 256) and o.edge_depth == 4
    assert d.edge_widths == (4, 8, 16, 32) and d.edge_depth == 1


def test_tiny_model():
    model = build_model("tiny", boundary_rule="boundary")
    assert not model.training
    assert model.image_size == 256 and model.model_id == "tiny-random"
    assert model.boundary_rule == "boundary"
    keys = decoder_state_dict(model)
    assert keys and all(
        k.split(".")[0] in {"edge_net", "decoder", "upsampler"} for k in keys
    )
    assert any(k.endswith("exp_bias") for k in keys)


def test_decoder_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    source = build_model("tiny")
    with torch.no_grad():
        for p in source.decoder.parameters():
            p.add_(0.01)
    sha = save_weights(decoder_state_dict(source), tmp_path / "dec.safetensors")
    loaded = build_model("tiny", decoder_weights=tmp_path / "dec.safetensors")
    assert loaded.model_id == f"tiny-{sha[:12]}"
    got = decoder_state_dict(loaded)
    for key, value in decoder_state_dict(source).items():
        torch.testing.assert_close(
            got[key], value.half().float(), atol=0, rtol=0
        )  # fp16 storage


def test_load_decoder_state_dict_checks_keys_and_shapes():
    model = build_model("tiny")
    sd = decoder_state_dict(model)
    missing = dict(sd)
    missing.pop(next(iter(missing)))
    with pytest.raises(ValueError, match="missing"):
        load_decoder_state_dict(model, missing)
    wrong = dict(sd)
    key = "decoder.blocks.0.attn.codebook"
    wrong[key] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="shape"):
        load_decoder_state_dict(model, wrong)


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        build_model("huge")
    with pytest.raises(ValueError, match="no pretrained"):
        build_model("tiny", pretrained=True)
    with pytest.raises(ValueError, match="boundary_rule"):
        build_model("tiny", boundary_rule="variance")


def test_pretrained_without_shipped_decoder_says_so(monkeypatch):
    from napari_inter2former.model import build

    monkeypatch.setattr(build, "DECODER_FILE", "no_such_decoder.safetensors")
    with pytest.raises(FileNotFoundError, match="not been trained/shipped"):
        build_model("default", pretrained=True)
