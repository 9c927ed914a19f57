"""Write the tuning sets used to choose decoders and predictor settings (never data/eval).

    python benchmarks/make_tuning_sets.py /tmp/tune

Fifteen sets in the evaluation tool's layout (``NAME/images``, ``NAME/masks``):

- ``nucs``: 8 generated images of small nuclei, ``synthetic_image(41000 + i,
  size_range=(256, 256), diameter_range=(30, 70), kind="nuclei")``
  (about 110 px per nucleus; evaluate with ``--max-objects 4``);
- ``nucsmall``: 8 generated images of tiny nuclei, ``synthetic_image(46000 + i,
  size_range=(256, 256), diameter_range=(16, 40), kind="nuclei")`` (about 20-50 px per
  nucleus, 4-8 px across; ``--max-objects 4``): the zoom-in on small objects;
- ``nuc256``: 6 generated images of dense nuclei, ``synthetic_image(40000 + i,
  size_range=(256, 256), diameter_range=(60, 140), kind="nuclei")``
  (``--max-objects 5``);
- ``nucs_green``: the images of ``nucs`` in the green channel of an RGB image
  (red and blue black), as a one-stain fluorescence composite exported from an
  image viewer (``--max-objects 4``): fluorescence composites are not blended with SAM;
- ``nucs_rgb``: the images of ``nucs`` in blue with generated membranes in green and
  other nuclei in red (``synthetic_image(43000 + i, kind="cells")`` and ``(44000 + i,
  kind="nuclei")``, :func:`~napari_inter2former.training.synthetic.stain_composite`): a
  three-stain composite, which leaves no channel black; the objects are those of ``nucs``
  (``--max-objects 4``);
- ``nucbig``: 2 large generated images of small nuclei, ``synthetic_image(52000 + i,
  size_range=(2048, 2048), diameter_range=(12, 20), kind="nuclei")`` (25-55 px per
  nucleus at the image's resolution; ``--max-objects 8``): the tiles of large images;
- ``nuc256_noisy``: the images of ``nuc256`` with strong shot noise (each stretched to
  0..1, plus 0.1, times 4-10 photons, drawn from a Poisson law, scaled to 0..255;
  noise level about 0.15 of the range; ``--max-objects 5``);
- ``nuc100_noisy``: two 100-px crops of each ``nuc256_noisy`` image (12 images that the
  network input enlarges 10 times, as PlantSeg's planes; ``--max-objects 3``): the
  smoothing of noisy small images;
- ``nucfaint``: 16 generated images of small nuclei, a third to a half of them faint,
  ``synthetic_image(47000 + i, size_range=(256, 256), diameter_range=(16, 60),
  kind="nuclei", dim_share=(0.3, 0.5), dim_brightness=(0.02, 0.1))``; the masks hold only
  the faint nuclei (of at least 16 px) whose mean stands out of a ring 2-4 px around them
  by 2.5 times the ring's standard deviation (66 nuclei; ``--max-objects 4``, 28 objects):
  the stretch of faint objects' zoom crops;
- ``nucsmall_dim``: the images of ``nucsmall``, the masks holding only the nuclei whose first
  click (the deepest point) lies less than 0.075 of white above the 1st percentile of a
  crop 8 times their size (at least 96 px) around it, as uint8 (99 nuclei, bright-field-like
  inverted images included; ``--max-objects 4``, 22 objects);
- ``nuc1135``: the training volume ``train/plantseg/nuclei_1135`` (2-D: each nucleus on
  its largest plane; ``--max-objects 20``);
- ``coco25``: every 33rd image of ``train/coco_mval`` (25 natural images, one object each);
- ``coco100``: every 8th image from the 5th on, less those of ``coco25`` (97 natural
  images): colour-image settings;
- ``cocobig``: large objects like those of GrabCut: of the ``train/coco_mval`` images
  outside ``coco25``, ``coco100`` and every 4th from the 3rd on (the 200 photographs of
  ``benchmarks/sam_agreement.py``), the first of each photograph whose object covers at
  least 15 % of the image (150), every 3rd (50 natural images);
- ``blobs``: the training image ``train/bian/blobs`` (63 small blobs of ~500 px, 254x256;
  all objects).

The synthetic seeds lie outside the training generator's range. Then, for example:

    inter2former-eval /tmp/tune/nucs --model default --max-objects 4 --max-clicks 12 --threads 1
"""

