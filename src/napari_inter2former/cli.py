"""``inter2former segment``: headless segmentation from an image and a clicks CSV.

The clicks file has one row per click, in order, with columns ``y, x, positive``
(plus ``z`` for a 3-D stack and optionally ``object_id``). ``positive`` is 1/0,
true/false or positive/negative. Each object's clicks on a plane are replayed
through the predictor and the resulting masks written as labels (object ids in
order of first appearance, 1, 2, ...). Example::

    inter2former segment nuclei.tif --clicks clicks.csv --out labels.tif
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

__all__ = ["main", "read_clicks", "segment"]

_TRUE = {"1", "true", "yes", "positive", "pos", "+"}
_FALSE = {"0", "false", "no", "negative", "neg", "-"}


def read_clicks(path: str | Path) -> list[dict]:
    """Read a clicks CSV into a list of dicts with keys z, y, x, positive, object_id."""
    import pandas as pd

    table = pd.read_csv(path)
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = {"y", "x", "positive"} - set(table.columns)
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {sorted(missing)}; expected y, x, positive [, z, object_id]"
        )
    clicks = []
    for i, row in enumerate(table.to_dict("records")):
        value = str(row["positive"]).strip().lower()
        if value not in _TRUE | _FALSE:
            raise ValueError(f"{path}, row {i + 1}: positive must be 1/0 or true/false, got {value!r}")
        clicks.append(
            {
                "z": int(row["z"]) if "z" in row else None,
                "y": float(row["y"]),
                "x": float(row["x"]),
                "positive": value in _TRUE,
                "object_id": int(row.get("object_id", 1)),
            }
        )
    return clicks


def segment(predictor, image: np.ndarray, clicks: list[dict], *, channel_axis=None) -> np.ndarray:
    """Replay clicks object by object and return an integer label image.

    Parameters
    ----------
    predictor : BasePredictor
    image : ndarray of shape (M, N), (M, N, C) or (P, M, N)
        2-D image, or a 3-D stack when the clicks carry ``z``.
    clicks : list of dict
        As returned by :func:`read_clicks`.

    Returns
    -------
    labels : ndarray of shape (M, N) or (P, M, N), uint32
        Later objects do not overwrite earlier ones.
    """
    volume = any(c["z"] is not None for c in clicks)
    if volume and image.ndim != 3:
        raise ValueError(f"clicks have a z column but the image has shape {image.shape}")
    labels = np.zeros(image.shape if volume else image.shape[:2], dtype=np.uint32)
    if volume and channel_axis is not None:
        raise ValueError("3-D stacks must be single-channel (P, M, N)")
    groups: dict[tuple[int, int | None], list[dict]] = {}
    for click in clicks:
        groups.setdefault((click["object_id"], click["z"]), []).append(click)
    ids = {obj: i + 1 for i, obj in enumerate(dict.fromkeys(c["object_id"] for c in clicks))}
    for (obj, z), group in groups.items():
        plane = image[z] if volume else image
        predictor.set_image(plane, channel_axis=channel_axis)
        mask = None
        for click in group:
            mask = predictor.add_click(click["y"], click["x"], click["positive"])
        target = labels[z] if volume else labels
        target[mask & (target == 0)] = ids[obj]
    return labels


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inter2former", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seg = sub.add_parser("segment", help="segment objects from a clicks CSV")
    seg.add_argument("image", help="image file (TIFF, PNG, ...)")
    seg.add_argument("--clicks", required=True, help="CSV with y, x, positive [, z, object_id]")
    seg.add_argument("--out", required=True, help="output labels TIFF")
    seg.add_argument("--channel-axis", type=int, default=None, help="channel axis of an RGB image")
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
        from .model.build import build_model
        from .predictor import Predictor

        model = build_model("default", pretrained=True, decoder_weights=args.weights)
        predictor = Predictor(model, num_threads=args.threads)
        labels = segment(predictor, image, clicks, channel_axis=args.channel_axis)
    except (ValueError, OSError) as error:
        print(f"inter2former: error: {error}", file=sys.stderr)
        return 2
    from ._writer import write_labels_tiff

    write_labels_tiff(args.out, labels)
    print(f"wrote {args.out}: {int(labels.max())} object(s), shape {labels.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
