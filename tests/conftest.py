"""Shared fixtures: synthetic images and volumes with known objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def disc_image(shape=(64, 80), center=(30, 40), radius=12, dtype=np.uint8, seed=0):
    """A bright disc on a dark, slightly noisy background, and its mask."""
    rng = np.random.RandomState(seed)
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    mask = (rr - center[0]) ** 2 + (cc - center[1]) ** 2 <= radius**2
    image = 20 + 10 * rng.rand(*shape)
    image[mask] += 180
    if np.issubdtype(dtype, np.integer):
        image = np.clip(image, 0, np.iinfo(dtype).max)
    return image.astype(dtype), mask


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Small tensors run fastest on one thread (CI has 2 shared cores); restore afterwards."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def disc():
    return disc_image()


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA
