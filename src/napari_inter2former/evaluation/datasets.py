"""Evaluation sets on disk: ``DATASET_DIR/images/<stem>.*`` and ``masks/<stem>.*``.

A mask is either an instance label image (0 = background, every other value is
one object) or a binary mask whose object value is 255, where 128 marks pixels
to ignore (GrabCut). A mask with the same number of dimensions as a grey image
is a 2-D image; a 3-D mask (Z, Y, X) goes with a volume.

Intensities of grey images and volumes are stretched between the 1st and
99.8th percentiles of the whole image (whole volume) to uint8; RGB uint8
images are used as they are.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..transforms import robust_limits

__all__ = [
    "Sample",
    "ObjectView",
    "list_pairs",
    "read_array",
    "load_dataset",
    "normalize_intensity",
    "split_mask",
    "select_labels",
    "object_views_2d",
    "IGNORE_VALUE",
    "BINARY_OBJECT_VALUE",
]

IGNORE_VALUE = 128
BINARY_OBJECT_VALUE = 255
IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp"}


@dataclass
class Sample:
    """One image or volume with its mask.

    ``image`` is already normalised to uint8: (M, N), (M, N, 3) or (Z, M, N).
    ``labels`` holds one integer label per object (0 = background) and
    ``ignore`` the pixels no metric counts, or None.
    """

    stem: str
    image: np.ndarray
    labels: np.ndarray
    ignore: np.ndarray | None

    @property
    def is_volume(self) -> bool:
        return self.labels.ndim == 3


@dataclass
class ObjectView:
    """One object on one 2-D image: what a 2-D evaluation run sees.

    ``plane`` is the Z index for an object of a volume (its largest slice),
    None for a 2-D image. ``view_key`` identifies the 2-D image, so objects
    sharing it share one ``set_image`` call.
    """

    stem: str
    label: int
    plane: int | None
    image: np.ndarray
    gt: np.ndarray
    ignore: np.ndarray | None

    @property
    def view_key(self) -> tuple[str, int | None]:
        return (self.stem, self.plane)


def list_pairs(root: str | Path) -> list[tuple[str, Path, Path]]:
    """(stem, image path, mask path) for every image with a mask, sorted by stem.

    Raises
    ------
    ValueError
        If ``root`` lacks ``images/`` or ``masks/``, or no stem matches.
    """
    root = Path(root)
    images_dir, masks_dir = root / "images", root / "masks"
    if not images_dir.is_dir() or not masks_dir.is_dir():
        raise ValueError(f"{root} must contain the folders images/ and masks/")

    def by_stem(folder: Path) -> dict[str, Path]:
        return {
            p.stem: p
            for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        }

    images, masks = by_stem(images_dir), by_stem(masks_dir)
    stems = sorted(set(images) & set(masks))
    if not stems:
        raise ValueError(f"no image in {images_dir} has a mask with the same stem in {masks_dir}")
    return [(s, images[s], masks[s]) for s in stems]


def read_array(path: str | Path) -> np.ndarray:
    """Read a TIFF with tifffile, anything else with scikit-image."""
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        return np.asarray(tifffile.imread(path))
    from skimage import io

    return np.asarray(io.imread(path))


def normalize_intensity(image: np.ndarray, *, rgb: bool = False) -> np.ndarray:
    """Map an image or volume to uint8.

    Grey data (any number of dimensions) is stretched between the 1st and
    99.8th percentiles of the whole array; an RGB uint8 image is returned as
    is (other RGB dtypes are stretched over all channels together).
    """
    image = np.asarray(image)
    if rgb and image.dtype == np.uint8:
        return image
    data = image.astype(np.float64)
    low, high = robust_limits(data)
    scaled = (data - low) / max(high - low, 1e-12)
    scaled = np.nan_to_num(scaled, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(np.round(scaled * 255.0), 0, 255).astype(np.uint8)


def split_mask(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Label image and ignore region of a mask.

    A mask holding only the values {0, 128, 255} with some 255 is binary: the
    object is 255 (label 1) and 128 is ignored. Any other integer mask is an
    instance label image (every nonzero value an object, nothing ignored).

    Returns
    -------
    labels : ndarray of int32, the mask's shape
    ignore : ndarray of bool or None
    """
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return mask.astype(np.int32), None
    if not np.issubdtype(mask.dtype, np.integer):
        if not np.all(np.mod(mask, 1) == 0):
            raise ValueError(f"mask must hold integer labels, got dtype {mask.dtype}")
        mask = mask.astype(np.int64)
    values = set(np.unique(mask).tolist())
    if BINARY_OBJECT_VALUE in values and values <= {0, IGNORE_VALUE, BINARY_OBJECT_VALUE}:
        ignore = mask == IGNORE_VALUE
        labels = (mask == BINARY_OBJECT_VALUE).astype(np.int32)
        return labels, (ignore if ignore.any() else None)
    if mask.min() < 0:
        raise ValueError("mask labels must be >= 0")
    return mask.astype(np.int32), None


