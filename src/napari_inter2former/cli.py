"""``inter2former segment``: headless segmentation from an image and a clicks CSV.

The clicks file is either the plugin's own CSV (saved by the widget: columns
``order, object_id, plane, row, col, label, ...``) or a hand-written one with
columns ``y, x, positive`` (plus ``z`` for a 3-D stack and optionally
``object_id``; ``positive`` is 1/0, true/false or positive/negative), one row per
click, in order. The clicks are replayed object by object exactly as the widget
runs them (:func:`napari_inter2former.annotation.replay`). Example::

    inter2former segment nuclei.tif --clicks clicks.csv --out labels.tif
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .annotation import NEGATIVE, POSITIVE, ClickRecord, as_volume, records_from_table, replay

__all__ = ["main", "read_clicks", "segment"]

_TRUE = {"1", "1.0", "true", "yes", "positive", "pos", "+"}
_FALSE = {"0", "0.0", "false", "no", "negative", "neg", "-"}


def read_clicks(path: str | Path) -> list[ClickRecord]:
    """Read a clicks CSV (the plugin's format or ``y, x, positive [, z, object_id]``)."""
    import pandas as pd

    table = pd.read_csv(path)
    table.columns = [str(c).strip().lower() for c in table.columns]
    if {"row", "col", "label", "object_id"} <= set(table.columns):
        return records_from_table({c: table[c].tolist() for c in table.columns})
    missing = {"y", "x", "positive"} - set(table.columns)
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {sorted(missing)}; expected y, x, positive [, z, object_id] "
            "or the plugin's click table"
        )
    labels = []
    for i, value in enumerate(table["positive"].astype(str).str.strip().str.lower()):
        if value not in _TRUE | _FALSE:
            raise ValueError(f"{path}, row {i + 1}: positive must be 1/0 or true/false, got {value!r}")
        labels.append(POSITIVE if value in _TRUE else NEGATIVE)
    n = len(table)
    return records_from_table(
        {
            "order": list(range(n)),
            "object_id": table["object_id"].tolist() if "object_id" in table else [1] * n,
            "plane": table["z"].tolist() if "z" in table else [0] * n,
            "row": table["y"].tolist(),
            "col": table["x"].tolist(),
            "label": labels,
        }
    )


def segment(predictor, image: np.ndarray, clicks: list[ClickRecord], *, rgb: bool = False) -> np.ndarray:
    """Replay clicks object by object and return an integer label image.

    Parameters
    ----------
    predictor : BasePredictor
    image : ndarray of shape (M, N), (M, N, C) with ``rgb`` or (P, M, N)
    clicks : list of ClickRecord
        As returned by :func:`read_clicks`.
    rgb : bool
        The last axis of ``image`` holds RGB channels.

    Returns
    -------
    labels : ndarray of shape (M, N) or (P, M, N), uint32
        Later objects do not overwrite earlier ones (unless a click says so).
    """
    volume, is_volume = as_volume(image, rgb=rgb)
    labels = replay(predictor, volume, clicks, rgb=rgb)
    return labels if is_volume else labels[0]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inter2former", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seg = sub.add_parser("segment", help="segment objects from a clicks CSV")
    seg.add_argument("image", help="image file (TIFF, PNG, ...): 2-D, 2-D RGB or a 3-D stack")
    seg.add_argument("--clicks", required=True, help="CSV: y, x, positive [, z, object_id]")
    seg.add_argument("--out", required=True, help="output labels TIFF")
    seg.add_argument("--rgb", action="store_true", help="the image's last axis holds RGB channels")
    seg.add_argument("--weights", default=None, help="decoder weight file (default: embedded)")
    seg.add_argument("--threads", type=int, default=None, help="torch threads")
    return parser


def _read_image(path: str) -> np.ndarray:
    if path.lower().endswith((".tif", ".tiff")):
        import tifffile

        return tifffile.imread(path)
    from skimage.io import imread

    return imread(path)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        image = _read_image(args.image)
        clicks = read_clicks(args.clicks)
        if not clicks:
            raise ValueError(f"{args.clicks} holds no clicks")
        from .predictor import Predictor

        predictor = Predictor.from_pretrained(decoder_weights=args.weights, num_threads=args.threads)
        labels = segment(predictor, image, clicks, rgb=args.rgb)
    except (ValueError, OSError) as error:
        print(f"inter2former: error: {error}", file=sys.stderr)
        return 2
    from ._writer import save_labels

    save_labels(args.out, labels)
    print(f"wrote {args.out}: {len(np.unique(labels)) - 1} object(s), shape {labels.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
