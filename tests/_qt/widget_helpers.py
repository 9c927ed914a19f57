"""Synthetic images and a slow fake predictor for the widget tests."""

from __future__ import annotations

import time

import numpy as np

from napari_inter2former.testing import FakePredictor


def discs_image(shape=(64, 80)):
    """Two bright discs on a dark background: left (id 1 region) and right."""
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    left = (rr - 30) ** 2 + (cc - 20) ** 2 <= 9**2
    right = (rr - 30) ** 2 + (cc - 56) ** 2 <= 11**2
    rng = np.random.RandomState(0)
    image = (20 + 10 * rng.rand(*shape)).astype(np.float32)
    image[left | right] += 1000
    return image.astype(np.uint16), left, right


def ball_stack(n_planes=16, shape=(48, 48), planes=(3, 12), center=(24, 24), radius=10):
    """A bright cylinder-like object on planes ``planes[0]..planes[1]`` (inclusive)."""
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    disc = (rr - center[0]) ** 2 + (cc - center[1]) ** 2 <= radius**2
    rng = np.random.RandomState(1)
    volume = (20 + 10 * rng.rand(n_planes, *shape)).astype(np.float32)
    expected = np.zeros((n_planes, *shape), bool)
    expected[planes[0] : planes[1] + 1] = disc
    volume[expected] += 1000
    return volume.astype(np.uint16), expected


class SlowFakePredictor(FakePredictor):
    """FakePredictor that takes ``delay`` seconds per click (to cancel mid-run)."""

    def __init__(self, delay=0.15):
        super().__init__()
        self.delay = delay

    def _predict(self, click):
        time.sleep(self.delay)
        return super()._predict(click)


class EncodeAheadRecorder(FakePredictor):
    """FakePredictor that records (and takes ``delay`` seconds for) each encode-ahead."""

    def __init__(self, delay=0.0):
        super().__init__()
        self.delay = delay
        self.encoded_ahead = []  # the uint8 RGB images
        self.around = []  # and the points given with them
        self.turned = []  # and whether the turned views were asked for

    def _encode_ahead(self, rgb, around=None, turned=True):
        time.sleep(self.delay)
        self.encoded_ahead.append(rgb)
        self.around.append(around)
        self.turned.append(turned)


def wait_idle(qtbot, widget, timeout=5000):
    qtbot.waitUntil(lambda: not widget.runner.busy and not widget._pending, timeout=timeout)
