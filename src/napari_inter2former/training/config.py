"""Training configuration: one dataclass with commented defaults, saved with every run.

A run is described by a :class:`TrainConfig`. The command line reads an optional
JSON file (``--config``) and then applies its own overrides; the final config is
written next to the checkpoint so that a run can be repeated and resumed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .synthetic import DIM_BRIGHTNESS, DIM_SHARE

__all__ = ["CONFIG_DIR", "TrainConfig", "load_config"]

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class TrainConfig:
    """Everything a training run depends on."""

    # --- model ---
    model: str = "default"  # build_model variant; "tiny" for tests
    pretrained_encoder: bool = True  # load the MobileSAM TinyViT weights (frozen)
    init_weights: str | None = (
        None  # decoder weights to start from (safetensors), optional
    )

    # --- data ---
    data_root: str = "../shared/data"  # folder holding train/<set>/{images,masks}
    real_sets: tuple[str, ...] = ("coco_mval", "plantseg", "bian")
    max_real_images: dict[str, int] = field(
        default_factory=lambda: {"coco_mval": 200, "plantseg": 200, "bian": 40}
    )  # cached (image, augmentation) pairs per real set
    num_synthetic: int = 200  # synthetic microscopy images generated and cached
    synthetic_size: tuple[int, int] = (128, 1024)  # range of synthetic image sides (px)
    synthetic_dim_share: tuple[float, float] = DIM_SHARE  # share of dim objects per image (range)
    synthetic_dim_brightness: tuple[float, float] = (
        DIM_BRIGHTNESS  # a dim object's brightness relative to the others (range)
    )
    source_weights: dict[str, float] | None = (
        None  # how often each source is drawn; None: data.SOURCE_WEIGHTS
    )
    val_fraction: float = 0.1  # share of real images (slices) held out for validation
    num_workers: int = 2  # processes for synthetic generation and image loading
    cache_dir: str | None = (
        "cache/train"  # where embeddings are cached (None: memory only)
    )

    # --- interaction simulation ---
    max_rounds: int = (
        20  # at most this many no-grad click rounds before the gradient step
    )
    rounds_gamma: float = 0.6  # P(n rounds) proportional to gamma ** n
    click_k: float = 1.7  # training clicks: any pixel deeper than max_depth / click_k
    first_click_deepest: float = (
        0.5  # probability that the first click is the deepest point
    )
    prior_mask_prob: float = (
        0.2  # start from a perturbed ground-truth mask (prior) this often
    )
    prior_max_change: float = (
        0.15  # largest grow/shrink of the prior, as a fraction of the object's side
    )
    prior_leak_prob: float = (
        0.0  # of the priors, this share also covers parts of neighbouring objects
    )
    min_object_area: int = (
        64  # objects smaller than this (px at network size) are skipped
    )

    # --- optimisation ---
    batch_size: int = 2
    micro_batches: int = 1  # split each batch; gradients accumulate over the parts
    lr: float = 3e-4  # peak AdamW learning rate
    min_lr_ratio: float = 0.05  # final learning rate = lr * min_lr_ratio (cosine decay)
    warmup_steps: int = 50
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    max_steps: int = 2000  # schedule length; the time budget may stop the run earlier
    auto_schedule: bool = (
        False  # with a time budget: shorten the schedule to the steps that fit
    )
    local_train: bool = (
        False  # rounds through decode, DLU + NFL on the inference box only (CPU speed-up)
    )
    freeze_edge_net: bool = (
        False  # keep the edge net fixed and cache its maps per view (CPU speed-up)
    )
    edge_cache_views: int = 400  # views whose frozen edge maps stay in memory (~34 MB each)
    boundary_rule: str = (
        "box"  # DHA tokens with full attention: 'box' (the paper's), 'boundary' or 'all'
    )
    dlu_rule: str = (
        "threshold"  # DLU box: all localiser tokens, or only their groups holding a positive click ('clicked')
    )
    coarse_loss_weight: float = 1.0  # weight of the NFL on DLU's coarse localiser
    vq_loss_weight: float = (
        1.0  # weight of the BSQ commitment loss (beta is in the model)
    )
    iou_loss_weight: float = 0.0  # weight of a soft IoU loss on the full-resolution logits

    # --- run control ---
    seed: int = 0
    device: str = "cpu"
    amp: bool = True  # bf16 autocast of the decoder on CUDA (ignored on CPU; embeddings stay float32)
    time_budget_min: float | None = None  # stop, save and exit after this many minutes
    precompute_share: float = (
        0.35  # at most this share of the budget goes to data + embeddings
    )
    out: str = "runs/train"  # checkpoint, log, weights
    log_every: int = 10
    val_every: int = 200
    ckpt_every: int = 100
    val_objects: int = 16  # held-out objects in the validation NoC
    val_views: int = 16  # held-out views cached for validation
    val_clicks: int = 10  # clicks per validation object
    num_threads: int | None = None  # torch intra-op threads (CPU), None: torch default

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build a config from a dict, rejecting unknown keys."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown training config keys: {', '.join(unknown)}")
        kwargs = {}
        for key, value in values.items():
            if isinstance(value, list):
                value = tuple(value)
            kwargs[key] = value
        return cls(**kwargs)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


def load_config(path: str | Path | None) -> TrainConfig:
    """Read a JSON config file; a bare name is looked up in the packaged ``configs/``.

    Parameters
    ----------
    path : str or Path, optional
        ``None`` gives the defaults.
    """
    if path is None:
        return TrainConfig()
    path = Path(path)
    if not path.exists() and (CONFIG_DIR / path.with_suffix(".json").name).exists():
        path = CONFIG_DIR / path.with_suffix(".json").name
    if not path.exists():
        raise ValueError(f"config file {str(path)!r} does not exist")
    values = json.loads(path.read_text())
    if not isinstance(values, dict):
        raise ValueError(f"config file {str(path)!r} must hold a JSON object")
    return TrainConfig.from_dict(values)
