"""Image normalisation and the geometry between an image and the network grid.

Every coordinate is (row, col) in pixels of the array the caller passed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import IMAGE_SIZE, PERCENTILE_HIGH, PERCENTILE_LOW

__all__ = ["to_rgb_uint8", "robust_limits", "InputGeometry"]


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