def _to_2d_mask(mask: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Drop a channel axis from an RGB(A) mask saved as a colour image."""
    if mask.ndim == 3 and mask.shape[-1] in (3, 4) and mask.shape[:2] == image.shape[:2]:
        return mask[..., 0]
    return mask


def load_sample(stem: str, image_path: Path, mask_path: Path) -> Sample:
    """Read and normalise one image (or volume) and its mask."""
    image = read_array(image_path)
    mask = _to_2d_mask(read_array(mask_path), image)
    is_rgb = image.ndim == 3 and mask.ndim == 2 and image.shape[-1] in (3, 4)
    if is_rgb:
        image = image[..., :3]
    if mask.ndim not in (2, 3):
        raise ValueError(f"{stem}: mask must be 2-D or 3-D, got shape {mask.shape}")
    if (image.shape[:2] if is_rgb else image.shape) != mask.shape:
        raise ValueError(
            f"{stem}: image of shape {image.shape} does not match mask of shape {mask.shape}"
        )
    labels, ignore = split_mask(mask)
    return Sample(stem, normalize_intensity(image, rgb=is_rgb), labels, ignore)


def load_dataset(root: str | Path) -> list[Sample]:
    """All samples of ``root`` (``images/`` and ``masks/`` with matching stems)."""
    return [load_sample(*pair) for pair in list_pairs(root)]


def select_labels(
    sizes: dict[int, int],
    *,
    min_size: int = 16,
    max_objects: int | None = None,
    seed: int = 0,
    stem: str = "",
) -> tuple[list[int], int]:
    """Objects to evaluate: drop those under ``min_size`` pixels, then sample.

    The sample is drawn with a generator seeded by ``seed`` and the stem, so
    each image's choice does not depend on the order images are visited.

    Returns
    -------
    labels : list of int, sorted
    n_skipped : int
        Objects dropped for their size (not those left out by the sample).
    """
    if max_objects is not None and max_objects < 1:
        raise ValueError(f"max_objects must be at least 1, got {max_objects}")
    kept = sorted(label for label, size in sizes.items() if size >= min_size)
    n_skipped = len(sizes) - len(kept)
    if max_objects is not None and len(kept) > max_objects:
        rng = np.random.default_rng([seed, zlib.crc32(stem.encode())])
        kept = sorted(rng.choice(kept, size=max_objects, replace=False).tolist())
    return [int(k) for k in kept], n_skipped


def object_views_2d(
    sample: Sample,
    *,
    min_size: int = 16,
    max_objects: int | None = None,
    seed: int = 0,
) -> tuple[list[ObjectView], int]:
    """The 2-D objects of a sample, ordered by image then label.

    An object of a volume is taken on the Z slice where its area is largest
    (first such slice on ties); ``min_size`` applies to that area.

    Returns
    -------
    views : list of ObjectView
    n_skipped : int
    """
    labels = sample.labels
    ids = np.unique(labels)
    ids = ids[ids != 0]
    if not sample.is_volume:
        counts = np.bincount(labels.ravel(), minlength=int(labels.max()) + 1)
        chosen, skipped = select_labels(
            {int(k): int(counts[k]) for k in ids},
            min_size=min_size, max_objects=max_objects, seed=seed, stem=sample.stem,
        )
        views = [
            ObjectView(sample.stem, k, None, sample.image, labels == k, sample.ignore)
            for k in chosen
        ]
        return views, skipped

    # per-slice areas of every label: (Z, n_labels)
    areas = np.stack([np.bincount(p.ravel(), minlength=int(labels.max()) + 1) for p in labels])
    best_plane = {int(k): int(np.argmax(areas[:, k])) for k in ids}
    sizes = {int(k): int(areas[best_plane[int(k)], k]) for k in ids}
    chosen, skipped = select_labels(
        sizes, min_size=min_size, max_objects=max_objects, seed=seed, stem=sample.stem
    )
    views = []
    for k in chosen:
        z = best_plane[k]
        ignore = None if sample.ignore is None else sample.ignore[z]
        views.append(ObjectView(sample.stem, k, z, sample.image[z], labels[z] == k, ignore))
    views.sort(key=lambda v: (v.plane, v.label))
    return views, skipped
