"""``inter2former-train``: train the edge net + decoder + upsampler on a frozen MobileSAM encoder.

Examples
--------
A CPU run in the background (resumes from ``runs/cpu/checkpoint.pt`` when it exists)::

    inter2former-train --config cpu --out runs/cpu --time-budget-min 60

The GPU run (see ``benchmarks/device_train.sh``)::

    inter2former-train --config gpu --device cuda --data-root devcache/data \\
        --out $OUT --time-budget-min 8

The loop reads top to bottom: build the model, cache the data (resized images,
frozen encoder embeddings), then one flat loop: learning rate, batch, interactive
step, log, validate, checkpoint. Every step's randomness is seeded from
(seed, step), so a resumed run repeats exactly the steps it would have taken.
Outputs in ``--out``: ``checkpoint.pt`` (trainable weights, step, config,
history), ``optimizer.pt``, ``inter2former_decoder.safetensors`` (fp16, for the
package), ``train_log.jsonl``, ``config.json``, ``summary.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["Trainer", "get_lr", "main", "parse_args"]

CHECKPOINT = "checkpoint.pt"
OPTIMIZER = "optimizer.pt"
LOG_FILE = "train_log.jsonl"


def get_lr(
    step: int, lr: float, warmup_steps: int, total_steps: int, min_lr_ratio: float
) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return lr * min_lr_ratio
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return lr * (
        min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    )


def parse_args(argv: list[str] | None = None):
    """Command-line arguments -> (TrainConfig, extra options)."""
    from .config import TrainConfig, load_config

    parser = argparse.ArgumentParser(
        prog="inter2former-train", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--config", help="JSON config file, or a packaged name: cpu, gpu, tiny"
    )
    parser.add_argument("--device", help="cpu or cuda")
    parser.add_argument("--out", help="output folder (checkpoint, log, weights)")
    parser.add_argument("--data-root", help="folder holding train/<set>/")
    parser.add_argument(
        "--time-budget-min",
        type=float,
        help="stop, save and exit after this many minutes",
    )
    parser.add_argument("--max-steps", type=int, help="schedule length in steps")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--num-synthetic", type=int)
    parser.add_argument("--num-workers", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--model", help="model variant (default, tiny, ...)")
    parser.add_argument(
        "--cache-dir", help="where cached embeddings are kept ('none': memory only)"
    )
    parser.add_argument("--init-weights", help="decoder .safetensors to start from")
    parser.add_argument(
        "--no-resume",
        action="store_true",
        help="ignore an existing checkpoint in --out",
    )
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=JSON",
        help="any other config field",
    )
    args = parser.parse_args(argv)

    cfg = load_config(args.config)
    changes = {}
    for key, attr in [
        ("device", "device"),
        ("out", "out"),
        ("data_root", "data_root"),
        ("time_budget_min", "time_budget_min"),
        ("max_steps", "max_steps"),
        ("batch_size", "batch_size"),
        ("num_synthetic", "num_synthetic"),
        ("num_workers", "num_workers"),
        ("seed", "seed"),
        ("model", "model"),
        ("init_weights", "init_weights"),
    ]:
        value = getattr(args, key)
        if value is not None:
            changes[attr] = value
    if args.cache_dir is not None:
        changes["cache_dir"] = (
            None if args.cache_dir.lower() == "none" else args.cache_dir
        )
    for item in args.set:
        if "=" not in item:
            parser.error(f"--set expects KEY=JSON, got {item!r}")
        key, value = item.split("=", 1)
        try:
            changes[key] = json.loads(value)
        except json.JSONDecodeError:
            changes[key] = value
    values = cfg.to_dict() | changes
    return TrainConfig.from_dict(values), args


def pool_click_curves(
    model, pool, items, n_clicks: int, device="cpu", dlu_rule: str = "threshold"
) -> np.ndarray:
    """IoU after each click of the evaluation tool's click rule on cached views.

    Parameters
    ----------
    model : Inter2Former
        Run through ``model.decode`` (the inference path), in eval mode.
    pool : FeaturePool
    items : list of (view index, object id)
    n_clicks : int
    dlu_rule : {'threshold', 'clicked'}
        DLU's box rule (:meth:`Inter2Former.decode`).

    Returns
    -------
    ndarray of shape (len(items), n_clicks)
        Curves padded with their last value when the clicker stops early.
    """
    import torch

    from ..evaluation.clicker import Clicker
    from ..evaluation.metrics import iou, pad_curve
    from ..model.inter2former import ImageFeatures
    from ..reference_map import new_reference_map, paint_clicks, update_by_prediction

    model = model.eval()
    t = model.image_size
    curves = []
    with torch.no_grad():
        for view, obj in items:
            image, emb, gt, valid = pool.batch([(view, obj)], device)
            feats = ImageFeatures(emb, tuple(model.edge_net(image)))
            gt_np, ignore = gt[0, 0].cpu().numpy(), ~valid[0, 0].cpu().numpy()
            clicker = Clicker(gt_np, ignore=ignore)
            ref = new_reference_map(t, t, device=device)
            pred, ious = None, []
            for _ in range(n_clicks):
                click = clicker.make_next_click(pred)
                if click is None:
                    break
                paint_clicks(ref, [(click.row, click.col, click.positive)])
                logits = model.decode(feats, ref, dlu_rule=dlu_rule)
                ref = update_by_prediction(ref, logits > 0)
                pred = (logits[0, 0] > 0).cpu().numpy()
                ious.append(iou(pred, gt_np, ignore))
            curves.append(pad_curve(ious or [0.0], n_clicks))
    return np.stack(curves)


class RunLog:
    """Lines to stdout (through tqdm when a bar is shown) and JSON records to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bar = None

    def __call__(self, message: str, **record) -> None:
        if self.bar is not None:
            self.bar.write(message)
        else:
            print(message, flush=True)
        if record:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


