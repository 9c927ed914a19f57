"""Image normalisation and the geometry between an image and the network grid.

Every coordinate is (row, col) in pixels of the array the caller passed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import IMAGE_SIZE, PERCENTILE_HIGH, PERCENTILE_LOW

__all__ = [
    "to_rgb_uint8", "robust_limits", "noise_level", "SmoothNoisy", "StretchToClick", "InputGeometry",
]


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
    return _immerkaer(np.abs(ndi.convolve((grey - low) / (high - low), _NOISE_KERNEL)[1:-1, 1:-1]))


def _immerkaer(response: np.ndarray) -> float:
    """Noise standard deviation from the absolute responses to :data:`_NOISE_KERNEL`."""
    return float(np.sqrt(np.pi / 2) * response.mean() / 6)


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


def _background_noise(grey: np.ndarray, ceiling: float) -> float:
    """Pixel noise (standard deviation, grey levels) of ``grey`` (M, N) away from objects
    brighter than ``ceiling``: where a pixel's 3 x 3 neighbourhood stays under it
    (Immerkaer's estimate, as :func:`noise_level`)."""
    from scipy import ndimage as ndi

    grey = np.asarray(grey, dtype=np.float64)
    if min(grey.shape) < 3:
        return 0.0
    response = np.abs(ndi.convolve(grey, _NOISE_KERNEL))[1:-1, 1:-1]
    flat = (ndi.maximum_filter(grey, size=3) < ceiling)[1:-1, 1:-1]
    return _immerkaer(response[flat]) if flat.any() else 0.0


@dataclass(frozen=True)
class StretchToClick:
    """Contrast of a grey crop stretched to the brightness of a faint clicked object.

    Stretched between its own percentiles, an image with bright nuclei leaves a
    faint one a few grey levels above the background, which the encoder does
    not see. In a crop around such an object (a zoom crop), the background
    (the crop's ``low`` percentile: the median, as a small object's crop is
    mostly background) is mapped to black and the clicked spot to ``level`` of
    white; brighter objects saturate. Objects darker than the background (e.g.
    brightfield) and crops where most pixels are brighter than the click are
    left as they are.

    Parameters
    ----------
    level : float
        Brightness of the clicked spot after stretching, as a share of white.
    faint : float
        Stretch only where the clicked spot lies less than this share of white
        above the background (visible objects stay as they are).
    min_contrast : float
        ... and at least this many grey levels above it ...
    min_snr : float
        ... and at least this many times the background's pixel noise (the
        standard deviation, estimated as in :func:`noise_level` away from
        visible objects): in a crop of pure noise a click's spot stands out by chance.
    low : float
        Percentile of the crop taken for the background.
    radius : int
        The clicked spot: the median of the (2 radius + 1)² pixels around the click.
    sigma : float
        Gaussian smoothing (pixels) of a stretched crop, against the pixel noise
        the stretch amplifies; 0 for none.
    """

    level: float = 0.6
    faint: float = 0.075
    min_contrast: float = 3.0
    min_snr: float = 1.0
    low: float = 50.0
    radius: int = 1
    sigma: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.level <= 1:
            raise ValueError(f"level must be in (0, 1], got {self.level}")
        if not 0 < self.faint < self.level:
            raise ValueError(f"faint must be in (0, level), got {self.faint}")
        if not 0 < self.min_contrast < self.faint * 255:
            raise ValueError(f"min_contrast must be in (0, faint x 255), got {self.min_contrast}")
        if not self.min_snr >= 0:
            raise ValueError(f"min_snr must not be negative, got {self.min_snr}")
        if not 0 <= self.low < 100:
            raise ValueError(f"low must be a percentile in [0, 100), got {self.low}")
        if not self.radius >= 0:
            raise ValueError(f"radius must not be negative, got {self.radius}")
        if not self.sigma >= 0:
            raise ValueError(f"sigma must not be negative, got {self.sigma}")

    def gain(self, grey: np.ndarray, row: int, col: int) -> float:
        """The factor :meth:`__call__` multiplies the contrast of ``grey`` (M, N) uint8 by (1: none)."""
        return self._gain_over(grey, row, col)[0]

    def _gain_over(self, grey: np.ndarray, row: int, col: int) -> tuple[float, float]:
        """(:meth:`gain`, the background it stretches from)."""
        grey = np.asarray(grey)
        r = self.radius
        spot = float(np.median(grey[max(row - r, 0) : row + r + 1, max(col - r, 0) : col + r + 1]))
        background = float(np.percentile(grey, self.low))
        contrast = spot - background
        if not self.min_contrast <= contrast < self.faint * 255:  # visible, noise or dark
            return 1.0, background
        if contrast < self.min_snr * _background_noise(grey, background + self.faint * 255):
            return 1.0, background
        return self.level * 255 / contrast, background

    def __call__(self, rgb: np.ndarray, row: int, col: int) -> np.ndarray:
        """``rgb`` (M, N, 3) uint8 of a grey image, stretched to the click at (``row``, ``col``)."""
        grey = rgb[..., 0]
        gain, background = self._gain_over(grey, row, col)
        if gain == 1.0:
            return rgb
        stretched = (grey.astype(np.float32) - background) * gain
        if self.sigma > 0:
            from scipy import ndimage as ndi

            stretched = ndi.gaussian_filter(stretched, self.sigma)
        out = np.clip(np.round(stretched), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(out[:, :, None], 3, axis=2))


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
