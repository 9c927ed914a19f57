"""First-click IoU of the blend on training photographs for several ``sam_agreement`` weights.

    python benchmarks/sam_agreement.py [--data-root ../shared/data] [--start 2] [--step 4]
        [--weights 0,0.1,0.2,0.3,0.5,1,100] [--threads 1]

On an object's first click SAM's mask decoder offers three masks; the blend keeps the one with
the highest predicted IoU plus ``sam_agreement`` times its IoU with the Inter2Former decoder's
mask (``Predictor(sam_agreement=...)``; 0 is SAM's own rule). For every ``step``-th photograph
of ``train/coco_mval`` from the ``start``-th on (default: 200 photographs, none of the tuning
set ``coco100`` of ``make_tuning_sets.py``, six of ``coco25``), one encoding per image, the
evaluation's first click (the object's deepest point) under each weight; prints the mean IoU
and the share of objects at 85 / 90 %. About 8 s per image on one core.
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from napari_inter2former.evaluation.clicker import Clicker
from napari_inter2former.evaluation.datasets import list_pairs, load_sample, object_views_2d
from napari_inter2former.evaluation.metrics import iou
from napari_inter2former.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--start", type=int, default=2)
    parser.add_argument("--step", type=int, default=4)
    parser.add_argument("--weights", default="0,0.1,0.2,0.3,0.5,1,100")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    weights = [float(w) for w in args.weights.split(",")]
    predictor = Predictor.from_pretrained()
    pairs = list_pairs(args.data_root / "train" / "coco_mval")[args.start :: args.step]
    ious = {w: [] for w in weights}
    blended = 0
    for stem, image_path, mask_path in tqdm(pairs, desc="photographs"):
        sample = load_sample(stem, image_path, mask_path)
        predictor.set_image(sample.image, channel_axis=-1 if sample.image.ndim == 3 else None)
        blended += predictor._blends_sam()
        for view in object_views_2d(sample)[0]:
            click = Clicker(view.gt, ignore=view.ignore).make_next_click(np.zeros_like(view.gt))
            for w in weights:
                predictor.sam_agreement = w
                predictor.reset()
                mask = predictor.add_click(click.row, click.col, click.positive)
                ious[w].append(iou(mask, view.gt, view.ignore))
    print(f"{len(pairs)} photographs ({blended} blended), {len(ious[weights[0]])} objects, first click:")
    for w in weights:
        v = np.asarray(ious[w])
        print(f"sam_agreement {w:6g}: mean IoU {v.mean():.3f}, at 85 % {np.mean(v >= 0.85):.3f}, "
              f"at 90 % {np.mean(v >= 0.9):.3f}")


if __name__ == "__main__":
    main()
