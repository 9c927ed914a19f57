"""Synthetic fluorescence-microscopy images with instance labels.

Two families of scenes:

- ``"nuclei"``: star-convex blobs (ellipses with a few radial harmonics) of varied
  size, elongation and density; neighbours may touch, and a shared pixel goes to
  the object whose centre is nearer (in each object's own normalised radius);
  optionally hollow (rim-stained) objects.
- ``"cells"``: a warped Voronoi tessellation of seed points inside a tissue
  region, rendered either as bright membranes on a dark interior (like a
  boundary stain) or as filled cytoplasm with dark borders.

Every scene then goes through the same acquisition model: per-object
brightness (some objects dim), internal texture, Gaussian blur (the point
spread function), uneven illumination and background, Poisson (shot) noise
and Gaussian read noise, optional contrast inversion, and quantisation to an
8-bit or a 16-bit range (16-bit images use only part of the range with a
camera offset, as real cameras do).

Object sizes are drawn at *network* resolution: an image of longest side
``L`` is resized to 1024 px by the model, so an object of diameter ``d`` px
appears as ``d * 1024 / L`` px. The generator draws that network diameter
log-uniformly in ``diameter_range`` and converts it back to image pixels.

>>> sample = synthetic_image(0)
>>> sample.image.dtype in (np.uint8, np.uint16)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from ..constants import IMAGE_SIZE

__all__ = ["KINDS", "SyntheticImage", "shot_noise", "stain_composite", "synthetic_image"]

KINDS = ("nuclei", "cells")
MIN_DIAMETER_PX = 5.0  # smallest object diameter in image pixels
DIM_SHARE = (0.0, 0.3)  # the share of dim objects in an image is drawn from this range
DIM_BRIGHTNESS = (0.2, 0.45)  # a dim object's brightness, as a share of a normal one's


@dataclass
class SyntheticImage:
    """One synthetic image and its instance labels.

    Attributes
    ----------
    image : ndarray of shape (M, N), uint8 or uint16
    labels : ndarray of shape (M, N), int32
        0 = background, 1..n = objects (sequential).
    meta : dict
        Parameters drawn for this image (kind, render mode, diameter, noise ...).
    """

    image: np.ndarray
    labels: np.ndarray
    meta: dict = field(default_factory=dict)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int], sigma: float
) -> np.ndarray:
    """Gaussian-filtered white noise with zero mean and unit standard deviation."""
    # filter a smaller field and zoom up when the correlation length is large (speed)
    factor = int(max(1, sigma // 4))
    small = (max(2, -(-shape[0] // factor)), max(2, -(-shape[1] // factor)))
    noise = ndi.gaussian_filter(rng.standard_normal(small), sigma / factor, mode="wrap")
    if factor > 1:
        noise = ndi.zoom(noise, factor, order=1, mode="nearest")[: shape[0], : shape[1]]
        if noise.shape != shape:  # zoom rounding
            noise = np.pad(
                noise,
                [(0, shape[0] - noise.shape[0]), (0, shape[1] - noise.shape[1])],
                mode="edge",
            )
    std = noise.std()
    return (noise - noise.mean()) / (std if std > 0 else 1.0)


def _nuclei_scene(
    rng: np.random.Generator, shape: tuple[int, int], diameter: float
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Star-convex blobs. Returns (labels int32, radial coordinate rho in [0, 1], meta)."""
    rows, cols = shape
    density = rng.uniform(0.05, 0.55)  # share of the area covered
    mean_area = np.pi * diameter**2 / 4.0
    count = int(np.clip(rng.poisson(density * rows * cols / mean_area), 1, 600))
    min_gap = rng.uniform(
        0.6, 1.05
    )  # centre distance / sum of radii: < 1 gives touching
    labels = np.zeros(shape, np.int32)
    rho_map = np.full(shape, np.inf, np.float32)
    centres: list[tuple[float, float, float]] = []
    placed = 0
    for _ in range(count * 4):
        if placed >= count:
            break
        radius = 0.5 * diameter * float(np.exp(rng.normal(0.0, 0.25)))
        radius = max(radius, MIN_DIAMETER_PX / 2)
        cy, cx = (
            rng.uniform(-0.3 * radius, rows + 0.3 * radius),
            rng.uniform(-0.3 * radius, cols + 0.3 * radius),
        )
        if any(
            (cy - y) ** 2 + (cx - x) ** 2 < (min_gap * (radius + r)) ** 2
            for y, x, r in centres
        ):
            continue
        elong = rng.uniform(1.0, 2.2)
        a, b = radius * np.sqrt(elong), radius / np.sqrt(elong)
        theta = rng.uniform(0, np.pi)
        harmonics = [
            (k, rng.uniform(0, 0.15) / k, rng.uniform(0, 2 * np.pi))
            for k in range(2, 6)
        ]
        reach = a * 1.5 + 2
        r0, r1 = int(max(cy - reach, 0)), int(min(cy + reach + 1, rows))
        c0, c1 = int(max(cx - reach, 0)), int(min(cx + reach + 1, cols))
        if r0 >= r1 or c0 >= c1:
            continue
        yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float32)
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(theta) + dy * np.sin(theta)) / a
        v = (-dx * np.sin(theta) + dy * np.cos(theta)) / b
        phi = np.arctan2(v, u)
        boundary = 1.0 + sum(amp * np.cos(k * phi + ph) for k, amp, ph in harmonics)
        rho = np.sqrt(u * u + v * v) / boundary
        inside = rho <= 1.0
        if not inside.any():
            continue
        placed += 1
        view_rho = rho_map[r0:r1, c0:c1]
        win = inside & (
            rho < view_rho
        )  # nearer in normalised radius wins shared pixels
        labels[r0:r1, c0:c1][win] = placed
        view_rho[win] = rho[win]
        centres.append((cy, cx, radius))
    rho_map[labels == 0] = 1.0
    meta = {"density": density, "min_gap": min_gap, "touching": min_gap < 1.0}
    return labels, np.minimum(rho_map, 1.0), meta


