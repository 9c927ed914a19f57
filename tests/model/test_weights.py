"""Weight file I/O: fp16 safetensors round trip, sha256 checks, weights.json."""

from __future__ import annotations

import json

import pytest
import torch

from napari_inter2former.model.weights import (
    WEIGHTS_DIR,
    WeightFileError,
    average_state_dicts,
    load_packaged_weights,
    load_weights,
    record_weights_file,
    save_weights,
    sha256_of,
    weights_json,
)


@pytest.fixture
def state():
    g = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=g),
        "bn.running_var": torch.rand(4, generator=g) + 0.5,
        "bn.num_batches_tracked": torch.tensor(17),
        "codes": torch.arange(6).view(2, 3),
    }


def test_round_trip_fp16(tmp_path, state):
    path = tmp_path / "w.safetensors"
    sha = save_weights(state, path)
    assert sha == sha256_of(path)
    loaded = load_weights(path, expected_sha256=sha)
    assert set(loaded) == set(state)
    for key, value in state.items():
        if value.is_floating_point():
            assert loaded[key].dtype == torch.float32
            torch.testing.assert_close(loaded[key], value.half().float(), atol=0, rtol=0)
            assert not torch.equal(loaded[key], value)  # really stored in half precision
        else:
            assert loaded[key].dtype == value.dtype
            assert torch.equal(loaded[key], value)


def test_round_trip_fp32_is_exact(tmp_path, state):
    path = tmp_path / "w32.safetensors"
    save_weights(state, path, dtype=torch.float32)
    loaded = load_weights(path)
    for key, value in state.items():
        assert torch.equal(loaded[key], value)


def test_save_is_deterministic(tmp_path, state):
    assert save_weights(state, tmp_path / "a.safetensors") == save_weights(
        state, tmp_path / "b.safetensors"
    )


def test_average_state_dicts_weighs_floats_and_keeps_integers(state):
    other = {k: (v * 3 if v.is_floating_point() else v + 5) for k, v in state.items()}
    soup = average_state_dicts([state, other], [0.75, 0.25])
    torch.testing.assert_close(soup["conv.weight"], 1.5 * state["conv.weight"])
    assert torch.equal(soup["codes"], state["codes"])  # integers from the first
    past = average_state_dicts([state, other], [1.5, -0.5])
    torch.testing.assert_close(past["bn.running_var"], 0.0 * state["bn.running_var"])


def test_average_state_dicts_rejects_mismatches(state):
    with pytest.raises(ValueError, match="sum to 1"):
        average_state_dicts([state, state], [0.5, 0.6])
    with pytest.raises(ValueError, match="different keys"):
        average_state_dicts([state, {"conv.weight": state["conv.weight"]}], [0.5, 0.5])
    wrong = dict(state, **{"conv.weight": torch.zeros(4, 3, 1, 1)})
    with pytest.raises(ValueError, match="shapes differ"):
        average_state_dicts([state, wrong], [0.5, 0.5])


def test_sha_mismatch_raises(tmp_path, state):
    path = tmp_path / "w.safetensors"
    sha = save_weights(state, path)
    wrong = ("0" if sha[0] != "0" else "1") + sha[1:]
    with pytest.raises(WeightFileError, match="sha256"):
        load_weights(path, expected_sha256=wrong)
    # upper-case hex of the right digest is accepted
    assert set(load_weights(path, expected_sha256=sha.upper())) == set(state)


def test_errors_are_value_errors(tmp_path):
    assert issubclass(WeightFileError, ValueError)
    with pytest.raises(WeightFileError, match="does not exist"):
        load_weights(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightFileError, match="not a readable safetensors"):
        load_weights(bad)


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="not a tensor"):
        save_weights({"a": [1, 2]}, tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="floating type"):
        save_weights({"a": torch.zeros(2)}, tmp_path / "x.safetensors", dtype=torch.int8)


def test_weights_json_record_and_merge(tmp_path, state):
    json_path = tmp_path / "weights.json"
    assert weights_json(json_path=json_path) == {}
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_weights(state, a)
    save_weights({"x": torch.ones(3)}, b)
    entry = record_weights_file(a, source="test", licence="MIT", json_path=json_path)
    record_weights_file(b, source="test b", licence="BSD-3-Clause", json_path=json_path)
    entries = json.loads(json_path.read_text())
    assert set(entries) == {"a.safetensors", "b.safetensors"}
    assert entries["a.safetensors"] == entry
    assert entry["sha256"] == sha256_of(a) and entry["bytes"] == a.stat().st_size
    assert weights_json(json_path=json_path)["b.safetensors"]["licence"] == "BSD-3-Clause"
    with pytest.raises(ValueError, match="lacks"):
        weights_json({"c.safetensors": {"sha256": "00"}}, json_path=json_path)


def test_unknown_packaged_file_raises():
    with pytest.raises(WeightFileError, match="not listed"):
        load_packaged_weights("no_such_file.safetensors")


@pytest.mark.parametrize(
    "name", ["mobilesam_image_encoder.safetensors", "mobilesam_prompt_decoder.safetensors"]
)
def test_shipped_files_match_weights_json(name):
    entry = weights_json()[name]
    path = WEIGHTS_DIR / name
    assert path.stat().st_size == entry["bytes"]
    assert sha256_of(path) == entry["sha256"]
    assert entry["licence"] == "Apache-2.0"
    assert (WEIGHTS_DIR / "NOTICE").is_file()
