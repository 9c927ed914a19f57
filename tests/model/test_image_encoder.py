"""TinyViT (MobileSAM image encoder): shapes, windowing, batching, shipped weights."""

from __future__ import annotations

import pytest
import torch

from napari_inter2former.model.image_encoder import (
    TinyViT,
    TinyViTBlock,
    WindowAttention,
    load_mobilesam_encoder,
)
from napari_inter2former.testing import encoder_test_pattern, sam_normalise


def tiny_tinyvit(**kwargs) -> TinyViT:
    """A TinyViT small enough for fast tests; windows chosen so that padding happens."""
    torch.manual_seed(0)
    args = dict(
        img_size=32,
        embed_dims=(8, 16, 24, 32),
        depths=(1, 1, 1, 1),
        num_heads=(1, 2, 2, 4),
        window_sizes=(7, 3, 2, 3),
        out_chans=16,
    )
    args.update(kwargs)
    model = TinyViT(**args).eval()
    # random attention biases and BN statistics so that they matter
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "attention_biases" in name:
                p.normal_()
    return model


def test_tiny_output_shape():
    model = tiny_tinyvit()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 16, 2, 2)
    assert torch.isfinite(out).all()


def test_batch_items_are_independent():
    model = tiny_tinyvit()
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        batched = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)


def test_wrong_input_size_raises():
    model = tiny_tinyvit()
    with pytest.raises(ValueError, match="expected input of shape"):
        model(torch.zeros(1, 3, 48, 48))


def test_bad_config_raises():
    with pytest.raises(ValueError, match="one entry per stage"):
        TinyViT(img_size=64, embed_dims=(8, 16, 24), depths=(1, 1, 1, 1))
    with pytest.raises(ValueError, match="multiple of 16"):
        TinyViT(img_size=72)


def test_relative_bias_index():
    attn = WindowAttention(dim=8, num_heads=2, window_size=3)
    idx = attn.bias_idx
    assert idx.shape == (9, 9)
    # token 0 is (0, 0), token 5 is (1, 2), token 7 is (2, 1)
    assert idx[0, 5] == 1 * 3 + 2
    assert idx[5, 7] == 1 * 3 + 1
    assert torch.equal(idx, idx.T)
    assert (idx.diagonal() == 0).all()


def test_attention_biases_change_the_output():
    torch.manual_seed(3)
    attn = WindowAttention(dim=8, num_heads=2, window_size=3).eval()
    x = torch.randn(2, 9, 8)
    with torch.no_grad():
        before = attn(x)
        attn.attention_biases.normal_()
        after = attn(x)
    assert not torch.allclose(before, after)


def test_windows_do_not_interact():
    """A token changed in one window leaves the attention output of other windows alone."""
    torch.manual_seed(4)
    block = TinyViTBlock(dim=8, resolution=(5, 5), num_heads=2, window_size=3).eval()
    x = torch.randn(1, 25, 8)
    y = x.clone()
    y[0, 0] += torch.randn(8)  # token (0, 0): top-left window (rows 0-2, cols 0-2)
    with torch.no_grad():
        a = block._window_attention(x).view(5, 5, 8)
        b = block._window_attention(y).view(5, 5, 8)
    changed = (a - b).abs().amax(-1) > 1e-6
    expected = torch.zeros(5, 5, dtype=torch.bool)
    expected[:3, :3] = True
    assert torch.equal(changed, expected)


@pytest.fixture(scope="module")
def mobilesam_encoder():
    model = TinyViT().eval()
    load_mobilesam_encoder(model)
    return model


# Recorded once from the official MobileSAM code (fp32 checkpoint mobile_sam.pt, sha256
# 6dbb9052...6c2f) on testing.encoder_test_pattern(): embedding mean/std and values at (channel, row, col).
REFERENCE_MEAN = -0.003411
REFERENCE_STD = 0.101661
REFERENCE_SAMPLES = {
    (0, 0, 0): 0.00163,
    (17, 10, 50): 0.03891,
    (100, 32, 28): -0.11968,
    (255, 63, 63): -0.06686,
    (128, 40, 5): -0.15193,
    (64, 20, 30): 0.07087,
    (200, 50, 12): -0.19551,
    (31, 3, 60): 0.16037,
}
# channel 0, 16x16 average pooled (4x4 map), from the same run
REFERENCE_POOLED_CH0 = [
    [-0.023296, -0.058840, -0.095319, -0.007928],
    [-0.105469, 0.043433, -0.057960, -0.029701],
    [-0.045713, 0.040832, -0.019789, -0.028295],
    [-0.087215, -0.115822, -0.175026, -0.096510],
]


@pytest.mark.slow
def test_shipped_weights_reproduce_reference_embedding(mobilesam_encoder):
    # fp16-stored weights: max abs deviation from the fp32 checkpoint was 1.7e-3
    tol = 5e-3
    with torch.inference_mode():
        emb = mobilesam_encoder(sam_normalise(encoder_test_pattern()[0]))
    assert emb.shape == (1, 256, 64, 64)
    assert abs(emb.mean().item() - REFERENCE_MEAN) < 1e-3
    assert abs(emb.std().item() - REFERENCE_STD) < 1e-3
    for (c, i, j), value in REFERENCE_SAMPLES.items():
        assert abs(emb[0, c, i, j].item() - value) < tol, (c, i, j)
    pooled = torch.nn.functional.avg_pool2d(emb, 16)[0, 0]
    torch.testing.assert_close(
        pooled, torch.tensor(REFERENCE_POOLED_CH0), atol=1e-3, rtol=0
    )


@pytest.mark.slow
def test_shipped_weights_load_strict(mobilesam_encoder):
    from napari_inter2former.model.weights import load_packaged_weights

    state = load_packaged_weights("mobilesam_image_encoder.safetensors")
    assert set(state) == set(mobilesam_encoder.state_dict())
    assert all(v.dtype in (torch.float32, torch.int64) for v in state.values())
