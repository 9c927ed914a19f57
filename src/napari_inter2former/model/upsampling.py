"""Dynamic Local Upsampling (DLU): token grid -> full-resolution logits, only where needed.

A coarse localiser (1 x 1 convs C -> C/4 -> C/16 -> C/64 -> 1, SiLU between)
scores every token; the upsampler runs only on the bounding box of the tokens
scoring above ``threshold`` (-2.0: recall-oriented). Four x2 stages: GroupNorm(1, C)
over the crop -> bicubic x2 -> + edge map (cropped alike) -> conv 3 x 3 (C -> C/4,
SiLU except after the last). The result is pasted into a canvas of -100.

Training (``forward_train``) upsamples the whole image and also returns the
coarse logits for their auxiliary loss; the localiser sees detached features.
The cheaper local training path upsamples one box per image with
:meth:`DynamicLocalUpsampling.upsample_box`, as inference does.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..constants import DLU_THRESHOLD, OUTSIDE_LOGIT
from .common import grow_box, mask_bbox

__all__ = ["DynamicLocalUpsampling", "stage_channels"]

NUM_STAGES = 4


def stage_channels(embed_dim: int) -> tuple[int, ...]:
    """Input channels of the four stages and the output: (C, C/4, C/16, C/64, 1)."""
    return tuple(max(embed_dim // 4**j, 1) for j in range(NUM_STAGES)) + (1,)


class UpsampleStage(nn.Module):
    """GroupNorm(1, C) -> bicubic x2 -> + edge map -> conv3x3 (-> SiLU)."""

    def __init__(
        self, in_channels: int, out_channels: int, activate: bool, eps: float = 1e-5
    ) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, in_channels, eps=eps)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.activate = activate

    def forward(
        self,
        x: torch.Tensor,
        edge: torch.Tensor,
        stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, C, h, w), edge (B, C, 2h, 2w) -> (B, C', 2h, 2w) and the (mean, var) used.

        ``stats`` (each of shape (B, 1, 1, 1)) replaces the GroupNorm statistics of x.
        """
        if stats is None:
            var, mean = torch.var_mean(x, dim=(1, 2, 3), keepdim=True, correction=0)
            stats = (mean, var)
        mean, var = stats
        x = (x - mean) * torch.rsqrt(var + self.norm.eps)
        x = x * self.norm.weight[:, None, None] + self.norm.bias[:, None, None]
        x = F.interpolate(x, scale_factor=2.0, mode="bicubic", align_corners=False)
        x = self.conv(x + edge)
        return (F.silu(x) if self.activate else x), stats