def _cells_scene(
    rng: np.random.Generator, shape: tuple[int, int], diameter: float
) -> tuple[np.ndarray, dict]:
    """Warped Voronoi tessellation inside a tissue region. Returns (labels, meta)."""
    rows, cols = shape
    mean_area = np.pi * diameter**2 / 4.0
    count = int(np.clip(rows * cols / mean_area * rng.uniform(0.8, 1.2), 2, 2000))
    seeds = np.zeros(shape, bool)
    ys = rng.integers(0, rows, count)
    xs = rng.integers(0, cols, count)
    seeds[ys, xs] = True
    ids = np.zeros(shape, np.int32)
    ids[ys, xs] = np.arange(1, count + 1)
    _, (iy, ix) = ndi.distance_transform_edt(~seeds, return_indices=True)
    voronoi = ids[iy, ix]
    # warp the tessellation so that borders curve
    amp = rng.uniform(0.0, 0.25) * diameter
    sigma = max(diameter / 2.0, 2.0)
    wy = _smooth_noise(rng, shape, sigma) * amp
    wx = _smooth_noise(rng, shape, sigma) * amp
    grid_y, grid_x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    labels = ndi.map_coordinates(
        voronoi, [grid_y + wy, grid_x + wx], order=0, mode="nearest"
    )
    # tissue region: everything, or a smooth blob covering part of the image
    if rng.random() < 0.5:
        tissue = _smooth_noise(rng, shape, max(rows, cols) / 6.0) > rng.uniform(
            -1.0, 0.3
        )
        labels = np.where(tissue, labels, 0)
    # split disconnected pieces of a cell (from warping or cropping): keep the largest
    labels = _keep_largest_components(labels)
    return labels.astype(np.int32), {"warp": amp}


def _keep_largest_components(labels: np.ndarray) -> np.ndarray:
    out = np.zeros_like(labels)
    for index, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        piece = labels[sl] == index
        comp, n = ndi.label(piece)
        if n > 1:
            sizes = np.bincount(comp.ravel())[1:]
            piece = comp == (1 + int(np.argmax(sizes)))
        out[sl][piece] = index
    return out


def _relabel_sequential(labels: np.ndarray) -> np.ndarray:
    present = np.unique(labels)
    present = present[present > 0]
    lut = np.zeros(int(labels.max()) + 1, np.int32)
    lut[present] = np.arange(1, len(present) + 1, dtype=np.int32)
    return lut[labels]


