"""One interactive training step: simulated click rounds without gradients, then one update.

Following the reference recipe (Inter2Former ``interact_train``, RITM ``batch_forward``):

1. Start every sample of the batch from UNKNOWN plus a first click on the object,
   or (with probability ``prior_mask_prob``) from a perturbed ground-truth mask
   encoded as a prior (POSSIBLY_FG / POSSIBLY_BG, what the plugin does with the
   previous slice or an existing label) plus a click that corrects it.
2. Draw ``n`` from a truncated geometric law (``P(n) ~ gamma ** n``, ``n <= max_rounds``)
   and run ``n`` rounds without gradients (model in eval mode, whole batch at
   once through ``forward_train``, which equals ``decode`` numerically): predict,
   update the reference map by the prediction, add one random error-region click.
3. In train mode run the edge net and ``forward_train`` on the final map and take
   one optimiser step on NFL (full resolution) + NFL (coarse localiser) + BSQ
   commitment loss. HMoE load-balancing biases move inside train-mode forwards.

All randomness comes from the numpy generator passed in (the training loop
seeds it from (seed, step)), so a resumed run repeats the same steps.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..constants import CLICK_RADIUS, TOKEN_STRIDE
from ..model.common import grow_box, mask_bbox
from ..model.inter2former import ImageFeatures
from ..reference_map import (
    new_reference_map,
    paint_clicks,
    reference_from_mask,
    update_by_prediction,
)
from .clicks import first_click, random_error_click
from .losses import coarse_target, interactive_loss

__all__ = [
    "add_error_clicks",
    "draw_num_rounds",
    "initial_reference",
    "leak_into_neighbours",
    "object_token_boxes",
    "perturb_mask",
    "train_step",
]


def draw_num_rounds(rng: np.random.Generator, max_rounds: int, gamma: float) -> int:
    """n in [0, max_rounds] with P(n) proportional to gamma ** n."""
    if max_rounds <= 0:
        return 0
    p = gamma ** np.arange(max_rounds + 1, dtype=float)
    return int(rng.choice(max_rounds + 1, p=p / p.sum()))


def _object_window(gt: np.ndarray):
    """(longer side of the object's box, that box grown by half of it + 4 px and clipped), or None."""
    rows, cols = np.nonzero(gt)
    if rows.size == 0:
        return None
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    size = max(r1 - r0, c1 - c0)
    margin = int(0.5 * size) + 4
    return size, grow_box((r0, r1, c0, c1), margin, gt.shape)


def perturb_mask(
    gt: np.ndarray, rng: np.random.Generator, max_change: float = 0.15
) -> np.ndarray:
    """A plausible prior for an object: its mask shifted, grown or shrunk, with bits added or cut.

    Parameters
    ----------
    gt : ndarray of bool, shape (M, N)
    rng : numpy Generator
    max_change : float
        Largest grow/shrink radius as a fraction of the object's longer side (the radius is
        drawn uniformly in ``[0.02, max_change]``). 0.35 shrinks a disc to about a tenth of
        its area: the badly under-segmented masks the refinement clicks must grow.

    Returns
    -------
    ndarray of bool, shape (M, N)
    """
    from scipy import ndimage as ndi

    found = _object_window(gt)
    if found is None:
        return gt.copy()
    size, (R0, R1, C0, C1) = found
    crop = gt[R0:R1, C0:C1]
    out = crop.copy()
    radius = max(1, int(round(rng.uniform(0.02, max(max_change, 0.02)) * size)))
    op = rng.integers(0, 4)
    if op == 0:  # grow by `radius` (Euclidean)
        out = ndi.distance_transform_edt(~out) <= radius
    elif op == 1:  # shrink by `radius`, unless nothing would be left
        eroded = ndi.distance_transform_edt(np.pad(out, 1))[1:-1, 1:-1] > radius
        out = eroded if eroded.any() else out
    if rng.random() < 0.6:  # shift (the previous slice of a tilted object)
        dy, dx = (rng.uniform(-0.15, 0.15, 2) * size).round().astype(int)
        out = np.roll(out, (int(dy), int(dx)), axis=(0, 1))
    if rng.random() < 0.4:  # add or cut a blob on the boundary
        edge = np.argwhere(out ^ ndi.binary_erosion(out))
        if len(edge):
            cy, cx = edge[rng.integers(len(edge))]
            rad = max(2.0, rng.uniform(0.1, 0.3) * size)
            yy, xx = np.ogrid[: out.shape[0], : out.shape[1]]
            blob = (yy - cy) ** 2 + (xx - cx) ** 2 <= rad**2
            out = (out | blob) if rng.random() < 0.5 else (out & ~blob)
    full = np.zeros_like(gt)
    full[R0:R1, C0:C1] = out
    return full


def leak_into_neighbours(
    gt: np.ndarray, others: np.ndarray, rng: np.random.Generator, max_objects: int = 3
) -> np.ndarray:
    """Parts of up to ``max_objects`` objects near ``gt``: where a mask leaks in dense nuclei.

    Parameters
    ----------
    gt : ndarray of bool, shape (M, N)
        The object.
    others : ndarray of int, shape (M, N)
        Instance labels of the view (0: background; the pixels of ``gt`` are ignored).
    rng : numpy Generator
    max_objects : int

    Returns
    -------
    ndarray of bool, shape (M, N)
        Each picked neighbour (an object within half the object's size of its box) whole,
        or the part of it inside a disc around one of its pixels; empty when there is none.
    """
    out = np.zeros_like(gt)
    found = _object_window(gt)
    if found is None:
        return out
    size, (R0, R1, C0, C1) = found
    window = np.where(gt[R0:R1, C0:C1], 0, others[R0:R1, C0:C1])
    ids = np.unique(window)
    ids = ids[ids > 0]
    if ids.size == 0:
        return out
    picked = rng.permutation(ids)[: rng.integers(1, min(max_objects, ids.size) + 1)]
    crop = out[R0:R1, C0:C1]
    for obj in picked:
        member = window == obj
        if rng.random() < 0.5:
            crop |= member
            continue
        pr, pc = np.argwhere(member)[rng.integers(member.sum())]
        rad = max(3.0, rng.uniform(0.2, 0.6) * size)
        yy, xx = np.ogrid[: crop.shape[0], : crop.shape[1]]
        crop |= member & ((yy - pr) ** 2 + (xx - pc) ** 2 <= rad**2)
    return out


def initial_reference(
    gt: np.ndarray,
    valid: np.ndarray,
    rng: np.random.Generator,
    *,
    prior_mask_prob: float = 0.2,
    first_click_deepest: float = 0.5,
    click_k: float = 1.7,
    prior_max_change: float = 0.15,
    others: np.ndarray | None = None,
    prior_leak_prob: float = 0.0,
) -> tuple[torch.Tensor, np.ndarray]:
    """Starting reference maps and clicked-pixel records for a batch.

    Parameters
    ----------
    gt, valid : ndarray of bool, shape (B, T, T)
    others : ndarray of int, shape (B, T, T), optional
        Instance labels of each view (the object's own pixels are ignored). With probability
        ``prior_leak_prob`` a prior also covers parts of neighbouring objects
        (:func:`leak_into_neighbours`) and starts with a positive click on the
        object, as after a first click that leaked; the correcting click then
        usually is a negative one on a neighbour.

    Returns
    -------
    ref : Tensor of shape (B, 1, T, T), uint8 (CPU)
    prior : ndarray of bool, shape (B,)
        Which samples started from a prior mask.
    """
    b, t, _ = gt.shape
    ref = new_reference_map(t, t, batch=b)
    prior = np.zeros(b, bool)
    for i in range(b):
        if rng.random() < prior_mask_prob:
            mask = perturb_mask(gt[i], rng, prior_max_change)
            leak = (
                others is not None and prior_leak_prob > 0 and rng.random() < prior_leak_prob
            )
            if leak:
                mask |= leak_into_neighbours(gt[i], others[i], rng)
            mask &= valid[i]
            ref[i : i + 1] = reference_from_mask(torch.from_numpy(mask)[None, None])
            if leak:
                start = first_click(gt[i], rng, deepest_prob=first_click_deepest, k=click_k)
                if start is not None:
                    paint_clicks(ref, [start], CLICK_RADIUS, batch_index=i)
            click = random_error_click(gt[i], mask, rng, k=click_k, valid=valid[i])
            prior[i] = True
        else:
            click = first_click(gt[i], rng, deepest_prob=first_click_deepest, k=click_k)
        if click is not None:
            paint_clicks(ref, [click], CLICK_RADIUS, batch_index=i)
    return ref, prior


def add_error_clicks(
    ref: torch.Tensor,
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray,
    rng: np.random.Generator,
    click_k: float = 1.7,
) -> torch.Tensor:
    """Paint one random error-region click per sample into ``ref`` (in place)."""
    for i in range(gt.shape[0]):
        click = random_error_click(gt[i], pred[i], rng, k=click_k, valid=valid[i])
        if click is not None:
            paint_clicks(ref, [click], CLICK_RADIUS, batch_index=i)
    return ref


def object_token_boxes(gt: torch.Tensor, stride: int = TOKEN_STRIDE) -> list:
    """Token boxes (r0, r1, c0, c1) of each object of ``gt`` (B, 1, T, T); None if empty."""
    small = coarse_target(gt, None, stride)[0][:, 0]
    return [mask_bbox(m) for m in small]


def _autocast(device: torch.device, enabled: bool):
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(
    model,
    optimizer: torch.optim.Optimizer,
    image: torch.Tensor,
    embedding: torch.Tensor,
    gt: torch.Tensor,
    valid: torch.Tensor,
    rng: np.random.Generator,
    *,
    max_rounds: int = 20,
    rounds_gamma: float = 0.6,
    click_k: float = 1.7,
    first_click_deepest: float = 0.5,
    prior_mask_prob: float = 0.2,
    prior_max_change: float = 0.15,
    prior_leak_prob: float = 0.0,
    others: torch.Tensor | None = None,
    coarse_loss_weight: float = 1.0,
    vq_loss_weight: float = 1.0,
    iou_loss_weight: float = 0.0,
    grad_clip: float | None = 1.0,
    amp: bool = True,
    num_rounds: int | None = None,
    edges: tuple[torch.Tensor, ...] | None = None,
    local: bool = False,
    micro_batches: int = 1,
    dlu_rule: str = "threshold",
) -> dict[str, float]:
    """Simulate clicks on a batch and take one optimiser step.

    Parameters
    ----------
    model : Inter2Former
    optimizer : torch Optimizer over the trainable parameters
    image : Tensor of shape (B, 3, T, T)
        Normalised network input (edge net input).
    embedding : Tensor of shape (B, C, T/16, T/16)
        Cached encoder output.
    gt, valid : Tensor of shape (B, 1, T, T), bool
        The object, and the image part of the grid.
    rng : numpy Generator
    others : Tensor of shape (B, 1, T, T), integer, optional
        Instance labels of each view, for ``prior_leak_prob``
        (see :func:`initial_reference`).
    num_rounds : int, optional
        Force the number of no-grad rounds (default: drawn).
    edges : tuple of 4 Tensors, optional
        Precomputed edge maps of ``image`` (a frozen edge net): the edge net is
        neither run nor trained.
    local : bool
        Run the no-grad rounds through ``model.decode`` image by image (the
        inference path) and the gradient round through ``model.forward_local``
        (DLU and the NFL only on the box inference upsamples, widened to the
        object): the same model, several times cheaper per step on a CPU.
    micro_batches : int
        Split the batch into this many parts, each simulated and back-propagated
        on its own (gradients accumulate), then take one optimiser step: a large
        batch in the memory and time of a small one.
    dlu_rule : {'threshold', 'clicked'}
        DLU's box rule in the local path (:meth:`Inter2Former.decode`).

    Returns
    -------
    dict of float
        ``loss``, ``nfl``, ``coarse``, ``vq``, ``iou`` (of the trained round),
        ``rounds``, ``grad_norm``, ``skipped`` (1.0 when the gradient was not finite and
        the optimiser step was skipped).
    """
    if not 1 <= micro_batches <= len(image):
        raise ValueError(
            f"micro_batches must be in 1..{len(image)} (the batch size), got {micro_batches}"
        )
    optimizer.zero_grad(set_to_none=True)
    model.train()
    model.image_encoder.eval()  # frozen (its BatchNorm statistics must not move)
    if edges is not None:
        model.edge_net.eval()
    totals: dict[str, float] = {}
    rounds = []
    for index in np.array_split(np.arange(len(image)), micro_batches):
        part = slice(int(index[0]), int(index[-1]) + 1)
        weight = len(index) / len(image)
        losses, n = _simulate_and_backward(
            model,
            image[part],
            embedding[part],
            gt[part],
            valid[part],
            rng,
            None if edges is None else tuple(e[part] for e in edges),
            weight=weight,
            num_rounds=num_rounds,
            max_rounds=max_rounds,
            rounds_gamma=rounds_gamma,
            click_k=click_k,
            first_click_deepest=first_click_deepest,
            prior_mask_prob=prior_mask_prob,
            prior_max_change=prior_max_change,
            prior_leak_prob=prior_leak_prob,
            others=None if others is None else others[part],
            coarse_loss_weight=coarse_loss_weight,
            vq_loss_weight=vq_loss_weight,
            iou_loss_weight=iou_loss_weight,
            amp=amp,
            local=local,
            dlu_rule=dlu_rule,
        )
        for key, value in losses.items():
            totals[key] = totals.get(key, 0.0) + weight * float(value.detach())
        rounds.append(n)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if grad_clip:
        grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    else:
        grad_norm = torch.sqrt(
            sum((p.grad.float() ** 2).sum() for p in params if p.grad is not None)
        )
    # a non-finite gradient (a bf16 overflow, a broken sample) would ruin the weights: skip it
    skipped = not bool(torch.isfinite(grad_norm))
    if skipped:
        optimizer.zero_grad(set_to_none=True)
    else:
        optimizer.step()
    result = dict(totals)
    result["rounds"] = float(np.mean(rounds))
    result["grad_norm"] = float(grad_norm)
    result["skipped"] = float(skipped)
    return result


def _simulate_and_backward(
    model,
    image,
    embedding,
    gt,
    valid,
    rng,
    edges,
    *,
    weight: float,
    num_rounds: int | None,
    max_rounds: int,
    rounds_gamma: float,
    click_k: float,
    first_click_deepest: float,
    prior_mask_prob: float,
    prior_max_change: float,
    prior_leak_prob: float,
    others,
    coarse_loss_weight: float,
    vq_loss_weight: float,
    iou_loss_weight: float,
    amp: bool,
    local: bool,
    dlu_rule: str,
) -> tuple[dict[str, torch.Tensor], int]:
    """Click simulation and the backward pass of ``weight`` x loss for one (micro-)batch."""
    device = image.device
    gt_np = gt[:, 0].cpu().numpy()
    valid_np = valid[:, 0].cpu().numpy()
    ref, _ = initial_reference(
        gt_np,
        valid_np,
        rng,
        prior_mask_prob=prior_mask_prob,
        first_click_deepest=first_click_deepest,
        click_k=click_k,
        prior_max_change=prior_max_change,
        others=None if others is None else others[:, 0].cpu().numpy(),
        prior_leak_prob=prior_leak_prob,
    )
    ref = ref.to(device)
    n = (
        draw_num_rounds(rng, max_rounds, rounds_gamma)
        if num_rounds is None
        else int(num_rounds)
    )
    if edges is None:
        with _autocast(device, amp):
            edges = tuple(model.edge_net(image))
    if n > 0:
        frozen = ImageFeatures(embedding, tuple(e.detach() for e in edges))
        was_training = [(m, m.training) for m in (model.decoder, model.upsampler)]
        for m, _ in was_training:
            m.eval()
        with torch.no_grad():
            for _ in range(n):
                with _autocast(device, amp):
                    if local:
                        logits = torch.cat(
                            [
                                model.decode(frozen[i], ref[i : i + 1], dlu_rule=dlu_rule)
                                for i in range(len(ref))
                            ]
                        )
                    else:
                        logits = model.forward_train(frozen, ref)["logits"]
                pred = logits > 0
                ref = update_by_prediction(ref, pred)
                ref_cpu = ref.cpu()
                add_error_clicks(
                    ref_cpu, pred[:, 0].cpu().numpy(), gt_np, valid_np, rng, click_k
                )
                ref = ref_cpu.to(device)
        for m, mode in was_training:
            m.train(mode)
    feats = ImageFeatures(embedding, edges)
    with _autocast(device, amp):
        if local:
            out = model.forward_local(
                feats, ref, object_token_boxes(gt), dlu_rule=dlu_rule
            )
        else:
            out = model.forward_train(feats, ref)
    losses = interactive_loss(
        out,
        gt,
        valid,
        coarse_weight=coarse_loss_weight,
        vq_weight=vq_loss_weight,
        iou_weight=iou_loss_weight,
    )
    (weight * losses["loss"]).backward()
    return losses, n
