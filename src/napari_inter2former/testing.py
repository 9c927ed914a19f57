"""A deterministic stand-in for the model, for tests of the widget, evaluation and volume logic.

:class:`FakePredictor` segments the bright connected region under a positive
click (Otsu threshold of the image), removes the region under a negative click,
and starts from a prior mask when given one. It needs no torch and no weights.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .predictor import BasePredictor, Click

__all__ = ["FakePredictor", "encoder_test_pattern", "sam_normalise"]


class FakePredictor(BasePredictor):
    """Threshold-and-flood-fill predictor with the same API as :class:`Predictor`.

    Parameters
    ----------
    disc_radius : int
        Radius of the disc added around a positive click on dark pixels.
    """

    model_id = "fake"

    def __init__(self, disc_radius: int = 3) -> None:
        super().__init__()
        self.disc_radius = disc_radius
        self.encode_calls = 0
        self._foreground: np.ndarray | None = None
        self._current: np.ndarray | None = None

    def _encode(self, rgb: np.ndarray) -> None:
        from skimage.filters import threshold_otsu

        self.encode_calls += 1
        grey = rgb.astype(np.float32).mean(axis=2)
        threshold = threshold_otsu(grey) if grey.max() > grey.min() else grey.max() + 1
        self._foreground = grey > threshold

    def _start(self, prior: np.ndarray | None) -> None:
        shape = self._foreground.shape
        self._current = np.zeros(shape, bool) if prior is None else prior.copy()

    def _region(self, row: int, col: int) -> np.ndarray:
        labels, _ = ndi.label(self._foreground)
        label = labels[row, col]
        if label:
            return labels == label
        rr, cc = np.ogrid[: labels.shape[0], : labels.shape[1]]
        return (rr - row) ** 2 + (cc - col) ** 2 <= self.disc_radius**2

    def _predict(self, click: Click) -> np.ndarray:
        row, col = int(click.row), int(click.col)
        region = self._region(row, col)
        if click.positive:
            self._current = self._current | region
        else:
            self._current = self._current & ~region
        return self._current.copy()

    def _get_state(self):
        return self._current.copy()

    def _set_state(self, state) -> None:
        self._current = state


def encoder_test_pattern(size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """A smooth RGB pattern with a blue disc, and the disc's mask.

    The fixed input on which the encoder's reference embedding was recorded
    (``benchmarks/pack_mobilesam.py --check``, ``tests/model/test_image_encoder.py``).

    Returns
    -------
    rgb : ndarray of shape (size, size, 3), uint8
    disc : ndarray of shape (size, size), bool
    """
    r = np.arange(size, dtype=np.float64)[:, None] / size
    c = np.arange(size, dtype=np.float64)[None, :] / size
    disc = ((r - 0.5) ** 2 + (c - 0.45) ** 2) < 0.2**2
    red = 0.5 + 0.5 * np.sin(2 * np.pi * (3 * r + 2 * c))
    green = 0.5 + 0.5 * np.cos(2 * np.pi * (5 * r * c + c))
    blue = 0.1 + 0.8 * disc
    rgb = np.stack(np.broadcast_arrays(red, green, blue), axis=-1)
    return np.round(rgb * 255).astype(np.uint8), disc


def sam_normalise(rgb: np.ndarray):
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 tensor normalised with the SAM mean/std."""
    import torch

    from .constants import PIXEL_MEAN, PIXEL_STD

    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    return (x - torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        PIXEL_STD
    ).view(1, 3, 1, 1)