class Trainer:
    """State of one run: model, optimiser, data pools, step counter, history.

    Parameters
    ----------
    cfg : TrainConfig
    start_time : float, optional
        ``time.monotonic()`` at program start (the time budget counts from it).
    """

    def __init__(self, cfg, start_time: float | None = None) -> None:
        import torch

        self.cfg = cfg
        self.start = time.monotonic() if start_time is None else start_time
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.log = RunLog(self.out / LOG_FILE)
        self.device = torch.device(cfg.device)
        self.amp = bool(cfg.amp)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        torch.manual_seed(cfg.seed)
        self.model = self._build_model().to(self.device)
        frozen = ("image_encoder.",) + (("edge_net.",) if cfg.freeze_edge_net else ())
        self.trainable = [
            p
            for name, p in self.model.named_parameters()
            if not name.startswith(frozen)
        ]
        for name, p in self.model.named_parameters():
            if name.startswith(frozen):
                p.requires_grad_(False)
        self._edge_cache: dict[int, tuple] = {}
        self.optimizer = torch.optim.AdamW(
            self.trainable, lr=cfg.lr, betas=(0.9, 0.999), weight_decay=cfg.weight_decay
        )
        self.step = 0
        self.schedule_steps = cfg.max_steps
        self.schedule_fixed = not (cfg.auto_schedule and cfg.time_budget_min)
        self.history: list[dict] = []
        self.val_seconds = (
            0.0  # duration of the last validation (reserved before the deadline)
        )
        self.train_pool = None
        self.val_pool = None
        self.val_items: list[tuple[int, int]] = []

    # ------------------------------------------------------------------ setup
    def _build_model(self):
        from ..model.build import CONFIGS, build_from_config, load_decoder_state_dict
        from ..model.weights import load_weights

        if self.cfg.model not in CONFIGS:
            raise ValueError(
                f"unknown model {self.cfg.model!r}; choose one of {sorted(CONFIGS)}"
            )
        config = CONFIGS[self.cfg.model]
        model = build_from_config(config, f"{self.cfg.model}-train", self.cfg.boundary_rule)
        if self.cfg.pretrained_encoder and config.encoder == "tinyvit":
            from ..model.image_encoder import load_mobilesam_encoder

            load_mobilesam_encoder(model.image_encoder)
        if self.cfg.init_weights:
            load_decoder_state_dict(model, load_weights(self.cfg.init_weights))
        return model.eval()

    def deadline(self) -> float | None:
        if not self.cfg.time_budget_min:
            return None
        return self.start + 60.0 * float(self.cfg.time_budget_min)

    def seconds_left(self) -> float:
        d = self.deadline()
        return math.inf if d is None else d - time.monotonic()

    def _cache_key(self, kind: str) -> str:
        c = self.cfg
        fields = [
            kind,
            c.model,
            c.pretrained_encoder,
            c.data_root,
            c.real_sets,
            sorted(c.max_real_images.items()),
            c.num_synthetic,
            c.synthetic_size,
            c.val_fraction,
            c.seed,
            c.min_object_area,
            c.val_views,
        ]
        options = self._synthetic_options()
        if options:  # only where they differ from the generator's: older keys stay valid
            fields.append(sorted(options.items()))
        return hashlib.sha1(json.dumps(fields, default=str).encode()).hexdigest()[:12]

    def _synthetic_options(self) -> dict:
        """The config's keywords for ``synthetic_image`` that differ from its defaults."""
        from .synthetic import DIM_BRIGHTNESS, DIM_SHARE

        options = {
            "dim_share": (tuple(self.cfg.synthetic_dim_share), DIM_SHARE),
            "dim_brightness": (tuple(self.cfg.synthetic_dim_brightness), DIM_BRIGHTNESS),
        }
        return {name: value for name, (value, default) in options.items() if value != default}

    def prepare_data(self) -> None:
        """Build (or load from ``cache_dir``) the training and validation pools."""
        import torch

        from .data import (
            VAL_SEED_OFFSET,
            FeaturePool,
            build_pool,
            interleave,
            iter_synthetic_views,
            load_real_set,
            plan_views,
        )

        c = self.cfg
        storage = self.device if self.device.type == "cuda" else torch.device("cpu")
        cache = Path(c.cache_dir) if c.cache_dir else None
        paths = (
            {k: cache / f"{k}-{self._cache_key(k)}.pt" for k in ("train", "val")}
            if cache
            else {}
        )
        if cache and all(p.exists() for p in paths.values()):
            self.train_pool = FeaturePool.load(paths["train"], storage)
            self.val_pool = FeaturePool.load(paths["val"], storage)
            self.log(
                f"loaded cached pools: {len(self.train_pool)} train, {len(self.val_pool)} val views"
            )
            self._choose_val_items()
            return

        t0 = time.monotonic()
        real_train, real_val = {}, {}
        for name in c.real_sets:
            try:
                real_train[name] = load_real_set(
                    c.data_root, name, "train", c.val_fraction
                )
                real_val[name] = load_real_set(c.data_root, name, "val", c.val_fraction)
            except ValueError as err:
                self.log(f"skipping real set {name}: {err}")
        self.log(
            "real images: "
            + ", ".join(
                f"{k} {len(v)} train / {len(real_val[k])} val"
                for k, v in real_train.items()
            )
            + f" ({time.monotonic() - t0:.1f} s)"
        )
        enc_batch = 16 if self.device.type == "cuda" else 2
        # validation: a few held-out views of every source
        rng = np.random.default_rng([c.seed, 7])
        sources = [k for k, v in real_val.items() if v] + (
            ["synthetic"] if c.num_synthetic else []
        )
        per_source = max(1, c.val_views // max(1, len(sources)))
        val_views = []
        for name, views in real_val.items():
            for i in rng.permutation(len(views))[:per_source]:
                val_views.append(views[int(i)])
        n_syn_val = per_source if c.num_synthetic else 0
        synthetic_options = self._synthetic_options()
        val_stream = interleave(
            val_views,
            iter_synthetic_views(
                range(VAL_SEED_OFFSET, VAL_SEED_OFFSET + n_syn_val),
                c.synthetic_size,
                1,
                **synthetic_options,
            ),
        )
        self.val_pool = build_pool(
            self.model,
            val_stream,
            batch_size=enc_batch,
            min_object_area=4 * c.min_object_area,
            storage_device=storage,
        )
        # training: interleaved real and synthetic views, until the precompute deadline
        deadline = None
        if c.time_budget_min:
            deadline = self.start + 60.0 * c.time_budget_min * c.precompute_share
        counts = {k: c.max_real_images.get(k, 0) for k in real_train}
        real_stream = plan_views(
            real_train, counts, np.random.default_rng([c.seed, 11])
        )
        seeds = range(c.seed * 100_000, c.seed * 100_000 + c.num_synthetic)
        syn_stream = iter_synthetic_views(
            seeds, c.synthetic_size, c.num_workers, **synthetic_options
        )
        total = sum(counts.values()) + c.num_synthetic
        last = [time.monotonic()]

        def progress(n: int) -> None:
            if time.monotonic() - last[0] > 10 or n >= total:
                last[0] = time.monotonic()
                self.log(f"cached {n}/{total} views ({time.monotonic() - t0:.0f} s)")

        self.train_pool = build_pool(
            self.model,
            interleave(syn_stream, real_stream),
            batch_size=enc_batch,
            min_object_area=c.min_object_area,
            storage_device=storage,
            deadline=deadline,
            progress=progress,
        )
        if hasattr(syn_stream, "close"):
            syn_stream.close()
        elapsed = time.monotonic() - t0
        counts_by_source = {
            s: len(v) for s, v in self.train_pool.source_indices().items()
        }
        self.log(
            f"training pool: {len(self.train_pool)} views {counts_by_source}, "
            f"validation pool: {len(self.val_pool)} views ({elapsed:.1f} s)",
            event="data",
            seconds=elapsed,
            train_views=counts_by_source,
            val_views=len(self.val_pool),
        )
        if cache:
            self.train_pool.save(paths["train"])
            self.val_pool.save(paths["val"])
        self._choose_val_items()

    def _choose_val_items(self) -> None:
        """Fixed validation objects: round-robin over sources, random view and object."""
        rng = np.random.default_rng([self.cfg.seed, 13])
        groups = self.val_pool.source_indices()
        names = sorted(groups)
        items = []
        seen = set()
        for k in range(self.cfg.val_objects * 4):
            if len(items) >= self.cfg.val_objects or not names:
                break
            group = groups[names[k % len(names)]]
            view = int(group[rng.integers(group.size)])
            objs = self.val_pool.objects[view]
            obj = int(objs[rng.integers(len(objs))])
            if (view, obj) not in seen:
                seen.add((view, obj))
                items.append((view, obj))
        self.val_items = items

    # ------------------------------------------------------------------ checkpoints
    def save(self, final: bool = False) -> None:
        import torch

        from ..model.build import DECODER_FILE, decoder_state_dict
        from ..model.weights import save_weights

        state = {
            "model": {
                k: v.detach().cpu() for k, v in decoder_state_dict(self.model).items()
            },
            "step": self.step,
            "schedule_steps": self.schedule_steps,
            "schedule_fixed": self.schedule_fixed,
            "config": self.cfg.to_dict(),
            "history": self.history,
            "val_seconds": self.val_seconds,
        }
        for name, obj in (
            (CHECKPOINT, state),
            (OPTIMIZER, self.optimizer.state_dict()),
        ):
            tmp = self.out / (name + ".tmp")
            torch.save(obj, tmp)
            os.replace(tmp, self.out / name)
        sha = save_weights(decoder_state_dict(self.model), self.out / DECODER_FILE)
        (self.out / "config.json").write_text(
            json.dumps(self.cfg.to_dict(), indent=2) + "\n"
        )
        if final:
            self.log(f"saved step {self.step}: {self.out / DECODER_FILE} sha256 {sha}")

    def resume(self) -> bool:
        """Load ``checkpoint.pt`` + ``optimizer.pt`` from ``out`` if present."""
        import torch

        from ..model.build import load_decoder_state_dict

        path = self.out / CHECKPOINT
        if not path.exists():
            return False
        state = torch.load(path, map_location="cpu", weights_only=False)
        load_decoder_state_dict(self.model, state["model"])
        self.model.to(self.device)
        opt_path = self.out / OPTIMIZER
        if opt_path.exists():
            self.optimizer.load_state_dict(
                torch.load(opt_path, map_location=self.device, weights_only=False)
            )
        self.step = int(state["step"])
        self.schedule_steps = int(state["schedule_steps"])
        self.schedule_fixed = bool(state.get("schedule_fixed", True))
        if self.cfg.max_steps != state["config"].get(
            "max_steps"
        ):  # user asked for a new length
            self.schedule_steps, self.schedule_fixed = self.cfg.max_steps, True
        self.history = list(state.get("history", []))
        self.val_seconds = float(state.get("val_seconds", 0.0))
        self.log(
            f"resumed from {path} at step {self.step} (schedule {self.schedule_steps} steps)"
        )
        return True

    # ------------------------------------------------------------------ validation
    def validate(self) -> dict[str, float]:
        """NoC@85/90 and mIoU@1/5 on the fixed held-out objects (deterministic clicks).

        A failure here (e.g. an untested device path of ``decode``) is logged and
        gives empty metrics instead of ending the run.
        """
        try:
            return self._validate()
        except Exception as err:  # noqa: BLE001 - validation must not end a training run
            self.log(
                f"validation failed: {type(err).__name__}: {err}",
                event="val_error",
                error=str(err),
            )
            return {}

    def _validate(self) -> dict[str, float]:
        from ..evaluation.metrics import summarize_ious

        curves = pool_click_curves(
            self.model, self.val_pool, self.val_items, self.cfg.val_clicks, self.device,
            dlu_rule=self.cfg.dlu_rule,
        )
        return summarize_ious(curves, thresholds=(0.85, 0.9), clicks=(1, 5))

    # ------------------------------------------------------------------ loop
    def frozen_edges(self, picks, image):
        """Edge maps of a batch from the frozen edge net, cached per view (None if not frozen)."""
        import torch

        if not self.cfg.freeze_edge_net:
            return None
        per_image = []
        with torch.no_grad():
            self.model.edge_net.eval()
            for b, (view, _) in enumerate(picks):
                maps = self._edge_cache.get(view)
                if maps is None:
                    maps = tuple(m.half() for m in self.model.edge_net(image[b : b + 1]))
                    if len(self._edge_cache) < self.cfg.edge_cache_views:
                        self._edge_cache[view] = maps
                per_image.append(maps)
        return tuple(torch.cat(level).float() for level in zip(*per_image))

    def _step(self, image, emb, gt, valid, rng, edges=None, others=None) -> dict[str, float]:
        from .step import train_step

        c = self.cfg
        return train_step(
            self.model,
            self.optimizer,
            image,
            emb,
            gt,
            valid,
            rng,
            max_rounds=c.max_rounds,
            rounds_gamma=c.rounds_gamma,
            click_k=c.click_k,
            first_click_deepest=c.first_click_deepest,
            prior_mask_prob=c.prior_mask_prob,
            prior_max_change=c.prior_max_change,
            prior_leak_prob=c.prior_leak_prob,
            others=others,
            coarse_loss_weight=c.coarse_loss_weight,
            vq_loss_weight=c.vq_loss_weight,
            iou_loss_weight=c.iou_loss_weight,
            grad_clip=c.grad_clip,
            amp=self.amp,
            edges=edges,
            local=c.local_train,
            micro_batches=c.micro_batches,
            dlu_rule=c.dlu_rule,
        )

    def fit(self, stop_after: int | None = None) -> dict:
        """Train until the schedule ends, the time budget is used, or ``stop_after`` steps."""
        import torch
        from tqdm.auto import tqdm

        c = self.cfg
        deadline = self.deadline()
        val_seconds = self.val_seconds
        metrics = {}
        if self.step == 0:
            t_val = time.monotonic()
            metrics = self.validate()
            val_seconds = self.val_seconds = time.monotonic() - t_val
        if metrics:
            self.log(
                self._format_val(metrics, val_seconds),
                event="val",
                step=self.step,
                **metrics,
            )
            self.history.append({"step": self.step, **metrics})
        bar = tqdm(
            total=self.schedule_steps,
            initial=self.step,
            desc="train",
            dynamic_ncols=True,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
        )
        self.log.bar = bar
        calib_start, calib_step = None, None
        window: dict[str, list[float]] = {}
        t_last = time.monotonic()
        stop_reason = "schedule done"
        first_step = self.step
        while self.step < self.schedule_steps:
            if stop_after is not None and self.step - first_step >= stop_after:
                stop_reason = "stop_after"
                break
            # reserve time for the final validation and save
            if (
                deadline is not None
                and time.monotonic() + 1.5 * val_seconds + 15.0 > deadline
            ):
                stop_reason = "time budget"
                break
            lr = get_lr(
                self.step, c.lr, c.warmup_steps, self.schedule_steps, c.min_lr_ratio
            )
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            rng = np.random.default_rng([c.seed, self.step])
            picks = self.train_pool.sample(rng, c.batch_size, c.source_weights)
            image, emb, gt, valid = self.train_pool.batch(picks, self.device)
            others = (
                self.train_pool.instance_labels(picks, "cpu") if c.prior_leak_prob > 0 else None
            )
            try:
                stats = self._step(
                    image, emb, gt, valid, rng, self.frozen_edges(picks, image), others
                )
            except (RuntimeError, torch.cuda.OutOfMemoryError) as err:
                if self.step != first_step or self.device.type != "cuda":
                    raise
                # first step on a GPU failed: retry once without autocast and with half the batch
                self.log(
                    f"first step failed ({type(err).__name__}: {str(err)[:200]}); retrying in "
                    f"float32 with batch size {max(1, c.batch_size // 2)}",
                    event="fallback",
                )
                torch.cuda.empty_cache()
                self.amp = False
                c.batch_size = max(1, c.batch_size // 2)
                rng = np.random.default_rng([c.seed, self.step])
                picks = self.train_pool.sample(rng, c.batch_size, c.source_weights)
                image, emb, gt, valid = self.train_pool.batch(picks, self.device)
                if others is not None:
                    others = self.train_pool.instance_labels(picks, "cpu")
                stats = self._step(
                    image, emb, gt, valid, rng, self.frozen_edges(picks, image), others
                )
            self.step += 1
            bar.update(1)
            for k, v in stats.items():
                window.setdefault(k, []).append(v)
            # fit the schedule to the time budget once the speed is known
            if not self.schedule_fixed:
                if calib_start is None and self.step >= 3:
                    calib_start, calib_step = time.monotonic(), self.step
                elif calib_start is not None and self.step - calib_step >= 20:
                    per_step = (time.monotonic() - calib_start) / (
                        self.step - calib_step
                    )
                    n_val = 1 + (deadline - time.monotonic()) / max(
                        per_step * c.val_every, 1e-6
                    )
                    left = (
                        deadline
                        - time.monotonic()
                        - n_val * val_seconds
                        - 1.5 * val_seconds
                        - 20.0
                    )
                    self.schedule_steps = int(
                        min(c.max_steps, self.step + max(left, 0) / per_step)
                    )
                    self.schedule_fixed = True
                    bar.total = self.schedule_steps
                    self.log(
                        f"{per_step:.3f} s/step: schedule set to {self.schedule_steps} steps",
                        event="schedule",
                        step=self.step,
                        seconds_per_step=per_step,
                        schedule_steps=self.schedule_steps,
                    )
            if self.step % c.log_every == 0:
                now = time.monotonic()
                means = {k: float(np.mean(v)) for k, v in window.items()}
                sps = (now - t_last) / len(window["loss"])
                t_last, window = now, {}
                self.log(
                    f"step {self.step}: loss {means['loss']:.4f} (nfl {means['nfl']:.4f} coarse "
                    f"{means['coarse']:.4f} vq {means['vq']:.4f}) iou {means['iou']:.3f} "
                    f"lr {lr:.2e} {sps:.2f} s/step"
                    + (
                        f" ({means['skipped']:.0%} skipped: gradient not finite)"
                        if means.get("skipped")
                        else ""
                    ),
                    event="train",
                    step=self.step,
                    lr=lr,
                    seconds_per_step=sps,
                    elapsed=time.monotonic() - self.start,
                    **means,
                )
            if self.step % c.val_every == 0 and self.step < self.schedule_steps:
                t_val = time.monotonic()
                metrics = self.validate()
                val_seconds = self.val_seconds = time.monotonic() - t_val
                self.history.append({"step": self.step, **metrics})
                self.log(
                    self._format_val(metrics, val_seconds),
                    event="val",
                    step=self.step,
                    **metrics,
                )
            if self.step % c.ckpt_every == 0:
                self.save()
        bar.close()
        self.log.bar = None
        t_val = time.monotonic()
        metrics = self.validate()
        val_seconds = time.monotonic() - t_val
        self.history.append({"step": self.step, **metrics})
        self.log(
            self._format_val(metrics, val_seconds),
            event="val",
            step=self.step,
            **metrics,
        )
        self.save(final=True)
        summary = {
            "stop_reason": stop_reason,
            "steps": self.step,
            "schedule_steps": self.schedule_steps,
            "elapsed_s": time.monotonic() - self.start,
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device)
            if self.device.type == "cuda"
            else "cpu",
            "train_views": {
                s: len(v) for s, v in self.train_pool.source_indices().items()
            },
            "final_val": metrics,
            "history": self.history,
        }
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        self.log(
            f"stopped ({stop_reason}) at step {self.step} after {summary['elapsed_s']:.0f} s",
            event="end",
            **{k: v for k, v in summary.items() if k != "history"},
        )
        return summary

    @staticmethod
    def _format_val(m: dict, seconds: float) -> str:
        return (
            f"val: NoC@85 {m.get('noc85', float('nan')):.2f} NoC@90 {m.get('noc90', float('nan')):.2f} "
            f"mIoU@1 {m.get('miou@1', float('nan')):.3f} mIoU@5 {m.get('miou@5', float('nan')):.3f} "
            f"({seconds:.1f} s)"
        )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``inter2former-train``."""
    start = time.monotonic()
    cfg, args = parse_args(argv)
    trainer = Trainer(cfg, start_time=start)
    trainer.log(f"config: {json.dumps(cfg.to_dict())}", event="config", **cfg.to_dict())
    if not args.no_resume:
        trainer.resume()
    trainer.prepare_data()
    trainer.fit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
