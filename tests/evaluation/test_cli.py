import json

import numpy as np
import pytest
import tifffile

from napari_inter2former.evaluation.__main__ import format_table, main


def write_set(root, volume=False):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    rr, cc = np.ogrid[:40, :40]
    labels = np.zeros((40, 40), np.uint16)
    labels[(rr - 12) ** 2 + (cc - 12) ** 2 <= 36] = 1
    labels[(rr - 28) ** 2 + (cc - 27) ** 2 <= 25] = 2
    labels[36:38, 0:2] = 3  # 4 px (12 voxels in the volume): skipped
    image = (20 + 10 * rng.random((40, 40)) + 180 * (labels > 0)).astype(np.uint16)
    if volume:
        labels = np.stack([np.zeros_like(labels)] + [labels] * 3 + [np.zeros_like(labels)])
        empty = (20 + 10 * rng.random((40, 40))).astype(np.uint16)
        image = np.stack([empty, image, image, image, empty])
    tifffile.imwrite(root / "images" / "s.tif", image)
    tifffile.imwrite(root / "masks" / "s.tif", labels)
    return root


def test_cli_two_models_table_and_json(tmp_path, capsys):
    data = write_set(tmp_path / "set")
    out_json = tmp_path / "out" / "r.json"
    bad = str(tmp_path / "missing.safetensors")
    rc = main([str(data), "--model", "fake", "--model", bad, "--model", "random-walker",
               "--max-clicks", "3", "--json", str(out_json)])
    assert rc == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split()[:4] == ["model", "NoC85", "NoC90", "NoC95"]
    assert lines[2].startswith("fake") and "error" in lines[3] and lines[4].startswith("random-walker")
    assert "failed" in captured.err
    payload = json.loads(out_json.read_text())
    fake = payload["models"]["fake"]
    for key in ("noc85", "noc90", "noc95", "miou@1", "miou@3", "biou@5", "spc_ms",
                "encoder_s", "n_objects", "n_skipped"):
        assert key in fake
    assert fake["n_objects"] == 2 and fake["n_skipped"] == 1
    assert fake["noc85"] == 1.0 and fake["miou@1"] == 1.0  # bright discs: one click each
    assert fake["miou@5"] is None  # only 3 clicks
    assert "error" in payload["models"][bad]
    assert len(payload["objects"]["fake"]) == 2


def test_cli_max_objects_and_3d(tmp_path, capsys):
    data = write_set(tmp_path / "vol", volume=True)
    out_json = tmp_path / "r.json"
    assert main([str(data), "--model", "fake", "--max-objects", "1", "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text())["models"]["fake"]["n_objects"] == 1
    assert main([str(data), "--model", "fake", "--3d", "--json", str(out_json)]) == 0
    row = json.loads(out_json.read_text())["models"]["fake"]
    assert row["n_objects"] == 2 and row["n_skipped"] == 1  # the 12-voxel object
    assert row["noc85"] == 1.0 and row["noc85_per_slice"] == pytest.approx(1 / 3)
    assert "NoC85/sl" in capsys.readouterr().out
    args = [str(data), "--model", "fake", "--3d", "--per-slice", "--json", str(out_json)]
    assert main(args) == 0
    row = json.loads(out_json.read_text())["models"]["fake"]
    assert row["noc85"] == 3.0 and row["noc85_per_slice"] == 1.0  # one click per plane


def test_cli_errors(tmp_path, capsys):
    assert main([str(tmp_path), "--model", "fake"]) == 2
    data = write_set(tmp_path / "set")
    assert main([str(data), "--model", "fake", "--3d"]) == 2
    assert main([str(data), "--model", "fake", "--per-slice"]) == 2
    assert main([str(data), "--model", "nope"]) == 1  # every model failed
    assert "inter2former-eval" in capsys.readouterr().err


def test_format_table_dashes_missing():
    table = format_table({"m": {"noc85": 2.0, "spc_ms": float("nan")}})
    assert "2.00" in table and " -" in table


@pytest.mark.slow
def test_cli_on_dsb2018(shared_data, tmp_path):
    out_json = tmp_path / "dsb.json"
    rc = main([str(shared_data / "eval" / "dsb2018_256"), "--model", "fake",
               "--max-objects", "4", "--max-clicks", "3", "--json", str(out_json)])
    assert rc == 0
    row = json.loads(out_json.read_text())["models"]["fake"]
    assert row["n_objects"] == 4 and row["n_skipped"] == 0
