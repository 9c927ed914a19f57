"""Per-click time of the shipped model on the 2-D sample: first click of an object vs a refining one.

    python benchmarks/first_click.py [--threads 2]

The first click of an object runs on a reference map that is UNKNOWN everywhere (every token
takes full attention, DPE and DLU see the whole image); the second click refines it.
Also prints the mean IoU of the first click against the sample's ground truth.
"""

import argparse
import time

import numpy as np
import torch
from scipy import ndimage as ndi

from napari_inter2former import Predictor
from napari_inter2former._sample_data import nuclei_2d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--objects", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    image, labels = nuclei_2d()
    predictor = Predictor.from_pretrained()
    predictor.set_image(image)
    first, second, ious = [], [], []
    for label in range(1, args.objects + 1):
        obj = labels == label
        depth = ndi.distance_transform_edt(np.pad(obj, 1))[1:-1, 1:-1]
        row, col = np.unravel_index(depth.argmax(), depth.shape)
        predictor.reset()
        start = time.perf_counter()
        mask = predictor.add_click(row, col)
        first.append(time.perf_counter() - start)
        ious.append((mask & obj).sum() / (mask | obj).sum())
        start = time.perf_counter()
        predictor.add_click(row + 1, col + 1)
        second.append(time.perf_counter() - start)
    print(
        f"threads {args.threads}, {args.objects} nuclei: first click median {np.median(first) * 1000:.0f} ms, "
        f"refining click median {np.median(second) * 1000:.0f} ms, mean IoU@1 {np.mean(ious):.3f}"
    )


if __name__ == "__main__":
    main()
