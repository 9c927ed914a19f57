"""Image normalisation and the geometry between an image and the network grid.

Every coordinate is (row, col) in pixels of the array the caller passed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import IMAGE_SIZE, PERCENTILE_HIGH, PERCENTILE_LOW

__all__ = ["to_rgb_uint8", "robust_limits", "noise_level", "SmoothNoisy", "InputGeometry"]


def robust_limits(data: np.ndarray) -> tuple[float, float]:
    """Intensities at the 1st and 99.8th percentiles of the finite values of ``data``.

    Falls back to the full range for a nearly constant array.

    Raises
    ------
    ValueError
        If ``data`` holds no finite value.
    """
    data = np.asarray(data)
    if np.issubdtype(data.dtype, np.floating):
        data = data[np.isfinite(data)]
    if data.size == 0:
        raise ValueError("image holds no finite value (all NaN or inf)")
    low, high = np.percentile(data, [PERCENTILE_LOW, PERCENTILE_HIGH])
    if high <= low:
        low, high = data.min(), data.max()
    return float(low), float(high)


def to_rgb_uint8(
    image: np.ndarray,
    *,
    channel_axis: int | None = None,
    contrast_limits: tuple[float, float] | None = None,
) -> np.ndarray:
    """Convert a 2-D grey or RGB image of any dtype to an RGB uint8 array.

    Parameters
    ----------
    image : ndarray of shape (M, N) or (M, N, C)
        Grey image, or an image with ``C`` in {1, 3, 4} channels along
        ``channel_axis``. Any real dtype (uint8, uint16, float ...).
    channel_axis : int, optional
        Axis holding the channels; ``None`` means grey.
    contrast_limits : (float, float), optional
        Intensities mapped to 0 and 255. By default uint8 images are used as
        they are and other dtypes are stretched between their 1st and 99.8th
        percentiles (NaNs ignored).

    Returns
    -------
    ndarray of shape (M, N, 3), uint8

    Raises
    ------
    ValueError
        If the image is empty, has the wrong number of dimensions or
        channels, is not numeric, or holds no finite value.
    """
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"image must hold real numbers, got dtype {image.dtype}")
    if channel_axis is not None:
        if image.ndim != 3:
            raise ValueError(
                f"an image with channel_axis={channel_axis} must be 3-D (M, N, C), "
                f"got shape {image.shape}"
            )
        image = np.moveaxis(image, channel_axis, -1)
        if image.shape[-1] not in (1, 3, 4):
            raise ValueError(f"expected 1, 3 or 4 channels, got {image.shape[-1]}")
        image = image[..., :3]
    elif image.ndim != 2:
        raise ValueError(
            f"expected a 2-D grey image (M, N); got shape {image.shape}. "
            "Pass channel_axis for RGB images, or take one slice of a volume."
        )
    if image.size == 0 or min(image.shape[:2]) == 0:
        raise ValueError(f"image is empty (shape {image.shape})")

    if contrast_limits is not None:
        low, high = (float(v) for v in contrast_limits)
    elif image.dtype == np.uint8:
        low, high = 0.0, 255.0
    else:
        low, high = robust_limits(image)
    if image.dtype == np.uint8 and (low, high) == (0.0, 255.0):
        out = image
    else:
        scaled = (image.astype(np.float32) - low) / max(high - low, 1e-12)
        scaled = np.nan_to_num(scaled, nan=0.0, posinf=1.0, neginf=0.0)
        out = np.clip(np.round(scaled * 255.0), 0, 255).astype(np.uint8)
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    elif out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out)


# Immerkaer's operator: the difference of two Laplacians, blind to a linear ramp
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)


def noise_level(grey: np.ndarray) -> float:
    """Standard deviation of a grey image's pixel noise, as a share of its intensity range.

    Immerkaer's estimate (Computer Vision and Image Understanding 64, 1996)
    of white Gaussian noise, on the image stretched between its 1st and 99th
    percentiles: about 0.02 for a clean fluorescence image, above 0.1 where
    single pixels jump by a tenth of the range.

    Parameters
    ----------
    grey : ndarray of shape (M, N)

    Returns
    -------
    float
        0 for an image under 3 x 3 pixels or of constant intensity.
    """
    from scipy import ndimage as ndi

    grey = np.asarray(grey, dtype=np.float64)
    if grey.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {grey.shape}")
    if min(grey.shape) < 3:
        return 0.0
    low, high = np.percentile(grey, [1, 99])
    if high <= low:
        return 0.0
    response = ndi.convolve((grey - low) / (high - low), _NOISE_KERNEL)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(response).mean() / 6)


@dataclass(frozen=True)
class SmoothNoisy:
    """Gaussian smoothing of noisy grey images that the network input magnifies.

    Resized to the network input, a small image's pixel noise becomes blotches
    several pixels wide that the encoder takes for texture, and a faint
    nucleus is seen only where it is brightest. Where the noise is high and
    the image is enlarged at least ``min_upscale`` times, the image is
    smoothed before anything else sees it.

    Parameters
    ----------
    threshold : float
        Smooth images whose :func:`noise_level` exceeds this.
    min_upscale : float
        ... and whose longest side the network input enlarges at least this
        many times (``size`` / longest side).
    sigma : float
        Gaussian standard deviation in image pixels.
    """

    threshold: float = 0.1
    min_upscale: float = 8.0
    sigma: float = 2.0

    def __post_init__(self) -> None:
        if not self.threshold >= 0:
            raise ValueError(f"threshold must be >= 0, got {self.threshold}")
        if not self.min_upscale > 0:
            raise ValueError(f"min_upscale must be > 0, got {self.min_upscale}")
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")

    def applies(self, grey: np.ndarray, size: int = IMAGE_SIZE) -> bool:
        """Whether ``grey`` (M, N) is smoothed on a network input of side ``size``."""
        if size / max(grey.shape[:2]) < self.min_upscale:
            return False
        return noise_level(grey) > self.threshold

    def __call__(self, rgb: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
        """``rgb`` (M, N, 3) uint8 of a grey image, smoothed where :meth:`applies`."""
        grey = rgb[..., 0]
        if not self.applies(grey, size):
            return rgb
        from scipy import ndimage as ndi

        smooth = ndi.gaussian_filter(grey.astype(np.float32), self.sigma)
        smooth = np.clip(np.round(smooth), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(smooth[:, :, None], 3, axis=2))


@dataclass(frozen=True)
class InputGeometry:
    """How an (M, N) image sits on the square network grid.

    The longest side is scaled to ``size``; the image occupies the top-left
    ``(resized_rows, resized_cols)`` corner and the rest is padding.
    """

    rows: int
    cols: int
    size: int = IMAGE_SIZE

    @property
    def scale(self) -> float:
        return self.size / max(self.rows, self.cols)

    @property
    def resized_shape(self) -> tuple[int, int]:
        return (
            max(1, min(self.size, int(round(self.rows * self.scale)))),
            max(1, min(self.size, int(round(self.cols * self.scale)))),
        )

    def to_grid(self, row: float, col: float) -> tuple[int, int]:
        """Map an image pixel (row, col) to the network grid (pixel centres)."""
        gr = int((row + 0.5) * self.scale)
        gc = int((col + 0.5) * self.scale)
        rr, rc = self.resized_shape
        return min(gr, rr - 1), min(gc, rc - 1)

    def contains(self, row: float, col: float) -> bool:
        return 0 <= row < self.rows and 0 <= col < self.cols
