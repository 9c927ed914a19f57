"""Fixtures for the training tests: one torch thread, a very small model variant."""

import pytest

from napari_inter2former.model.build import CONFIGS, ModelConfig

# T = 64, C = 64: a decoder step takes a fraction of a second on one core
MICRO = ModelConfig(
    encoder="patch",
    image_size=64,
    embed_dim=64,
    attn_dim=16,
    prompt_dims=(8, 16, 32),
    num_experts=2,
    edge_widths=(2, 2, 2, 2),
)




@pytest.fixture
def micro_name(monkeypatch):
    """Register the micro model variant under a name the trainer can build."""
    monkeypatch.setitem(CONFIGS, "micro", MICRO)
    return "micro"


@pytest.fixture
def micro():
    """The micro model configuration."""
    return MICRO
