"""Click-to-mask latency in a real napari viewer, and a screenshot.

Run under a display (``xvfb-run -a python benchmarks/viewer_latency.py``). The widget is
docked on the 2-D sample; the first click loads the model and encodes the image; each
next click (one per nucleus, committed in between) is timed from ``add_click`` until the
labels layer holds the mask (``widget.latencies``, measured by the widget itself).

    --model default   the shipped model (Predictor.from_pretrained)
    --model fake      the deterministic stand-in
    --screenshot PNG  save the viewer after the clicks
    --3d              the 3-D sample: one click on a nucleus's middle plane, Propagate,
                      then per-plane IoU against the sample's ground truth
    --look            before the first click, wait until the widget has encoded the shown
                      image (or plane) ahead ("Encode ahead"), as when the user looks at it
                      for a few seconds first; without it the first click comes at once
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", choices=["default", "fake", "tiny"])
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--screenshot", default=None)
    parser.add_argument("--3d", dest="three_d", action="store_true")
    parser.add_argument("--look", action="store_true")
    parser.add_argument(
        "--large", action="store_true",
        help="a generated 2048-px image of small nuclei instead of the 2-D sample (tiles)",
    )
    parser.add_argument("--no-tiles", action="store_true", help="the whole image for every object")
    args = parser.parse_args()

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_inter2former._qt.widget import Inter2FormerWidget, camera
    from napari_inter2former._sample_data import nuclei_2d, nuclei_3d

    threads = max(1, (os.cpu_count() or 2) - 1)
    if args.model == "fake":
        from napari_inter2former.testing import FakePredictor as factory
    else:
        from napari_inter2former.model.build import build_model
        from napari_inter2former.predictor import Predictor

        def factory():
            if args.model == "tiny":
                return Predictor(build_model("tiny"), num_threads=threads)
            if args.no_tiles:
                return Predictor.from_pretrained(num_threads=threads, tiles=None)
            return Predictor.from_pretrained(num_threads=threads)

    if args.large:
        from napari_inter2former.training.synthetic import synthetic_image

        sample = synthetic_image(52001, size_range=(2048, 2048), diameter_range=(12, 20), kind="nuclei")
        image, truth = sample.image, sample.labels
    else:
        image, truth = nuclei_3d() if args.three_d else nuclei_2d()
    viewer = napari.Viewer(show=True)
    viewer.add_image(image, name="nuclei 3d" if args.three_d else "nuclei 2d")
    widget = Inter2FormerWidget(viewer, predictor_factory=factory)
    viewer.window.add_dock_widget(widget, name="Inter2Former")
    app = QApplication.instance()

    def wait():
        while widget.runner.busy or widget._pending:
            app.processEvents()
            time.sleep(0.0005)

    def look(plane):
        """Wait until the widget has encoded ``plane`` ahead (with --look)."""
        if not args.look:
            return
        start = time.perf_counter()
        while plane not in widget._encoded_ahead or widget.runner.busy:
            app.processEvents()
            time.sleep(0.005)
        print(f"encoded plane {plane} ahead of the first click: {time.perf_counter() - start:.1f} s "
              "after it was shown")

    def centre(label):
        rows, cols = np.nonzero(truth == label)
        return int(np.median(rows)), int(np.median(cols))

    if args.three_d:
        run_3d(viewer, widget, truth, wait, app, look, args)
        return

    look(0)
    start = time.perf_counter()
    widget.add_click(0, *centre(1))
    wait()
    first = time.perf_counter() - start
    widget.commit()
    widget.latencies.clear()
    first_ms, refine_ms, ious = [], [], []
    for label in range(2, args.clicks + 2):
        if args.large and args.look:  # the user pans to the nucleus: its tile is encoded ahead
            camera(viewer).center = (0, *centre(label))
            start = time.perf_counter()
            while widget._encode_timer.isActive() or widget.runner.busy:
                app.processEvents()
                time.sleep(0.005)
            print(f"object {label}: tile at the view centre encoded ahead in "
                  f"{time.perf_counter() - start:.1f} s")
        # a new object: its first click (the whole map is still UNKNOWN: the costliest case)
        widget.add_click(0, *centre(label))
        wait()
        first_ms.append(widget.latencies[-1] * 1000)
        # a second, refining click inside the same nucleus (what most clicks are)
        rows, cols = np.nonzero(truth == label)
        far = np.argmax((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
        widget.add_click(0, (rows[far] + rows.mean()) / 2, (cols[far] + cols.mean()) / 2)
        wait()
        refine_ms.append(widget.latencies[-1] * 1000)
        written = np.asarray(widget.labels.data) == widget.annotation.current.object_id
        ious.append((written & (truth == label)).sum() / max((written | (truth == label)).sum(), 1))
        if label < args.clicks + 1:
            widget.commit()
    print(
        f"{args.model}: first click of the session ({'decode: loaded and encoded ahead' if args.look else 'load + encode + decode'}) {first * 1000:.0f} ms; "
        f"{len(first_ms)} objects: first click median {np.median(first_ms):.0f} ms "
        f"(max {max(first_ms):.0f}), refining click median {np.median(refine_ms):.0f} ms "
        f"(max {max(refine_ms):.0f}) (torch threads {threads}, {os.cpu_count()} CPUs); "
        f"labels written after the two clicks: IoU median {np.median(ious):.3f} "
        f"(min {min(ious):.3f})"
    )
    _finish(viewer, app, args.screenshot)


def _finish(viewer, app, screenshot: str | None) -> None:
    """Save the screenshot (after letting the viewer repaint) and close the viewer."""
    if screenshot:
        for _ in range(20):
            app.processEvents()
        viewer.screenshot(screenshot, canvas_only=False)
        print(f"wrote {screenshot}")
    viewer.close()


def run_3d(viewer, widget, truth, wait, app, look, args) -> None:
    """Click one nucleus on its largest plane, propagate, and compare with the ground truth."""
    label = int(np.argmax(np.bincount(truth.ravel())[1:])) + 1  # the largest nucleus
    obj = truth == label
    plane = int(np.argmax(obj.sum(axis=(1, 2))))
    rows, cols = np.nonzero(obj[plane])
    viewer.dims.set_point(0, plane * viewer.layers[0].scale[0])
    look(plane)
    start = time.perf_counter()
    widget.add_click(plane, int(np.median(rows)), int(np.median(cols)))
    wait()
    first = time.perf_counter() - start
    start = time.perf_counter()
    widget.propagate()
    wait()
    seconds = time.perf_counter() - start
    got = widget.labels.data == widget.labels.data[plane, int(np.median(rows)), int(np.median(cols))]
    spanned = np.flatnonzero(obj.any(axis=(1, 2)))
    filled = np.flatnonzero(got.any(axis=(1, 2)))
    iou3d = (got & obj).sum() / max((got | obj).sum(), 1)
    print(f"{args.model}: nucleus {label} spans planes {spanned.min()}-{spanned.max()}; one click on "
          f"plane {plane} ({first * 1000:.0f} ms {'after encoding ahead' if args.look else 'incl. load and encode'}), Propagate filled planes "
          f"{filled.min() if filled.size else '-'}-{filled.max() if filled.size else '-'} in "
          f"{seconds:.1f} s; 3-D IoU {iou3d:.3f}")
    for z in spanned:
        inter, union = (got[z] & obj[z]).sum(), (got[z] | obj[z]).sum()
        print(f"  plane {z:2d}: truth {obj[z].sum():4d} px, labels {got[z].sum():4d} px, IoU {inter / union:.2f}")
    _finish(viewer, app, args.screenshot)


if __name__ == "__main__":
    main()