class DynamicLocalUpsampling(nn.Module):
    """Coarse localiser + four x2 upsampling stages.

    Parameters
    ----------
    embed_dim : int
        Token width C.
    threshold : float
        Coarse-logit threshold of the upsampling box.
    """

    def __init__(self, embed_dim: int = 256, threshold: float = DLU_THRESHOLD) -> None:
        super().__init__()
        self.threshold = threshold
        ch = stage_channels(embed_dim)
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(pairwise(ch)):
            layers.append(nn.Conv2d(cin, cout, 1))
            if i < NUM_STAGES - 1:
                layers.append(nn.SiLU())
        self.localiser = nn.Sequential(*layers)
        self.stages = nn.ModuleList(
            UpsampleStage(ch[j], ch[j + 1], activate=j < NUM_STAGES - 1)
            for j in range(NUM_STAGES)
        )

    @property
    def edge_channels(self) -> tuple[int, ...]:
        """Channels of the edge maps the stages expect, coarsest first."""
        return tuple(stage.norm.num_channels for stage in self.stages)

    def upsample(
        self,
        g: torch.Tensor,
        edges: tuple[torch.Tensor, ...],
        stats: list | None = None,
    ) -> tuple[torch.Tensor, list]:
        """Run the four stages.

        Parameters
        ----------
        g : Tensor of shape (B, C, h, w)
        edges : 4 tensors, (B, C_j, 2^(j+1) h, 2^(j+1) w), coarsest first
        stats : list of 4 (mean, var), optional
            GroupNorm statistics to use instead of those of the input.

        Returns
        -------
        logits : Tensor of shape (B, 1, 16 h, 16 w)
        stats : list of 4 (mean, var) actually used
        """
        used = []
        x = g
        for j, (stage, edge) in enumerate(zip(self.stages, edges)):
            x, st = stage(x, edge, None if stats is None else stats[j])
            used.append(st)
        return x, used

    def roi(
        self, coarse: torch.Tensor, seeds: torch.Tensor | None = None
    ) -> tuple[int, int, int, int]:
        """Token box (r0, r1, c0, c1) of coarse logits (H', W') above the threshold; all if none.

        With ``seeds`` (bool, (H', W'): the tokens of the positive clicks) the box covers
        only the 8-connected groups of above-threshold tokens that hold a seed, grown by
        one token; without such a group it is the usual box.
        """
        above = coarse > self.threshold
        if seeds is not None:
            box = mask_bbox(_groups_at(above, seeds))
            if box is not None:
                return grow_box(box, 1, tuple(coarse.shape))
        box = mask_bbox(above)
        return (0, coarse.shape[0], 0, coarse.shape[1]) if box is None else box

    def forward(
        self,
        g: torch.Tensor,
        edges: tuple[torch.Tensor, ...],
        dense: bool = False,
        seeds: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        """Eval path for one image.

        Parameters
        ----------
        g : Tensor of shape (1, C, H', W')
        edges : 4 tensors, coarsest first, (1, C_j, 2^(j+1) H', 2^(j+1) W')
        dense : bool
            Upsample the whole image (reference variant).
        seeds : Tensor of bool, shape (H', W'), optional
            Tokens of the positive clicks: upsample only the localiser's token groups
            that hold one (:meth:`roi`).

        Returns
        -------
        logits : Tensor of shape (1, 1, 16 H', 16 W'); OUTSIDE_LOGIT outside the box
        box : (r0, r1, c0, c1) token box that was upsampled
        """
        _, _, gh, gw = g.shape
        if dense:
            box = (0, gh, 0, gw)
        else:
            box = self.roi(self.localiser(g)[0, 0], seeds)
        if box == (0, gh, 0, gw):
            return self.upsample(g, edges)[0], box
        local = self.upsample_box(g, edges, box)
        r0, r1, c0, c1 = box
        s = 2**NUM_STAGES
        out = torch.full(
            (1, 1, gh * s, gw * s),
            OUTSIDE_LOGIT,
            dtype=local.dtype,
            device=local.device,
        )
        out[:, :, r0 * s : r1 * s, c0 * s : c1 * s] = local
        return out, box

    def upsample_box(
        self,
        g: torch.Tensor,
        edges: tuple[torch.Tensor, ...],
        box: tuple[int, int, int, int],
    ) -> torch.Tensor:
        """Upsample the token box ``box`` = (r0, r1, c0, c1) alone (GroupNorm over the crop).

        Parameters
        ----------
        g : Tensor of shape (B, C, H', W')
        edges : 4 tensors, coarsest first, (B, C_j, 2^(j+1) H', 2^(j+1) W')

        Returns
        -------
        Tensor of shape (B, 1, 16 (r1 - r0), 16 (c1 - c0))
        """
        r0, r1, c0, c1 = box
        crops = [
            e[
                :,
                :,
                r0 * 2 ** (j + 1) : r1 * 2 ** (j + 1),
                c0 * 2 ** (j + 1) : c1 * 2 ** (j + 1),
            ]
            for j, e in enumerate(edges)
        ]
        return self.upsample(g[:, :, r0:r1, c0:c1], crops)[0]

    def forward_train(
        self, g: torch.Tensor, edges: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole-image path over a batch.

        Returns
        -------
        logits : Tensor of shape (B, 1, 16 H', 16 W')
        coarse_logits : Tensor of shape (B, 1, H', W') (localiser on detached g)
        """
        return self.upsample(g, edges)[0], self.localiser(g.detach())


def _groups_at(mask: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """The 8-connected groups of the (H', W') bool ``mask`` that hold a ``seeds`` token."""
    from scipy import ndimage as ndi

    groups, _ = ndi.label(mask.cpu().numpy(), structure=np.ones((3, 3), bool))
    hit = np.unique(groups[seeds.cpu().numpy() & (groups > 0)])
    return torch.from_numpy(np.isin(groups, hit[hit > 0]))
