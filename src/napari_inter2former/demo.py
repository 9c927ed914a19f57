"""Try the plugin: ``python -m napari_inter2former.demo``.

Opens napari with a synthetic nuclei image and the Inter2Former widget docked.
``--3d`` uses the 3-D stack. ``--headless`` needs no display: it clicks the
centre of a few nuclei of the sample, runs the model, writes ``labels.tif``
and ``labels_clicks.csv`` and prints what it did (``--fake`` swaps in the
deterministic stand-in predictor, e.g. before trained weights exist).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

__all__ = ["headless", "main"]


def _make_predictor(fake: bool):
    if fake:
        from .testing import FakePredictor

        return FakePredictor()
    import os

    from .predictor import Predictor

    return Predictor.from_pretrained(num_threads=max(1, (os.cpu_count() or 2) - 1))


def headless(out: str | Path = "labels.tif", *, n_objects: int = 5, fake: bool = False,
             three_d: bool = False) -> np.ndarray:
    """Segment ``n_objects`` sample nuclei with one click each; write and return the labels."""
    from ._sample_data import nuclei_2d, nuclei_3d
    from ._writer import save_clicks, save_labels
    from .annotation import ClickRecord, as_volume, replay

    image, truth = nuclei_3d() if three_d else nuclei_2d()
    volume, is_volume = as_volume(image)
    truth = truth if is_volume else truth[None]
    predictor = _make_predictor(fake)
    records = []
    for object_id in range(1, min(n_objects, int(truth.max())) + 1):
        obj = truth == object_id
        plane = int(np.argmax(obj.sum(axis=(1, 2))))  # the object's largest plane
        depth = ndi.distance_transform_edt(np.pad(obj[plane], 1))[1:-1, 1:-1]
        row, col = np.unravel_index(int(np.argmax(depth)), depth.shape)
        records.append(ClickRecord(object_id, plane, float(row), float(col), order=len(records)))
    start = time.perf_counter()
    labels = replay(predictor, volume, records)
    seconds = time.perf_counter() - start
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = labels if is_volume else labels[0]
    save_labels(out, written)
    csv = save_clicks(out.with_name(f"{out.stem}_clicks.csv"), records)
    name = type(predictor).__name__
    print(f"{name} on the {'3-D' if is_volume else '2-D'} sample {image.shape}: "
          f"{len(records)} clicks in {seconds:.2f} s")
    for rec in records:
        obj, got = truth[rec.plane] == rec.object_id, labels[rec.plane] == rec.object_id
        iou = (obj & got).sum() / max((obj | got).sum(), 1)
        print(f"  object {rec.object_id}: click (plane {rec.plane}, row {rec.row:.0f}, "
              f"col {rec.col:.0f}) -> {int(got.sum())} px, IoU {iou:.3f} with the ground truth")
    print(f"wrote {out} and {csv}")
    return written


def _has_display() -> bool:
    import os

    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m napari_inter2former.demo",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--3d", dest="three_d", action="store_true", help="use the 3-D sample")
    parser.add_argument("--headless", action="store_true", help="no viewer: segment and save")
    parser.add_argument("--fake", action="store_true", help="use the stand-in predictor")
    parser.add_argument("--out", default="labels.tif", help="labels file (headless)")
    parser.add_argument("-n", "--objects", type=int, default=5, help="objects to click")
    args = parser.parse_args(argv)
    if not args.headless and not _has_display():
        print("no display found (DISPLAY / WAYLAND_DISPLAY unset): running the headless demo")
        args.headless = True
    if args.headless:
        try:
            headless(args.out, n_objects=args.objects, fake=args.fake, three_d=args.three_d)
        except (OSError, RuntimeError, ValueError, ImportError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        return 0
    import napari

    from ._qt.launch import open_viewer

    factory = None
    if args.fake:
        from .testing import FakePredictor

        factory = FakePredictor
    open_viewer("3d" if args.three_d else "2d", predictor_factory=factory)
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
