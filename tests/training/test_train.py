import json
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_inter2former.model.build import (
    DECODER_FILE,
    build_model,
    decoder_state_dict,
)
from napari_inter2former.training.config import CONFIG_DIR, TrainConfig, load_config
from napari_inter2former.training.train import Trainer, get_lr, main, parse_args


def _config(tmp_path, name, **changes):
    values = {
        "model": name,
        "pretrained_encoder": False,
        "real_sets": (),
        "num_synthetic": 3,
        "synthetic_size": (48, 96),
        "num_workers": 1,
        "cache_dir": None,
        "max_rounds": 2,
        "batch_size": 2,
        "warmup_steps": 1,
        "max_steps": 4,
        "log_every": 2,
        "val_every": 100,
        "ckpt_every": 100,
        "val_objects": 1,
        "val_views": 1,
        "val_clicks": 2,
        "min_object_area": 8,
        "out": str(tmp_path / "run"),
    }
    values.update(changes)
    return TrainConfig(**values)


def test_get_lr_schedule():
    assert get_lr(0, 1.0, 10, 100, 0.1) == pytest.approx(0.1)
    assert get_lr(9, 1.0, 10, 100, 0.1) == pytest.approx(1.0)
    assert get_lr(10, 1.0, 10, 100, 0.1) == pytest.approx(1.0)
    assert get_lr(55, 1.0, 10, 100, 0.1) == pytest.approx(0.55)  # cosine midpoint
    assert get_lr(100, 1.0, 10, 100, 0.1) == pytest.approx(0.1)
    assert get_lr(500, 1.0, 10, 100, 0.1) == pytest.approx(0.1)


def test_resume_repeats_the_uninterrupted_run(micro_name, tmp_path):
    straight = Trainer(_config(tmp_path / "a", micro_name))
    straight.prepare_data()
    straight.fit()
    # the same run, interrupted after 2 steps, then resumed by a new trainer
    cfg = _config(tmp_path / "b", micro_name)
    first = Trainer(cfg)
    first.prepare_data()
    summary = first.fit(stop_after=2)
    assert summary["steps"] == 2 and summary["stop_reason"] == "stop_after"
    torch.manual_seed(1234)  # global torch state must not matter
    second = Trainer(cfg)
    assert second.resume() and second.step == 2
    second.prepare_data()
    second.fit()
    assert second.step == straight.step == 4
    a, b = decoder_state_dict(straight.model), decoder_state_dict(second.model)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    sa, sb = (
        straight.optimizer.state_dict()["state"],
        second.optimizer.state_dict()["state"],
    )
    for key in sa:
        assert torch.equal(sa[key]["exp_avg_sq"], sb[key]["exp_avg_sq"])


def test_command_line_run_writes_loadable_weights(micro_name, tmp_path):
    cfg = _config(tmp_path, micro_name, max_steps=2)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg.to_dict()))
    out = tmp_path / "cli"
    assert (
        main(["--config", str(path), "--out", str(out), "--set", "val_clicks=3"]) == 0
    )
    for name in (
        "checkpoint.pt",
        "optimizer.pt",
        DECODER_FILE,
        "train_log.jsonl",
        "config.json",
        "summary.json",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and "noc90" in summary["final_val"]
    events = [
        json.loads(line)["event"]
        for line in (out / "train_log.jsonl").read_text().splitlines()
    ]
    assert {"config", "data", "train", "val", "end"} <= set(events)
    assert json.loads((out / "config.json").read_text())["val_clicks"] == 3
    # the shipped-format file loads into a fresh model of the same variant
    model = build_model(micro_name, decoder_weights=out / DECODER_FILE)
    state = torch.load(out / "checkpoint.pt", weights_only=False)["model"]
    for key, value in decoder_state_dict(model).items():
        torch.testing.assert_close(
            value, state[key].to(value.dtype), atol=1e-2, rtol=1e-2
        )  # fp16 file


def test_cpu_speed_ups_freeze_the_edge_net(micro_name, tmp_path):
    cfg = _config(
        tmp_path, micro_name, max_steps=3, local_train=True, freeze_edge_net=True,
        edge_cache_views=1, prior_mask_prob=0.7, prior_leak_prob=1.0, prior_max_change=0.35,
        boundary_rule="all",
    )  # fmt: skip
    trainer = Trainer(cfg)
    assert trainer.model.boundary_rule == "all"  # the rule inference uses, trained
    before = {k: v.clone() for k, v in trainer.model.edge_net.state_dict().items()}
    trainer.prepare_data()
    summary = trainer.fit()
    assert summary["steps"] == 3 and np.isfinite(summary["final_val"]["miou@1"])
    for k, v in trainer.model.edge_net.state_dict().items():
        assert torch.equal(v, before[k])
    assert len(trainer._edge_cache) == 1  # capped at edge_cache_views


def test_unknown_boundary_rule_is_refused(micro_name, tmp_path):
    with pytest.raises(ValueError, match="boundary_rule"):
        Trainer(_config(tmp_path, micro_name, boundary_rule="everything"))


def test_time_budget_stops_and_saves(micro_name, tmp_path):
    cfg = _config(tmp_path, micro_name, max_steps=1000, time_budget_min=0.05)
    trainer = Trainer(cfg)
    trainer.prepare_data()
    summary = trainer.fit()
    assert summary["stop_reason"] == "time budget"
    assert summary["steps"] < 1000
    assert (tmp_path / "run" / DECODER_FILE).is_file()


def test_synthetic_options_reach_the_generator_and_the_cache_key(micro_name, tmp_path):
    plain = Trainer(_config(tmp_path / "a", micro_name))
    assert plain._synthetic_options() == {}
    faint = Trainer(_config(tmp_path / "b", micro_name, synthetic_dim_brightness=(0.02, 0.1)))
    assert faint._synthetic_options() == {"dim_brightness": (0.02, 0.1)}
    assert faint._cache_key("train") != plain._cache_key("train")
    cfg, _ = parse_args(["--set", "synthetic_dim_share=[0.3, 0.5]"])
    assert cfg.synthetic_dim_share == (0.3, 0.5)


def test_parse_args_and_config_files(tmp_path):
    cfg, _ = parse_args(
        [
            "--config",
            "tiny",
            "--device",
            "cpu",
            "--time-budget-min",
            "3",
            "--set",
            "lr=0.001",
            'real_sets=["bian"]',
        ]
    )
    assert cfg.model == "tiny" and cfg.time_budget_min == 3 and cfg.lr == 0.001
    assert cfg.real_sets == ("bian",)
    packaged = sorted(CONFIG_DIR.glob("*.json"))
    assert {"cpu", "cpu-finetune", "gpu", "gpu-finetune", "tiny"} <= {p.stem for p in packaged}
    repo = Path(__file__).resolve().parents[2]
    for path in packaged:
        cfg = load_config(path.stem)
        assert isinstance(cfg, TrainConfig)
        if cfg.init_weights is not None:  # relative to the repository root
            assert (repo / cfg.init_weights).is_file(), path.name
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"lr": 1.0, "learning_rate": 2.0}))
    with pytest.raises(ValueError, match="learning_rate"):
        load_config(bad)
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "missing.json")
    assert np.isfinite(load_config(None).lr)
