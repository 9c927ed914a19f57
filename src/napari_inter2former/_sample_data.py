"""Small synthetic nuclei images for the napari sample-data menu and the demo.

Generated on the fly from a fixed seed (no files): blurred, noisy ellipses
with uneven brightness, like a fluorescence nuclear stain.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["nuclei_2d", "nuclei_3d", "sample_nuclei_2d", "sample_nuclei_3d"]


def _nuclei(shape, n, radius, seed):
    """Float image and label volume of ``n`` non-touching ellipsoids in ``shape``."""
    rng = np.random.default_rng(seed)
    ndim = len(shape)
    labels = np.zeros(shape, np.uint16)
    brightness = np.zeros(shape, np.float32)
    label = 0
    for _ in range(n * 20):
        if label == n:
            break
        radii = rng.uniform(0.7, 1.3, ndim) * radius
        if ndim == 3:
            radii[0] *= 0.6  # flatter along the plane axis
        centre = [rng.uniform(r + 1, s - r - 2) for r, s in zip(radii, shape)]
        # work in the bounding box (with a 2-pixel margin) of the ellipsoid
        lo = [max(0, int(c - r) - 2) for c, r in zip(centre, radii)]
        hi = [min(s, int(c + r) + 4) for c, r, s in zip(centre, radii, shape)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        grid = np.ogrid[tuple(slice(a, b) for a, b in zip(lo, hi))]
        dist = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii))
        inside = dist <= 1
        if (labels[box][ndi.binary_dilation(inside, iterations=2)] != 0).any():
            continue
        label += 1
        labels[box][inside] = label
        texture = 1 + 0.15 * rng.standard_normal(inside.shape).astype(np.float32)
        brightness[box][inside] = (rng.uniform(0.5, 1.0) * texture)[inside]
    return brightness, labels


def _render(brightness, seed, sigma):
    rng = np.random.default_rng(seed + 1)
    image = ndi.gaussian_filter(brightness, sigma)
    image = 300 + 3000 * image  # camera offset and signal
    image = rng.poisson(np.clip(image, 0, None)).astype(np.float32)
    image += rng.normal(0, 30, image.shape)
    return np.clip(image, 0, 65535).astype(np.uint16)


def nuclei_2d(shape=(256, 256), n: int = 40, seed: int = 0):
    """A 2-D nuclei image and its ground-truth labels.

    Returns
    -------
    image : ndarray of shape (M, N), uint16
    labels : ndarray of shape (M, N), uint16
    """
    brightness, labels = _nuclei(shape, n, radius=10, seed=seed)
    return _render(brightness, seed, sigma=1.5), labels


def nuclei_3d(shape=(32, 128, 128), n: int = 12, seed: int = 0):
    """A 3-D nuclei stack (planes, rows, cols) and its ground-truth labels.

    Returns
    -------
    image : ndarray of shape (P, M, N), uint16
    labels : ndarray of shape (P, M, N), uint16
    """
    brightness, labels = _nuclei(shape, n, radius=13, seed=seed)
    return _render(brightness, seed, sigma=(1.0, 1.5, 1.5)), labels


def sample_nuclei_2d():
    """napari sample data: 2-D nuclei (256 x 256, uint16)."""
    image, _ = nuclei_2d()
    return [(image, {"name": "nuclei 2d", "colormap": "gray"}, "image")]


def sample_nuclei_3d():
    """napari sample data: 3-D nuclei (32 x 128 x 128, uint16; planes 2x the pixel size)."""
    image, _ = nuclei_3d()
    return [(image, {"name": "nuclei 3d", "colormap": "gray", "scale": (2.0, 1.0, 1.0)}, "image")]