def _render(
    rng: np.random.Generator,
    kind: str,
    labels: np.ndarray,
    rho: np.ndarray | None,
    diameter: float,
    dim_share: tuple[float, float] = DIM_SHARE,
    dim_brightness: tuple[float, float] = DIM_BRIGHTNESS,
) -> tuple[np.ndarray, dict]:
    """Noise-free signal in arbitrary units (background about 0, objects about 1)."""
    shape = labels.shape
    n = int(labels.max())
    brightness = np.exp(rng.normal(0.0, 0.3, n + 1))
    dim_share = rng.uniform(*dim_share)
    dim = rng.random(n + 1) < dim_share
    brightness[dim] *= rng.uniform(*dim_brightness, int(dim.sum()))
    brightness[0] = 0.0
    texture_amp = rng.uniform(0.0, 0.5)
    texture = 1.0 + texture_amp * _smooth_noise(rng, shape, max(diameter / 8.0, 1.0))
    meta: dict = {"dim_share": dim_share, "texture": texture_amp}
    fg = labels > 0
    if kind == "nuclei":
        mode = "hollow" if rng.random() < 0.12 else "filled"
        if mode == "filled":
            falloff = rng.uniform(0.0, 0.6)
            profile = 1.0 - falloff * rho**2
        else:
            profile = 0.25 + 0.75 * rho**4
        signal = brightness[labels] * profile * np.clip(texture, 0.2, None)
    else:
        mode = "membrane" if rng.random() < 0.5 else "cytoplasm"
        width = max(1, int(round(rng.uniform(0.04, 0.12) * diameter)))
        # border pixels: a label change within `width` px
        grown = ndi.grey_dilation(labels, size=(2 * width + 1,) * 2)
        shrunk = -ndi.grey_dilation(-labels, size=(2 * width + 1,) * 2)
        border = (grown != shrunk) & (ndi.binary_dilation(fg, iterations=width))
        if mode == "membrane":
            signal = np.where(
                border,
                rng.uniform(0.7, 1.3),
                rng.uniform(0.0, 0.25) * brightness[labels],
            )
            signal = signal * np.clip(texture, 0.2, None)
        else:
            signal = brightness[labels] * np.clip(texture, 0.2, None)
            signal = np.where(border & fg, signal * rng.uniform(0.1, 0.6), signal)
    meta["mode"] = mode
    meta["dim_objects"] = int(dim[1:].sum())
    meta["dim_labels"] = [int(i) for i in np.flatnonzero(dim[1:]) + 1]
    return signal.astype(np.float32), meta


def _acquire(
    rng: np.random.Generator, signal: np.ndarray, diameter: float
) -> tuple[np.ndarray, dict]:
    """Blur, uneven illumination, noise and quantisation of a noise-free signal."""
    rows, cols = signal.shape
    blur = rng.uniform(0.0, min(0.12 * diameter, 3.0))
    if blur > 0.3:
        signal = ndi.gaussian_filter(signal, blur)
    large = max(rows, cols) / rng.uniform(2.0, 6.0)
    illumination = np.clip(
        1.0 + rng.uniform(0.0, 0.4) * _smooth_noise(rng, signal.shape, large), 0.3, None
    )
    background = rng.uniform(0.0, 0.3) + rng.uniform(0.0, 0.15) * _smooth_noise(
        rng, signal.shape, large
    )
    clean = np.clip(signal * illumination + np.clip(background, 0.0, None), 0.0, None)
    photons = _log_uniform(rng, 4.0, 800.0)  # photons at unit intensity (low = noisy)
    counts = rng.poisson(clean * photons).astype(np.float32)
    read_noise = rng.uniform(0.0, 0.06) * photons
    counts += (
        rng.normal(0.0, read_noise, counts.shape).astype(np.float32)
        if read_noise > 0
        else 0.0
    )
    invert = rng.random() < 0.08
    if invert:
        counts = counts.max() - counts
    bit16 = rng.random() < 0.5
    top = float(np.percentile(counts, 99.9)) or 1.0
    if bit16:
        offset = rng.uniform(0, 800)
        peak = _log_uniform(rng, 300.0, 60000.0)
        dtype, limit = np.uint16, 65535
    else:
        offset = rng.uniform(0, 20)
        peak = rng.uniform(60.0, 255.0)
        dtype, limit = np.uint8, 255
    image = offset + counts * ((peak - offset) / top)
    image = np.clip(np.round(image), 0, limit).astype(dtype)
    meta = {
        "blur": blur,
        "photons": photons,
        "read_noise": read_noise,
        "inverted": invert,
        "bit_depth": 16 if bit16 else 8,
    }
    return image, meta


