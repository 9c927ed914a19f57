import math

import pytest
import torch

from napari_inter2former.constants import (
    POSSIBLY_BACKGROUND,
    POSSIBLY_FOREGROUND,
    UNKNOWN,
)
from napari_inter2former.model.hybrid_attention import HybridAttention, boundary_tokens
from napari_inter2former.model.prompt_embedding import prompt_box




def _square_ref():
    ref = torch.full((256, 256), POSSIBLY_BACKGROUND, dtype=torch.uint8)
    ref[64:128, 64:128] = POSSIBLY_FOREGROUND  # tokens 4..7
    return ref


def test_box_rule_is_the_dpe_box():
    ref = _square_ref()
    box = prompt_box(ref)
    assert box == (48, 144, 48, 144)
    tokens = boundary_tokens(ref, box, "box")
    expected = torch.zeros(16, 16, dtype=torch.bool)
    expected[3:9, 3:9] = True
    assert torch.equal(tokens, expected)


def test_boundary_rule_flags_only_code_changes_and_unknown():
    ref = _square_ref()
    ref[100, 100] = UNKNOWN  # token (6, 6), inside the square's interior
    tokens = boundary_tokens(ref, prompt_box(ref), "boundary")
    # 7x7 windows reach 3 px: edge pixels 61..66 / 125..130 -> tokens 3, 4 and 7, 8
    expected = torch.zeros(16, 16, dtype=torch.bool)
    expected[3:9, 3:9] = True
    expected[5:7, 5:7] = False  # constant interior (where float variance would fail)
    expected[6, 6] = True  # the UNKNOWN pixel
    assert torch.equal(tokens, expected)


def test_all_rule_is_every_token():
    ref = _square_ref()
    assert bool(boundary_tokens(ref, prompt_box(ref), "all").all())


def test_bad_rule():
    with pytest.raises(ValueError, match="boundary rule"):
        boundary_tokens(_square_ref(), (0, 256, 0, 256), "variance")


def _plain_rope_attention(attn, x, grid):
    """Single-head softmax attention with RoPE, written out without the module's helpers."""
    q, k, v = attn.qkv_proj(x).chunk(3, dim=-1)
    h, w = grid
    d = q.shape[-1]
    freqs = 10000.0 ** (-2 * torch.arange(d // 4, dtype=torch.float64) / (d // 2))
    ys = torch.arange(h).repeat_interleave(w).double()
    xs = torch.arange(w).repeat(h).double()
    angle = 0.5 * torch.cat([ys[:, None] * freqs, xs[:, None] * freqs], 1)  # (N, d/2)
    rot = torch.polar(torch.ones_like(angle), -angle).to(torch.complex64)

    def rotate(t):
        return torch.view_as_real(
            torch.view_as_complex(t.reshape(-1, d // 2, 2).contiguous()) * rot
        ).reshape(-1, d)

    scores = rotate(q) @ rotate(k).t() / math.sqrt(d)
    return attn.o_proj(torch.softmax(scores, -1) @ v)


def test_all_boundary_equals_plain_rope_attention():
    torch.manual_seed(0)
    attn = HybridAttention(embed_dim=32, attn_dim=16, code_size=8)
    grid = (6, 7)
    x = torch.randn(42, 32)
    with torch.no_grad():
        out = attn(x, grid, torch.ones(42, dtype=torch.bool))
        ref = _plain_rope_attention(attn, x, grid)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_code_keys_msb_first():
    torch.manual_seed(0)
    attn = HybridAttention(embed_dim=32, attn_dim=16, code_size=8)
    cb = attn.codebook.detach()
    n = 0b10000011  # bits 0, 6, 7 set (bit 0 = most significant)
    expected = cb[0] + cb[6] + cb[7] + cb[8 + 1 : 8 + 6].sum(0)
    with torch.no_grad():
        torch.testing.assert_close(attn.code_keys()[n], expected)


def test_bsq_eval_equals_train_path():
    """Eval (scatter-add over occupied codes) == train (softmax over N quantised keys)."""
    torch.manual_seed(1)
    attn = HybridAttention(embed_dim=32, attn_dim=16, code_size=8)
    grid = (8, 8)
    x = torch.randn(64, 32) * 2
    boundary = torch.rand(64) < 0.3
    with torch.no_grad():
        eval_out = attn(x, grid, boundary)
        train_out, vq = attn.forward_train(x[None], grid, boundary[None])
    torch.testing.assert_close(eval_out, train_out[0], atol=1e-5, rtol=1e-4)
    assert vq > 0
    # and it really is quantised: BSQ outputs differ from full attention without RoPE
    with torch.no_grad():
        full = attn(x, grid, torch.ones(64, dtype=torch.bool))
    assert float((full[~boundary] - eval_out[~boundary]).abs().max()) > 1e-3


def test_train_gradients_reach_codes():
    torch.manual_seed(2)
    attn = HybridAttention(embed_dim=32, attn_dim=16, code_size=8)
    x = torch.randn(2, 16, 32)
    out, vq = attn.forward_train(x, (4, 4), torch.zeros(2, 16, dtype=torch.bool))
    (out.square().mean() + vq).backward()
    assert attn.codebook.grad.abs().sum() > 0
    assert attn.code_proj.weight.grad.abs().sum() > 0  # straight-through + commitment


def test_code_key_cache_invalidated_by_weight_change():
    attn = HybridAttention(embed_dim=32, attn_dim=16, code_size=4)
    with torch.no_grad():
        a = attn.code_keys()
        assert attn.code_keys() is a
        attn.codebook.mul_(2.0)
        torch.testing.assert_close(attn.code_keys(), 2 * a)
