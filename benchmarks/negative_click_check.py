"""Does a negative click take false positives away? A check on generated nuclei images.

    python benchmarks/negative_click_check.py                       # shipped decoder
    python benchmarks/negative_click_check.py shipped runs/cpu-ft5/inter2former_decoder.safetensors

For every object whose second evaluation click (the evaluation tool's rule) is negative, the
state after click 1 is followed three ways: the negative click; the same click made positive;
and a repeat of click 1 (no new information: only the reference map's update by the first
prediction). A decoder that reads the click's sign removes the clicked false positive; one that
ignores it gives the same mask in all three. Printed per decoder: the number of such objects,
mean IoU after click 1 and after each variant, mean false-positive area after each variant
(relative to after click 1), and how often the pixel under the negative click is still
foreground. Images come from the training generator (`training/synthetic.py`, seeds 30000+),
never from data/eval.
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("decoders", nargs="*", default=["shipped"], help=".safetensors or 'shipped'")
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--objects", type=int, default=6, help="objects tried per image")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from napari_inter2former.evaluation.clicker import Clicker
    from napari_inter2former.evaluation.metrics import iou
    from napari_inter2former.model.build import build_model
    from napari_inter2former.predictor import Predictor
    from napari_inter2former.training.synthetic import synthetic_image

    samples = [
        synthetic_image(
            30000 + i, size_range=(256, 256), diameter_range=(96, 200), kind="nuclei"
        )
        for i in range(args.images)
    ]
    for name in args.decoders:
        model = build_model(
            "default", pretrained=True, decoder_weights=None if name == "shipped" else name
        )
        predictor = Predictor(model, num_threads=args.threads)
        rows = []
        for sample in samples:
            image = sample.image
            predictor.set_image(image, channel_axis=-1 if image.ndim == 3 else None)
            for label in np.unique(sample.labels)[1 : args.objects + 1]:
                gt = sample.labels == label
                predictor.reset()
                clicker = Clicker(gt)
                first = clicker.make_next_click(None)
                mask1 = predictor.add_click(first.row, first.col, True)
                second = clicker.make_next_click(mask1)
                if second is None or second.positive:
                    continue
                out = {}
                for variant in ("negative", "positive", "repeat"):
                    if variant == "repeat":
                        mask = predictor.add_click(first.row, first.col, True)
                    else:
                        mask = predictor.add_click(second.row, second.col, variant == "positive")
                    out[variant] = mask
                    predictor.undo_click()
                fp1 = max(int((mask1 & ~gt).sum()), 1)
                rows.append(
                    [iou(mask1, gt)]
                    + [iou(out[v], gt) for v in ("negative", "positive", "repeat")]
                    + [(out[v] & ~gt).sum() / fp1 for v in ("negative", "positive", "repeat")]
                    + [bool(out["negative"][int(second.row), int(second.col)])]
                )
        r = np.array(rows, float)
        print(f"\n{name}: {len(r)} objects with a negative 2nd click")
        if len(r):
            print(
                f"  mIoU after click 1 {r[:, 0].mean():.3f}; after click 2 negative "
                f"{r[:, 1].mean():.3f}, same click positive {r[:, 2].mean():.3f}, "
                f"click 1 repeated {r[:, 3].mean():.3f}"
            )
            print(
                f"  false-positive area vs after click 1: negative {r[:, 4].mean():.2f}, "
                f"positive {r[:, 5].mean():.2f}, repeated {r[:, 6].mean():.2f}; "
                f"clicked pixel still foreground in {r[:, 7].mean():.0%}"
            )


if __name__ == "__main__":
    main()
