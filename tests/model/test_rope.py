import math

import pytest
import torch

from napari_inter2former.model.rope import RoPE2d, apply_rope, rope_tables




def _rotate_by_hand(x, ys, xs, theta=10000.0, ratio=0.5):
    """Independent complex-number version: pair (u0, u1) -> (u0 + i u1) exp(-i angle)."""
    d = x.shape[-1]
    freqs = [theta ** (-2 * j / (d // 2)) for j in range(d // 4)]
    out = torch.empty_like(x)
    for n in range(x.shape[0]):
        angles = [ratio * ys[n] * f for f in freqs] + [ratio * xs[n] * f for f in freqs]
        for p, a in enumerate(angles):
            z = complex(x[n, 2 * p], x[n, 2 * p + 1]) * complex(
                math.cos(a), -math.sin(a)
            )
            out[n, 2 * p], out[n, 2 * p + 1] = z.real, z.imag
    return out


def test_matches_hand_rotation():
    rng = torch.Generator().manual_seed(0)
    h, w, d = 3, 4, 8
    x = torch.randn(h * w, d, generator=rng)
    cos, sin = rope_tables(h, w, d)
    ys = [n // w for n in range(h * w)]
    xs = [n % w for n in range(h * w)]
    torch.testing.assert_close(
        apply_rope(x, cos, sin), _rotate_by_hand(x, ys, xs), atol=1e-5, rtol=1e-5
    )


def test_scores_depend_only_on_relative_position():
    rng = torch.Generator().manual_seed(1)
    rope = RoPE2d(16)
    q, k = torch.randn(1, 16, generator=rng), torch.randn(1, 16, generator=rng)
    grid = (10, 10)

    def score(pq, pk):
        qr = rope(q, torch.tensor([pq]), grid)
        kr = rope(k, torch.tensor([pk]), grid)
        return float((qr * kr).sum())

    # (1, 2) vs (3, 5) and (4, 4) vs (6, 7): same offset (2, 3)
    assert score(12, 35) == pytest.approx(score(44, 67), abs=1e-5)
    assert score(12, 35) != pytest.approx(score(12, 36), abs=1e-3)
    # norm preserved
    assert rope(q, torch.tensor([57]), grid).norm() == pytest.approx(q.norm(), rel=1e-5)


def test_bad_head_dim():
    with pytest.raises(ValueError, match="multiple of 4"):
        rope_tables(2, 2, 6)