import argparse
import shutil
from pathlib import Path

import numpy as np
import tifffile

from napari_inter2former.evaluation.clicker import next_click
from napari_inter2former.evaluation.datasets import normalize_intensity, read_array
from napari_inter2former.training.data import coco_image_id
from napari_inter2former.training.synthetic import shot_noise, stain_composite, synthetic_image

GENERATED = {
    "nucs": dict(seed=41000, count=8, diameter_range=(30, 70)),
    "nucs_green": dict(seed=41000, count=8, diameter_range=(30, 70), green=True),
    "nucs_rgb": dict(seed=41000, count=8, diameter_range=(30, 70), stains=True),
    "nucsmall": dict(seed=46000, count=8, diameter_range=(16, 40)),
    "nuc256": dict(seed=40000, count=6, diameter_range=(60, 140)),
    "nucbig": dict(seed=52000, count=2, diameter_range=(12, 20), size=2048),
}


def write_generated(
    out: Path, name: str, seed: int, count: int, diameter_range, size: int = 256, green: bool = False,
    stains: bool = False,
) -> None:
    for sub in ("images", "masks"):
        (out / name / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        sample = synthetic_image(
            seed + i, size_range=(size, size), diameter_range=diameter_range, kind="nuclei"
        )
        stem = f"{name}_{i:02d}.tif"
        image, labels = sample.image, sample.labels
        if green:
            image = np.zeros((*image.shape, 3), np.uint8)
            image[..., 1] = normalize_intensity(sample.image)
        if stains:
            others = [
                synthetic_image(s + i, size_range=(size, size), kind=kind).image
                for s, kind in ((43000, "cells"), (44000, "nuclei"))
            ]
            rows = min(a.shape[0] for a in (image, *others))
            cols = min(a.shape[1] for a in (image, *others))
            image = stain_composite(
                [a[:rows, :cols] for a in (image, *others)], ((0, 0, 1), (0, 1, 0), (1, 0, 0))
            )
            labels = labels[:rows, :cols]
        tifffile.imwrite(out / name / "images" / stem, image)
        tifffile.imwrite(out / name / "masks" / stem, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to write the sets into")
    parser.add_argument("--data-root", default="../shared/data", help="folder holding train/")
    args = parser.parse_args()
    out = Path(args.out)
    for name, spec in GENERATED.items():
        write_generated(out, name, **spec)
    write_noisy(out / "nuc256", out / "nuc256_noisy", seed=48000)
    write_crops(out / "nuc256_noisy", out / "nuc100_noisy", side=100, corners=((20, 20), (136, 136)))
    write_faint(out / "nucfaint", seed=47000, count=16)
    write_dim_objects(out / "nucsmall", out / "nucsmall_dim")
    train = Path(args.data_root) / "train"
    copy_pairs(train / "plantseg", out / "nuc1135", ["nuclei_1135"])
    stems = sorted(p.stem for p in (train / "coco_mval" / "images").iterdir())
    copy_pairs(train / "coco_mval", out / "coco25", stems[::33])
    copy_pairs(train / "coco_mval", out / "coco100", [s for s in stems[4::8] if s not in stems[::33]])
    copy_pairs(train / "coco_mval", out / "cocobig", large_objects(
        train / "coco_mval", stems, set(stems[::33]) | set(stems[4::8]) | set(stems[2::4]))[::3])
    copy_pairs(train / "bian", out / "blobs", ["blobs"])
    names = [*GENERATED, "nuc256_noisy", "nuc100_noisy", "nucfaint", "nucsmall_dim", "nuc1135", "coco25", "coco100", "cocobig", "blobs"]
    print(f"wrote {', '.join(names)} under {out}")


def write_noisy(source: Path, target: Path, seed: int, photons=(4.0, 10.0)) -> None:
    """``source``'s images with shot noise of a few photons per pixel (masks copied)."""
    rng = np.random.default_rng(seed)
    for sub in ("images", "masks"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    for path in sorted((source / "images").iterdir()):
        noisy = shot_noise(read_array(path), rng.uniform(*photons), rng)
        tifffile.imwrite(target / "images" / path.name, noisy)
        shutil.copyfile(source / "masks" / path.name, target / "masks" / path.name)


def write_crops(source: Path, target: Path, side: int, corners) -> None:
    """Square crops of ``source``'s images at ``corners`` (top, left), labels renumbered."""
    from skimage.segmentation import relabel_sequential

    for sub in ("images", "masks"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    for k, path in enumerate(sorted((source / "images").iterdir())):
        image = read_array(path)
        labels = read_array(source / "masks" / path.name)
        for j, (top, left) in enumerate(corners):
            window = np.s_[top : top + side, left : left + side]
            name = f"{target.name}_{k}{j}.tif"
            tifffile.imwrite(target / "images" / name, image[window])
            tifffile.imwrite(target / "masks" / name, relabel_sequential(labels[window])[0].astype(np.uint16))


def write_faint(target: Path, seed: int, count: int, min_cnr: float = 2.5) -> None:
    """Generated images of nuclei, many faint; the masks hold the faint ones that stand out."""
    from scipy import ndimage as ndi

    for sub in ("images", "masks"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        sample = synthetic_image(
            seed + i, size_range=(256, 256), diameter_range=(16, 60), kind="nuclei",
            dim_share=(0.3, 0.5), dim_brightness=(0.02, 0.1),
        )
        image, labels = sample.image.astype(float), sample.labels
        sign = -1 if sample.meta["inverted"] else 1
        keep = []
        for label in sample.meta["dim_labels"]:
            nucleus = labels == label
            ring = ndi.binary_dilation(nucleus, iterations=4) & ~ndi.binary_dilation(nucleus, iterations=1)
            ring &= labels == 0
            if nucleus.sum() < 16 or ring.sum() < 10:
                continue
            if sign * (image[nucleus].mean() - image[ring].mean()) >= min_cnr * (image[ring].std() + 1e-9):
                keep.append(label)
        name = f"faint_{i:02d}.tif"
        tifffile.imwrite(target / "images" / name, sample.image)
        tifffile.imwrite(target / "masks" / name, np.where(np.isin(labels, keep), labels, 0).astype(np.int32))


def write_dim_objects(source: Path, target: Path, faint: float = 0.075) -> None:
    """``source``'s images; the masks hold the objects whose deepest point lies less than
    ``faint`` of white above the 1st percentile of a crop 8 times their size around it."""
    for sub in ("images", "masks"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    for path in sorted((source / "images").iterdir()):
        image = read_array(path)
        grey = normalize_intensity(image).astype(float)
        labels = read_array(source / "masks" / path.name)
        keep = []
        for label in np.unique(labels)[1:]:
            nucleus = labels == label
            if nucleus.sum() < 16:
                continue
            first = next_click(nucleus, None)  # the protocol's first click: the deepest point
            row, col = int(first.row), int(first.col)
            rows, cols = np.nonzero(nucleus)
            side = max(8 * (max(np.ptp(rows), np.ptp(cols)) + 1), 96)
            if side > 0.6 * max(grey.shape):
                continue
            top = int(max(0, min(row - side // 2, grey.shape[0] - side)))
            left = int(max(0, min(col - side // 2, grey.shape[1] - side)))
            crop = grey[top : top + side, left : left + side]
            spot = np.median(grey[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2])
            if 0 < spot - np.percentile(crop, 1) < faint * 255:
                keep.append(label)
        tifffile.imwrite(target / "images" / path.name, image)
        tifffile.imwrite(target / "masks" / path.name, np.where(np.isin(labels, keep), labels, 0).astype(np.int32))


def large_objects(source: Path, stems: list[str], exclude: set[str], fraction: float = 0.15) -> list[str]:
    """The first stem of each photograph whose object covers ``fraction`` of the image or more."""
    masks = {p.stem: p for p in (source / "masks").iterdir()}
    photographs, found = set(), []
    for stem in stems:
        photograph = coco_image_id(stem)
        if stem in exclude or photograph in photographs:
            continue
        if (read_array(masks[stem]) > 0).mean() >= fraction:
            photographs.add(photograph)
            found.append(stem)
    return found


def copy_pairs(source: Path, target: Path, stems: list[str]) -> None:
    """Copy the image and mask files of ``stems`` from one set folder to another."""
    for sub in ("images", "masks"):
        (target / sub).mkdir(parents=True, exist_ok=True)
        files = {p.stem: p for p in (source / sub).iterdir()}
        for stem in stems:
            shutil.copyfile(files[stem], target / sub / files[stem].name)


if __name__ == "__main__":
    main()
