import math

import pytest
import torch
import torch.nn.functional as F

from napari_inter2former.training.losses import (
    batch_iou,
    coarse_target,
    interactive_loss,
    normalized_focal_loss,
    soft_iou_loss,
)


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def test_nfl_matches_hand_computation():
    logits = torch.tensor([0.0, 2.0, -1.0]).view(1, 1, 1, 3)
    target = torch.tensor([1, 0, 0]).view(1, 1, 1, 3)
    # probability of the true class, focal weight (1 - pt)^2, alpha_t = 0.5
    pts = [_sigmoid(0.0), 1 - _sigmoid(2.0), 1 - _sigmoid(-1.0)]
    focal = [(1 - p) ** 2 for p in pts]
    scale = 3 / sum(focal)
    expected = sum(-0.5 * f * scale * math.log(p) for f, p in zip(focal, pts)) / 3
    got = normalized_focal_loss(logits, target)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_nfl_gamma_zero_is_half_bce():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 1, 5, 6, generator=g)
    target = torch.rand(2, 1, 5, 6, generator=g) > 0.5
    got = normalized_focal_loss(logits, target, gamma=0.0)
    expected = 0.5 * F.binary_cross_entropy_with_logits(logits, target.float())
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_nfl_ignores_invalid_pixels_and_is_per_image_mean():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 1, 4, 4, generator=g)
    target = torch.rand(1, 1, 4, 4, generator=g) > 0.5
    valid = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    valid[..., 0] = False
    a = normalized_focal_loss(logits, target, valid)
    changed = logits.clone()
    changed[..., 0] = 50.0
    b = normalized_focal_loss(changed, target, valid)
    assert a.item() == pytest.approx(b.item())
    # mean over the batch of per-image losses
    both = normalized_focal_loss(
        torch.cat([logits, changed]), torch.cat([target, target])
    )
    singles = normalized_focal_loss(logits, target) + normalized_focal_loss(
        changed, target
    )
    assert both.item() == pytest.approx(singles.item() / 2, rel=1e-5)


def test_nfl_gradient_lowers_loss():
    logits = torch.zeros(1, 1, 3, 3, requires_grad=True)
    target = torch.eye(3, dtype=torch.bool).view(1, 1, 3, 3)
    loss = normalized_focal_loss(logits, target)
    loss.backward()
    # gradient pushes foreground logits up and background logits down
    assert (logits.grad[target] < 0).all() and (logits.grad[~target] > 0).all()


def test_coarse_target_is_any_pixel():
    gt = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    gt[0, 0, 5, 1] = True
    valid = torch.zeros_like(gt)
    valid[..., :4, :] = True
    small, small_valid = coarse_target(gt, valid, 4)
    assert small.shape == (1, 1, 2, 2)
    assert small[0, 0].tolist() == [[False, False], [True, False]]
    assert small_valid[0, 0].tolist() == [[True, True], [False, False]]


def _random_outputs(seed):
    """Model outputs of a batch of 2 on a 16 x 16 grid (BSQ loss 0.3), and a target."""
    g = torch.Generator().manual_seed(seed)
    out = {
        "logits": torch.randn(2, 1, 16, 16, generator=g),
        "coarse_logits": torch.randn(2, 1, 4, 4, generator=g),
        "vq_loss": torch.tensor(0.3),
    }
    return out, torch.rand(2, 1, 16, 16, generator=g) > 0.7


def test_interactive_loss_sums_parts():
    out, gt = _random_outputs(2)
    parts = interactive_loss(out, gt, None, coarse_weight=2.0, vq_weight=0.5)
    expected = parts["nfl"] + 2.0 * parts["coarse"] + 0.5 * 0.3
    assert parts["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_interactive_loss_adds_the_weighted_soft_iou():
    out, gt = _random_outputs(4)
    plain = interactive_loss(out, gt, None)
    weighted = interactive_loss(out, gt, None, iou_weight=0.5)
    assert weighted["soft_iou"].item() == pytest.approx(
        soft_iou_loss(out["logits"], gt).item(), rel=1e-6
    )
    assert weighted["loss"].item() == pytest.approx(
        plain["loss"].item() + 0.5 * weighted["soft_iou"].item(), rel=1e-6
    )


def test_soft_iou_loss_matches_hand_computation():
    logits = torch.tensor([[0.0, 2.0], [-1.0, -3.0]]).view(1, 1, 2, 2)
    gt = torch.tensor([[True, True], [False, False]]).view(1, 1, 2, 2)
    p = [_sigmoid(v) for v in (0.0, 2.0, -1.0, -3.0)]
    inter = p[0] + p[1]
    union = sum(p) + 2 - inter
    expected = 1 - (inter + 1) / (union + 1)
    assert soft_iou_loss(logits, gt).item() == pytest.approx(expected, rel=1e-6)
    # invalid pixels count for neither side
    valid = torch.tensor([[True, True], [True, False]]).view(1, 1, 2, 2)
    union_valid = sum(p[:3]) + 2 - inter
    assert soft_iou_loss(logits, gt, valid).item() == pytest.approx(
        1 - (inter + 1) / (union_valid + 1), rel=1e-6
    )


def test_soft_iou_loss_weighs_a_small_object_s_rim_more_than_the_nfl_does():
    """A one-pixel rim missed on a small object costs more soft IoU than on a large one."""

    def rim_miss(radius):
        yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
        d = ((yy - 32.0) ** 2 + (xx - 32.0) ** 2).sqrt()
        gt = (d <= radius).view(1, 1, 64, 64)
        logits = torch.where(d <= radius - 1, 6.0, -6.0).view(1, 1, 64, 64)
        return soft_iou_loss(logits, gt).item()

    assert rim_miss(4) > 2 * rim_miss(20)


def test_crop_loss_over_the_whole_map_is_the_full_loss():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 1, 32, 32, generator=g)
    full = {
        "logits": logits,
        "coarse_logits": torch.randn(2, 1, 2, 2, generator=g),
        "vq_loss": torch.tensor(0.1),
    }
    gt = torch.rand(2, 1, 32, 32, generator=g) > 0.6
    valid = torch.ones_like(gt)
    valid[1, :, 20:] = False
    local = dict(full, crops=[logits[:1], logits[1:]], boxes=[(0, 2, 0, 2)] * 2)
    del local["logits"]
    a = interactive_loss(full, gt, valid)
    b = interactive_loss(local, gt, valid)
    for key in ("loss", "nfl", "iou", "soft_iou"):
        assert b[key].item() == pytest.approx(a[key].item(), rel=1e-6)
    # a crop only sees its own pixels: box (1, 2, 1, 2) of image 0 is its last quarter
    quarter = dict(local, crops=[logits[:1, :, 16:, 16:]], boxes=[(1, 2, 1, 2)])
    c = interactive_loss(
        {**quarter, "coarse_logits": full["coarse_logits"][:1]}, gt[:1], valid[:1]
    )
    expected = normalized_focal_loss(logits[:1, :, 16:, 16:], gt[:1, :, 16:, 16:])
    assert c["nfl"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_batch_iou():
    logits = torch.full((1, 1, 2, 2), -1.0)
    logits[0, 0, 0, :] = 1.0
    gt = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    gt[0, 0, :, 0] = True
    assert batch_iou(logits, gt).item() == pytest.approx(1 / 3)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape"):
        normalized_focal_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3))
    with pytest.raises(ValueError, match="shape"):
        soft_iou_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3))
