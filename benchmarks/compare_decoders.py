"""Compare decoder weight files on held-out TRAINING views (never data/eval).

    python benchmarks/compare_decoders.py cache/train/val-<key>.pt shipped runs/cpu-ft2/inter2former_decoder.safetensors

The pool file is the validation pool a training run caches (`cache_dir`): views held out of
the training split of `data/train` plus synthetic images from the validation seeds. Every
decoder file (or ``shipped``, the packaged weights) runs the evaluation tool's click rule on
the same objects through ``model.decode``; the script prints mIoU after each click, NoC@85/90
and mIoU@1/@last per source, so a training change can be judged without touching data/eval.
"""

import argparse

import numpy as np
import torch

from napari_inter2former.evaluation.metrics import summarize_ious
from napari_inter2former.model.build import build_model
from napari_inter2former.training.data import FeaturePool
from napari_inter2former.training.train import pool_click_curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool", help="validation pool file written by a training run")
    parser.add_argument("decoders", nargs="+", help="decoder .safetensors files or 'shipped'")
    parser.add_argument("--per-view", type=int, default=4, help="objects drawn per view")
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--seed", type=int, default=123)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--boundary-rule",
        choices=("box", "boundary", "all"),
        default=None,
        help="decoder tokens with full attention (default: the model's own, 'box'; "
        "the predictor runs 'all')",
    )
    parser.add_argument(
        "--dlu-rule",
        choices=("threshold", "clicked"),
        default="threshold",
        help="DLU's box: every token the localiser picks, or only its groups holding a "
        "positive click",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pool = FeaturePool.load(args.pool)
    rng = np.random.default_rng(args.seed)
    items = [
        (v, int(o))
        for v in range(len(pool))
        for o in rng.permutation(pool.objects[v])[: args.per_view]
    ]
    sources = np.array([pool.sources[v] for v, _ in items])
    rule = args.boundary_rule or "model's own"
    print(
        f"{len(items)} objects from {len(pool)} held-out views, {args.clicks} clicks, "
        f"rule {rule}, DLU {args.dlu_rule}"
    )
    for name in args.decoders:
        weights = None if name == "shipped" else name
        model = build_model("default", pretrained=True, decoder_weights=weights)
        if args.boundary_rule is not None:
            model.boundary_rule = args.boundary_rule
        curves = pool_click_curves(model, pool, items, args.clicks, dlu_rule=args.dlu_rule)
        summary = summarize_ious(curves, thresholds=(0.85, 0.9), clicks=(1, args.clicks))
        print(f"\n{name}")
        print("  mIoU by click:", " ".join(f"{x:.3f}" for x in curves.mean(0)))
        print("  " + ", ".join(f"{k} {v:.3f}" for k, v in summary.items()))
        for source in sorted(set(sources)):
            c = curves[sources == source]
            print(
                f"  {source:<10} {len(c):>3} objects: mIoU@1 {c[:, 0].mean():.3f}"
                f"  @{args.clicks} {c[:, -1].mean():.3f}"
            )


if __name__ == "__main__":
    main()
