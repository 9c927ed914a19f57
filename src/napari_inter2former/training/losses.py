"""Training losses: normalized focal loss (NFL) on the full-resolution and coarse logits.

NFL (Sofiiuk et al., "Reviving iterative training with mask guidance", 2021) is a
focal loss whose focal weights are rescaled per image so that they sum to the
number of valid pixels; the rescaling factor is treated as a constant (no
gradient). With ``p_t`` the predicted probability of the true class,

    w = (1 - p_t) ** gamma,    w_hat = w * n_valid / sum(w)   (detached factor)
    loss = sum(-alpha_t * w_hat * log(p_t)) / n_valid

per image (sums over valid pixels, ``alpha_t = alpha`` for foreground and
``1 - alpha`` for background), averaged over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "batch_iou",
    "coarse_target",
    "interactive_loss",
    "normalized_focal_loss",
    "soft_iou_loss",
]


def normalized_focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    alpha: float = 0.5,
    gamma: float = 2.0,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Normalized focal loss, mean over the batch.

    Parameters
    ----------
    logits : Tensor of shape (B, 1, H, W)
    target : Tensor of shape (B, 1, H, W), bool or {0, 1}
    valid : Tensor of shape (B, 1, H, W), bool, optional
        Pixels that count (default: all).
    alpha, gamma : float
        Class balance and focusing parameter.

    Returns
    -------
    Tensor, scalar
    """
    _check_same_shape(logits, target)
    x = logits.float()
    y = target.bool()
    w_valid = torch.ones_like(x) if valid is None else valid.to(x.dtype)
    log_pt = torch.where(
        y, F.logsigmoid(x), F.logsigmoid(-x)
    )  # log p of the true class
    pt = log_pt.exp()
    alpha_t = torch.where(y, torch.full_like(x, alpha), torch.full_like(x, 1.0 - alpha))
    focal = (1.0 - pt).pow(gamma) * w_valid
    dims = tuple(range(1, x.ndim))
    n_valid = w_valid.sum(dim=dims, keepdim=True)
    scale = (n_valid / (focal.sum(dim=dims, keepdim=True) + eps)).detach()
    per_pixel = -alpha_t * focal * scale * log_pt
    per_image = per_pixel.sum(dim=dims) / (n_valid.flatten() + eps)
    return per_image.mean()


def _check_same_shape(logits: torch.Tensor, target: torch.Tensor) -> None:
    if logits.shape != target.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape"
        )


def soft_iou_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    smooth: float = 1.0,
) -> torch.Tensor:
    """One minus the soft Jaccard index of ``sigmoid(logits)``, mean over the batch.

    Unlike the per-pixel NFL, its gradient scales with the object: a one-pixel
    rim that costs a small nucleus a fifth of its IoU weighs as much as a large
    object's missing fifth.

    Parameters
    ----------
    logits : Tensor of shape (B, 1, H, W)
    target : Tensor of shape (B, 1, H, W), bool or {0, 1}
    valid : Tensor of shape (B, 1, H, W), bool, optional
    smooth : float
        Added to intersection and union (an empty target and empty prediction
        give 0 loss).

    Returns
    -------
    Tensor, scalar
    """
    _check_same_shape(logits, target)
    p = torch.sigmoid(logits.float())
    y = target.float()
    if valid is not None:
        p = p * valid
        y = y * valid
    inter = (p * y).flatten(1).sum(1)
    union = (p + y).flatten(1).sum(1) - inter
    return (1.0 - (inter + smooth) / (union + smooth)).mean()


def coarse_target(
    gt: torch.Tensor, valid: torch.Tensor | None, stride: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Ground truth and validity on the token grid: a token is foreground if any pixel is.

    Parameters
    ----------
    gt, valid : Tensor of shape (B, 1, H, W), bool
    stride : int

    Returns
    -------
    (Tensor, Tensor or None) of shape (B, 1, H/stride, W/stride), bool
    """
    small = F.max_pool2d(gt.float(), stride) > 0.5
    small_valid = None if valid is None else F.max_pool2d(valid.float(), stride) > 0.5
    return small, small_valid


def batch_iou(
    logits: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean IoU of ``logits > 0`` against ``gt`` (both (B, 1, H, W)), a metric only."""
    pred = logits.detach() > 0
    gt = gt.bool()
    if valid is not None:
        pred = pred & valid
        gt = gt & valid
    inter = (pred & gt).flatten(1).sum(1).float()
    union = (pred | gt).flatten(1).sum(1).float()
    return torch.where(
        union > 0, inter / union.clamp_min(1), torch.ones_like(union)
    ).mean()


def interactive_loss(
    out: dict,
    gt: torch.Tensor,
    valid: torch.Tensor | None,
    *,
    coarse_weight: float = 1.0,
    vq_weight: float = 1.0,
    iou_weight: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Total loss of one gradient step from the model's training outputs.

    Parameters
    ----------
    out : dict
        ``coarse_logits`` (B, 1, T/s, T/s), ``vq_loss`` scalar, and either
        ``logits`` (B, 1, T, T) (output of ``model.forward_train``) or ``crops``
        + ``boxes`` (output of ``model.forward_local``: the NFL and IoU are then
        taken over each image's crop).
    gt, valid : Tensor of shape (B, 1, T, T), bool
    coarse_weight, vq_weight, iou_weight : float
        Weights of the coarse localiser's NFL, the BSQ commitment loss and the
        soft IoU loss on the full-resolution logits (:func:`soft_iou_loss`).

    Returns
    -------
    dict
        ``loss`` (to minimise), ``nfl``, ``coarse``, ``vq``, ``soft_iou`` (detached
        parts) and ``iou``.
    """
    coarse = out["coarse_logits"]
    stride = gt.shape[-1] // coarse.shape[-1]
    if "crops" in out:
        parts = []
        for i, (logits, (r0, r1, c0, c1)) in enumerate(zip(out["crops"], out["boxes"])):
            rows, cols = slice(r0 * stride, r1 * stride), slice(c0 * stride, c1 * stride)
            v = None if valid is None else valid[i : i + 1, :, rows, cols]
            parts.append((logits, gt[i : i + 1, :, rows, cols], v))
    else:
        parts = [(out["logits"], gt, valid)]
    nfl = torch.stack([normalized_focal_loss(*p) for p in parts]).mean()
    iou = torch.stack([batch_iou(*p) for p in parts]).mean()
    soft_iou = torch.stack([soft_iou_loss(*p) for p in parts]).mean()
    small_gt, small_valid = coarse_target(gt, valid, stride)
    nfl_coarse = normalized_focal_loss(coarse, small_gt, small_valid)
    vq = out["vq_loss"].float()
    loss = nfl + coarse_weight * nfl_coarse + vq_weight * vq
    if iou_weight:
        loss = loss + iou_weight * soft_iou
    return {
        "loss": loss,
        "nfl": nfl.detach(),
        "coarse": nfl_coarse.detach(),
        "vq": vq.detach(),
        "soft_iou": soft_iou.detach(),
        "iou": iou,
    }