def synthetic_image(
    seed: int | np.random.Generator,
    *,
    size_range: tuple[int, int] = (128, 1024),
    diameter_range: tuple[float, float] = (20.0, 400.0),
    kind: str | None = None,
    network_size: int = IMAGE_SIZE,
    dim_share: tuple[float, float] = DIM_SHARE,
    dim_brightness: tuple[float, float] = DIM_BRIGHTNESS,
) -> SyntheticImage:
    """Draw one synthetic microscopy image with instance labels.

    Parameters
    ----------
    seed : int or numpy Generator
        Same seed, same image.
    size_range : (int, int)
        Range of the longest image side in pixels (drawn log-uniformly).
    diameter_range : (float, float)
        Range of the typical object diameter *at network resolution* (px after
        the longest side is resized to ``network_size``).
    kind : {'nuclei', 'cells'}, optional
        Scene family; drawn at random (60 % nuclei) when omitted.
    network_size : int
        Network input side the diameters refer to.
    dim_share : (float, float)
        Range the share of dim objects is drawn from (uniformly).
    dim_brightness : (float, float)
        Range of a dim object's brightness as a fraction of a normal one's.

    Returns
    -------
    SyntheticImage
        ``image`` (M, N) uint8 or uint16, ``labels`` (M, N) int32, ``meta``.

    Raises
    ------
    ValueError
        For an unknown kind or an empty or reversed range.
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not (0 < size_range[0] <= size_range[1]):
        raise ValueError(
            f"size_range must be (low, high) with 0 < low <= high, got {size_range}"
        )
    if not (0 < diameter_range[0] <= diameter_range[1]):
        raise ValueError(
            f"diameter_range must be (low, high) with 0 < low <= high, got {diameter_range}"
        )
    if not (0 <= dim_share[0] <= dim_share[1] <= 1):
        raise ValueError(f"dim_share must be (low, high) with 0 <= low <= high <= 1, got {dim_share}")
    if not (0 < dim_brightness[0] <= dim_brightness[1]):
        raise ValueError(
            f"dim_brightness must be (low, high) with 0 < low <= high, got {dim_brightness}"
        )
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if kind is None:
        kind = "nuclei" if rng.random() < 0.6 else "cells"
    longest = int(round(_log_uniform(rng, size_range[0], size_range[1] + 1e-9)))
    other = int(round(longest * rng.uniform(0.6, 1.0)))
    shape = (longest, other) if rng.random() < 0.5 else (other, longest)
    scale = network_size / longest
    net_diameter = _log_uniform(rng, *diameter_range)
    diameter = float(np.clip(net_diameter / scale, MIN_DIAMETER_PX, longest / 2.5))
    if kind == "nuclei":
        labels, rho, meta = _nuclei_scene(rng, shape, diameter)
    else:
        labels, meta = _cells_scene(rng, shape, diameter)
        rho = None
    labels = _relabel_sequential(labels)
    signal, render_meta = _render(rng, kind, labels, rho, diameter, dim_share, dim_brightness)
    image, acq_meta = _acquire(rng, signal, diameter)
    meta.update(render_meta)
    meta.update(acq_meta)
    meta.update(
        {
            "kind": kind,
            "shape": shape,
            "diameter_px": diameter,
            "network_diameter": diameter * scale,
            "num_objects": int(labels.max()),
        }
    )
    return SyntheticImage(image=image, labels=labels, meta=meta)


def shot_noise(image: np.ndarray, photons: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` as seen with a few photons per pixel: strong shot noise, uint8.

    The image is stretched to 0..1 between its 1st and 99.5th percentiles,
    raised by 0.1 (background light), multiplied by ``photons``, drawn from a
    Poisson law and scaled so that its brightest pixel is 255.

    Parameters
    ----------
    image : ndarray of shape (M, N)
    photons : float
        Expected photon count of a pixel at the top of the range (4-10: noise of
        about 0.15 of the range, :func:`~napari_inter2former.transforms.noise_level`).
    rng : numpy Generator

    Returns
    -------
    ndarray of shape (M, N), uint8
    """
    image = np.asarray(image, dtype=np.float64)
    low, high = np.percentile(image, [1, 99.5])
    signal = np.clip((image - low) / max(high - low, 1e-12), 0, 1)
    counts = rng.poisson((0.1 + signal) * photons).astype(np.float64)
    return np.clip(counts / max(counts.max(), 1.0) * 255, 0, 255).astype(np.uint8)


def stain_composite(stains, colours) -> np.ndarray:
    """An RGB composite of fluorescence channels, as an image viewer exports one.

    Parameters
    ----------
    stains : sequence of ndarray (M, N)
        One 2-D image per stain, of one shape; each is stretched between its 1st and
        99.8th percentiles (as the evaluation does) to [0, 255].
    colours : sequence of (r, g, b)
        Each stain's colour, components in [0, 1]; the channels add up (clipped at 255).

    Returns
    -------
    ndarray (M, N, 3), uint8
    """
    from ..evaluation.datasets import normalize_intensity

    rgb = np.zeros((*np.shape(stains[0]), 3))
    for stain, colour in zip(stains, colours):
        rgb += normalize_intensity(stain)[..., None] * np.asarray(colour, np.float64)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)
