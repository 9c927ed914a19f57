"""``inter2former-eval``: evaluate predictors on a data set with the click protocol.

    inter2former-eval DATASET_DIR --model default --model mobilesam \\
        --model random-walker [--max-clicks 20] [--max-objects N] [--3d [--per-slice]]
        [--json OUT.json]

Every ``--model`` runs on the same objects with the same click rule, and one
table compares them (timing ratios within one run are meaningful, absolute
times depend on the machine). A model that fails to load is reported in the
table and on stderr; the others still run.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from pathlib import Path

from .baselines import MODEL_NAMES, load_predictor
from .datasets import load_dataset
from .loop import collect_views, evaluate_dataset_3d, evaluate_views, summarize

__all__ = ["main", "build_parser", "format_table"]

COLUMNS_2D = [
    ("noc85", "NoC85", "{:.2f}"), ("noc90", "NoC90", "{:.2f}"), ("noc95", "NoC95", "{:.2f}"),
    ("miou@1", "mIoU@1", "{:.3f}"), ("miou@3", "mIoU@3", "{:.3f}"),
    ("miou@5", "mIoU@5", "{:.3f}"), ("biou@5", "BIoU@5", "{:.3f}"),
]
COLUMNS_3D = [
    ("noc85", "NoC85", "{:.1f}"), ("noc90", "NoC90", "{:.1f}"),
    ("noc85_per_slice", "NoC85/sl", "{:.2f}"), ("noc90_per_slice", "NoC90/sl", "{:.2f}"),
    ("iou3d@1", "IoU3D@1", "{:.3f}"), ("iou3d@3", "IoU3D@3", "{:.3f}"),
]
COLUMNS_TIME = [
    ("spc_ms", "ms/click", "{:.1f}"), ("encoder_s", "enc s", "{:.3f}"),
    ("spc20_ms", "SPC20 ms", "{:.1f}"), ("spc20_ratio", "SPC20 x", "{:.2f}"),
    ("n_objects", "objects", "{:d}"), ("n_skipped", "skipped", "{:d}"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inter2former-eval",
        description="Click-protocol evaluation (NoC, mIoU, boundary IoU, timing) of "
        "interactive segmentation models on DATASET_DIR/images + masks.",
    )
    parser.add_argument("dataset", type=Path, help="folder with images/ and masks/")
    parser.add_argument(
        "--model", action="append", required=True,
        help=" | ".join(MODEL_NAMES) + " | default-* variants joined by + (their settings "
        "together) | PATH to decoder weights | VARIANT:PATH (a default-* variant's settings "
        "with those weights); repeatable",
    )
    parser.add_argument("--max-clicks", type=int, default=20)
    parser.add_argument("--max-objects", type=int, default=None,
                        help="evaluate at most N objects per image (seeded sample)")
    parser.add_argument("--min-size", type=int, default=16,
                        help="skip objects under this many pixels (voxels in --3d)")
    parser.add_argument("--cache-size", type=int, default=None,
                        help="images (planes) whose encoder features are kept; in --3d use at "
                        "least the volume depth, or planes are encoded again (~70 MB each)")
    parser.add_argument("--3d", dest="three_d", action="store_true",
                        help="slice-by-slice 3-D task on volumes")
    parser.add_argument("--per-slice", action="store_true",
                        help="with --3d: no propagation, every plane segmented on its own "
                        "clicks (the per-slice baseline)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the object sample and of random tie-breaking")
    parser.add_argument("--tie-break", choices=("raster", "random"), default="raster",
                        help="among equally deep pixels: first in raster order, or seeded draw")
    parser.add_argument("--boundary-width", type=float, default=2.0,
                        help="boundary IoU band in pixels")
    return parser


def _fmt(value, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return spec.format(value)


def format_table(rows: dict[str, dict], *, three_d: bool = False) -> str:
    """Fixed-width table, one row per model (errors shown in the row)."""
    columns = (COLUMNS_3D if three_d else COLUMNS_2D) + COLUMNS_TIME
    names = list(rows)
    width = max([5] + [len(n) for n in names])
    header = f"{'model':<{width}}  " + "  ".join(f"{title:>9}" for _, title, _ in columns)
    lines = [header, "-" * len(header)]
    for name in names:
        row = rows[name]
        if "error" in row:
            lines.append(f"{name:<{width}}  error: {row['error']}")
            continue
        cells = "  ".join(f"{_fmt(row.get(key), spec):>9}" for key, _, spec in columns)
        lines.append(f"{name:<{width}}  {cells}")
    return "\n".join(lines)


def _progress(desc: str):
    def wrap(items):
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover
            return items
        return tqdm(items, desc=desc, unit="obj", file=sys.stderr, leave=False)

    return wrap


def _run_model(spec: str, samples, views, n_skipped, args) -> tuple[dict, list]:
    predictor = load_predictor(spec, threads=args.threads)
    if args.cache_size is not None and hasattr(predictor, "cache"):
        predictor.cache.max_entries = args.cache_size
    start = time.perf_counter()
    if args.three_d:
        result = evaluate_dataset_3d(
            predictor, samples, max_clicks=args.max_clicks, min_size=args.min_size,
            max_objects=args.max_objects, seed=args.seed, tie_break=args.tie_break,
            progress=_progress(spec), propagate=not args.per_slice,
        )
    else:
        result = evaluate_views(
            predictor, views, max_clicks=args.max_clicks, tie_break=args.tie_break,
            seed=args.seed, boundary_width=args.boundary_width, progress=_progress(spec),
        )
        result.n_skipped = n_skipped
    summary = summarize(result, max_clicks=args.max_clicks)
    summary["wall_s"] = time.perf_counter() - start
    per_object = []
    for obj in result.objects:
        entry = {"image": obj.stem, "label": int(obj.label),
                 "ious": [round(float(v), 4) for v in obj.ious]}
        if args.three_d:
            entry.update(span=obj.span, clicks=[[p, c.row, c.col, c.positive]
                                                for p, c in obj.clicks])
        else:
            entry.update(plane=obj.plane, biou=round(float(obj.biou), 4),
                         clicks=[[c.row, c.col, c.positive] for c in obj.clicks])
        per_object.append(entry)
    return summary, per_object


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.max_clicks < 1:
        print("inter2former-eval: --max-clicks must be at least 1", file=sys.stderr)
        return 2
    if args.per_slice and not args.three_d:
        print("inter2former-eval: --per-slice needs --3d", file=sys.stderr)
        return 2
    try:
        samples = load_dataset(args.dataset)
    except (ValueError, OSError) as exc:
        print(f"inter2former-eval: {exc}", file=sys.stderr)
        return 2
    views, n_skipped = [], 0
    if not args.three_d:
        views, n_skipped = collect_views(
            samples, min_size=args.min_size, max_objects=args.max_objects, seed=args.seed
        )
    elif not any(s.is_volume for s in samples):
        print(f"inter2former-eval: --3d needs volumes, {args.dataset} has none", file=sys.stderr)
        return 2

    rows: dict[str, dict] = {}
    details: dict[str, list] = {}
    for spec in args.model:
        try:
            rows[spec], details[spec] = _run_model(spec, samples, views, n_skipped, args)
        except Exception as exc:  # report and go on with the other models
            message = f"{type(exc).__name__}: {exc}".splitlines()[0]
            print(f"inter2former-eval: model {spec!r} failed: {message}", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            rows[spec] = {"error": message}
    reference = next((r for r in rows.values() if r.get("spc20_ms")), None)
    for row in rows.values():
        if reference is not None and row.get("spc20_ms") is not None:
            row["spc20_ratio"] = row["spc20_ms"] / reference["spc20_ms"]

    print(format_table(rows, three_d=args.three_d))
    if args.json is not None:
        payload = {
            "dataset": str(args.dataset),
            "mode": "3d" if args.three_d else "2d",
            "settings": {k: (str(v) if isinstance(v, Path) else v)
                         for k, v in vars(args).items() if k not in ("dataset", "json")},
            "models": rows,
            "objects": details,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_finite(payload), indent=1, allow_nan=False,
                                        default=_json_default))
    return 0 if any("error" not in r for r in rows.values()) else 1


def _finite(value):
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


if __name__ == "__main__":
    sys.exit(main())
