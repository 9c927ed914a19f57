import numpy as np
import pytest
import torch

from napari_inter2former.constants import (
    DEFINITELY_BACKGROUND,
    DEFINITELY_FOREGROUND,
    POSSIBLY_BACKGROUND,
    POSSIBLY_FOREGROUND,
    UNKNOWN,
)
from napari_inter2former.model.build import build_from_config
from napari_inter2former.training.step import (
    draw_num_rounds,
    initial_reference,
    leak_into_neighbours,
    object_token_boxes,
    perturb_mask,
    train_step,
)

T = 64  # image size of the micro model (conftest.py)
EMBED = 64


def _batch(b=2):
    g = torch.Generator().manual_seed(0)
    image = torch.randn(b, 3, T, T, generator=g)
    emb = torch.randn(b, EMBED, T // 16, T // 16, generator=g)
    gt = torch.zeros(b, 1, T, T, dtype=torch.bool)
    gt[0, :, 10:40, 20:50] = True
    gt[1:, :, 30:55, 5:25] = True
    valid = torch.ones_like(gt)
    valid[..., 60:, :] = False
    image[..., 60:, :] = 0
    return image, emb, gt, valid


def _model_and_optimizer(config, lr=1e-3):
    torch.manual_seed(0)
    model = build_from_config(config)
    params = [
        p for n, p in model.named_parameters() if not n.startswith("image_encoder.")
    ]
    return model, torch.optim.AdamW(params, lr=lr)


def test_loss_decreases_on_a_fixed_batch(micro):
    model, opt = _model_and_optimizer(micro, lr=3e-3)
    batch = _batch()
    losses = []
    for step in range(12):
        stats = train_step(
            model,
            opt,
            *batch,
            np.random.default_rng(0),
            num_rounds=0,
            prior_mask_prob=0.0,
            first_click_deepest=1.0,
        )
        losses.append(stats["loss"])
    # deterministic (same batch, same clicks): a working update lowers the loss steadily
    assert np.mean(losses[-3:]) < 0.92 * losses[0]
    assert losses[-1] < losses[len(losses) // 2] < losses[0]


def test_step_trains_decoder_only_and_balances_experts(micro):
    model, opt = _model_and_optimizer(micro)
    encoder_before = {k: v.clone() for k, v in model.image_encoder.state_dict().items()}
    bias_before = [
        b.clone() for n, b in model.named_buffers() if n.endswith("exp_bias")
    ]
    assert bias_before, "the model has no HMoE balancing bias"
    decoder_before = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    stats = train_step(model, opt, *_batch(), np.random.default_rng(3), num_rounds=2)
    assert stats["rounds"] == 2 and np.isfinite(stats["loss"])
    for k, v in model.image_encoder.state_dict().items():
        assert torch.equal(v, encoder_before[k])
    assert all(p.grad is None for p in model.image_encoder.parameters())
    assert any(
        not torch.equal(v, decoder_before[k])
        for k, v in model.decoder.state_dict().items()
    )
    bias_after = [b for n, b in model.named_buffers() if n.endswith("exp_bias")]
    assert any(not torch.equal(a, b) for a, b in zip(bias_before, bias_after))


def test_local_step_with_frozen_edges(micro):
    model, _ = _model_and_optimizer(micro, lr=3e-3)
    params = [
        p
        for n, p in model.named_parameters()
        if not n.startswith(("image_encoder.", "edge_net."))
    ]
    opt = torch.optim.AdamW(params, lr=3e-3)
    image, emb, gt, valid = _batch()
    with torch.no_grad():
        edges = tuple(model.edge_net(image))
    edge_before = {k: v.clone() for k, v in model.edge_net.state_dict().items()}
    losses = []
    for _ in range(10):
        stats = train_step(
            model, opt, image, emb, gt, valid, np.random.default_rng(0),
            num_rounds=0, prior_mask_prob=0.0, first_click_deepest=1.0,
            edges=edges, local=True,
        )  # fmt: skip
        losses.append(stats["loss"])
    assert np.mean(losses[-3:]) < 0.92 * losses[0]
    for k, v in model.edge_net.state_dict().items():
        assert torch.equal(v, edge_before[k])
    stats = train_step(
        model, opt, image, emb, gt, valid, np.random.default_rng(1),
        num_rounds=2, edges=edges, local=True,
    )  # fmt: skip
    assert stats["rounds"] == 2 and np.isfinite(stats["loss"])
    stats = train_step(
        model, opt, image, emb, gt, valid, np.random.default_rng(1),
        num_rounds=2, edges=edges, local=True, dlu_rule="clicked",
    )  # fmt: skip
    assert stats["rounds"] == 2 and np.isfinite(stats["loss"])


def test_micro_batches_accumulate_the_same_update(micro):
    updates = []
    for parts in (1, 2):
        model, opt = _model_and_optimizer(micro)
        for module in model.modules():
            if hasattr(module, "bias_update_rate"):
                module.bias_update_rate = 0.0  # routing must not move between the parts
        before = {k: v.clone() for k, v in model.decoder.state_dict().items()}
        stats = train_step(
            model, opt, *_batch(), np.random.default_rng(0), num_rounds=0,
            prior_mask_prob=0.0, first_click_deepest=1.0, micro_batches=parts,
        )  # fmt: skip
        delta = {k: v - before[k] for k, v in model.decoder.state_dict().items()}
        updates.append((stats, delta))
    (a, da), (b, db) = updates
    for key in ("loss", "nfl", "coarse", "grad_norm"):
        assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), key
    assert any(v.abs().max() > 0 for v in da.values())
    for k in da:
        torch.testing.assert_close(db[k], da[k], atol=1e-5, rtol=1e-3)  # lr 1e-3
    with pytest.raises(ValueError, match="micro_batches"):
        train_step(model, opt, *_batch(), np.random.default_rng(0), micro_batches=3)


def test_object_token_boxes():
    gt = torch.zeros(2, 1, 64, 64, dtype=torch.bool)
    gt[0, 0, 17:20, 40:49] = True
    assert object_token_boxes(gt) == [(1, 2, 2, 4), None]


def test_same_rng_same_step(micro):
    results = []
    for _ in range(2):
        model, opt = _model_and_optimizer(micro)
        stats = train_step(
            model, opt, *_batch(), np.random.default_rng(5), max_rounds=3
        )
        results.append(
            (stats, {k: v.clone() for k, v in model.decoder.state_dict().items()})
        )
    assert results[0][0] == results[1][0]
    for k, v in results[0][1].items():
        assert torch.equal(v, results[1][1][k])


def test_num_rounds_law():
    rng = np.random.default_rng(0)
    draws = np.array([draw_num_rounds(rng, 20, 0.6) for _ in range(4000)])
    assert draws.min() == 0 and draws.max() <= 20
    assert np.mean(draws == 0) == pytest.approx(0.4, abs=0.03)
    assert draws.mean() == pytest.approx(1.5, abs=0.15)
    assert draw_num_rounds(rng, 0, 0.6) == 0


def test_initial_reference_click_or_prior():
    _, _, gt, valid = _batch()
    gt_np, valid_np = gt[:, 0].numpy(), valid[:, 0].numpy()
    ref, prior = initial_reference(
        gt_np, valid_np, np.random.default_rng(0), prior_mask_prob=0.0
    )
    assert not prior.any()
    for i in range(2):
        codes = ref[i, 0]
        disc = codes == DEFINITELY_FOREGROUND
        assert (
            disc.any() and gt[i, 0][disc].all()
        )  # the first click is inside the object
        assert set(torch.unique(codes).tolist()) == {UNKNOWN, DEFINITELY_FOREGROUND}
    ref, prior = initial_reference(
        gt_np, valid_np, np.random.default_rng(0), prior_mask_prob=1.0
    )
    assert prior.all()
    codes = ref[0, 0]
    assert (codes == POSSIBLY_FOREGROUND).any() and (codes == POSSIBLY_BACKGROUND).any()
    assert not (codes == UNKNOWN).any()


def test_perturbed_prior_overlaps_but_differs():
    gt = np.zeros((80, 80), bool)
    gt[20:60, 25:55] = True
    ious, changed = [], 0
    for seed in range(20):
        p = perturb_mask(gt, np.random.default_rng(seed))
        ious.append((p & gt).sum() / (p | gt).sum())
        changed += not np.array_equal(p, gt)
    assert changed >= 15
    assert min(ious) > 0.3 and np.mean(ious) < 0.95


def test_perturbed_prior_max_change_sets_how_far_it_shrinks():
    gt = np.zeros((120, 120), bool)
    gt[20:100, 20:100] = True

    def smallest_area(max_change):
        areas = [
            perturb_mask(gt, np.random.default_rng(seed), max_change).sum()
            for seed in range(60)
        ]
        return min(areas) / gt.sum()

    # radius <= 0.15 * 80 = 12 px: at least (56/80)^2 = 0.49 of the square is left
    assert smallest_area(0.15) > 0.3
    assert smallest_area(0.4) < 0.3


def test_leak_into_neighbours_takes_parts_of_nearby_objects_only():
    labels = np.zeros((100, 100), np.int32)
    labels[40:60, 40:60] = 1  # the object
    labels[40:60, 62:80] = 2  # a neighbour
    labels[5:10, 5:10] = 3  # far away
    gt = labels == 1
    seen = np.zeros(4, bool)
    for seed in range(30):
        leak = leak_into_neighbours(gt, labels, np.random.default_rng(seed))
        assert not (leak & gt).any() and not (leak & (labels == 0)).any()
        seen[np.unique(labels[leak])] = True
    assert seen[2] and not seen[3]
    assert not leak_into_neighbours(gt, np.where(gt, 1, 0), np.random.default_rng(0)).any()


def test_leaked_prior_starts_with_a_positive_click_and_a_negative_one_on_the_leak():
    labels = np.zeros((1, 128, 128), np.int32)
    labels[0, 40:80, 30:60] = 1
    labels[0, 40:80, 62:100] = 2
    gt, valid = labels == 1, np.ones_like(labels, bool)
    on_neighbour = 0
    for seed in range(10):
        ref, prior = initial_reference(
            gt, valid, np.random.default_rng(seed), prior_mask_prob=1.0,
            prior_max_change=0.02, others=labels, prior_leak_prob=1.0,
        )
        codes = ref[0, 0].numpy()
        assert prior[0] and (codes[gt[0]] == DEFINITELY_FOREGROUND).any()
        negative = codes == DEFINITELY_BACKGROUND
        on_neighbour += bool(negative.any() and (labels[0][negative] == 2).all())
    assert on_neighbour >= 7
    ref, _ = initial_reference(  # without labels: a plain prior, one click
        gt, valid, np.random.default_rng(0), prior_mask_prob=1.0, prior_leak_prob=1.0
    )
    codes = ref[0, 0].numpy()
    assert ((codes == DEFINITELY_FOREGROUND) | (codes == DEFINITELY_BACKGROUND)).sum() <= 81


def test_step_with_a_non_finite_gradient_leaves_the_weights_alone(micro):
    model, opt = _model_and_optimizer(micro)
    image, emb, gt, valid = _batch()
    before = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    emb[0, :, 0, 0] = float("nan")
    stats = train_step(model, opt, image, emb, gt, valid, np.random.default_rng(0), num_rounds=0)
    assert stats["skipped"] == 1.0 and not np.isfinite(stats["grad_norm"])
    for k, v in model.decoder.state_dict().items():
        if not k.endswith("exp_bias"):  # the experts' balancing bias moves in the forward pass
            assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())
    stats = train_step(model, opt, *_batch(), np.random.default_rng(0), num_rounds=0)
    assert stats["skipped"] == 0.0
    assert any(not torch.equal(v, before[k]) for k, v in model.decoder.state_dict().items())
