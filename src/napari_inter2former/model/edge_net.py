"""Edge net: a fixed Canny front-end and a small CNN giving the four edge maps of DLU.

The front-end (no learning) turns the image into five maps: gradient magnitude,
gradient orientation, thinned edges (non-maximum suppression), thresholded thin
edges and thresholded magnitude; each is L2-normalised over the image. The CNN
then builds a feature pyramid whose levels (full, 1/2, 1/4, 1/8 resolution) are
added to the DLU upsampling stages. Returned coarsest first.

Two layouts: the official CannyNet (widths (4, 16, 64, 256), four residual
blocks per stage, 5.3 M parameters) and the slim default (widths (4, 8, 16, 32),
one block per stage); in both, zero-initialised 1 x 1 lateral convolutions map
each stage to the channels DLU needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..constants import PIXEL_MEAN, PIXEL_STD

__all__ = ["CannyFrontEnd", "EdgeNet"]

CANNY_THRESHOLD = 2.0
# neighbour offsets (dy, dx) of the 8 NMS directions: right, bottom-right, bottom,
# bottom-left, left, top-left, top, top-right (direction d = orientation / 45 mod 8)
_NEIGHBOURS = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))


class CannyFrontEnd(nn.Module):
    """Fixed differentiable-style Canny maps from a normalised image.

    Parameters
    ----------
    threshold : float
        Magnitude below which the "thresh" and "early" maps are zeroed.

    Shapes: (B, 3, H, W) normalised image -> (B, 5, H, W) maps
    (grad_mag, grad_ori, thin, thresh, early), each L2-normalised over (H, W).
    """

    def __init__(self, threshold: float = CANNY_THRESHOLD) -> None:
        super().__init__()
        self.threshold = threshold
        g = torch.exp(
            -(torch.arange(-2, 3, dtype=torch.float32) ** 2) / 2.0
        )  # sigma = 1
        g = g / g.sum()
        sobel = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
        nms = torch.zeros(8, 1, 3, 3)
        for d, (dy, dx) in enumerate(_NEIGHBOURS):
            nms[d, 0, 1, 1] = 1.0
            nms[d, 0, 1 + dy, 1 + dx] = -1.0
        self.register_buffer(
            "mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("gauss_h", g.view(1, 1, 1, 5), persistent=False)
        self.register_buffer("gauss_v", g.view(1, 1, 5, 1), persistent=False)
        self.register_buffer("sobel_h", sobel.view(1, 1, 3, 3), persistent=False)
        self.register_buffer(
            "sobel_v", sobel.t().contiguous().view(1, 1, 3, 3), persistent=False
        )
        self.register_buffer("nms", nms, persistent=False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        img = ((x * self.std + self.mean) / 255.0).clamp(0.0, 1.0)
        img = img.reshape(b * c, 1, h, w)  # (B*3, 1, H, W): every channel alone
        img = F.conv2d(img, self.gauss_h, padding=(0, 2))
        img = F.conv2d(img, self.gauss_v, padding=(2, 0))
        gx = F.conv2d(img, self.sobel_h, padding=1).view(b, c, h, w)
        gy = F.conv2d(img, self.sobel_v, padding=1).view(b, c, h, w)
        mag = torch.sqrt(gx * gx + gy * gy).sum(1, keepdim=True)  # (B, 1, H, W)
        ori = (
            torch.rad2deg(torch.atan2(gy.sum(1, keepdim=True), gx.sum(1, keepdim=True)))
            + 180.0
        )
        ori = torch.round(ori / 45.0) * 45.0  # multiples of 45 in [0, 360]
        diffs = F.conv2d(mag, self.nms, padding=1)  # (B, 8, H, W): centre - neighbour
        d = (ori / 45.0).long() % 8
        pos = diffs.gather(1, d)
        neg = diffs.gather(1, (d + 4) % 8)
        thin = mag * ((pos > 0) & (neg > 0))
        thresh = thin * (thin >= self.threshold)
        early = mag * (mag >= self.threshold)
        maps = torch.cat([mag, ori, thin, thresh, early], dim=1)  # (B, 5, H, W)
        norm = maps.flatten(2).norm(dim=2).clamp_min(1e-12)[:, :, None, None]
        return maps / norm


class ResBlock(nn.Module):
    """Pre-activation residual block: (GN -> SiLU -> conv3x3) x 2 plus identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(1, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(1, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(y)))


class EdgeNet(nn.Module):
    """Canny front-end + CNN pyramid giving DLU's edge maps.

    Parameters
    ----------
    out_channels : tuple of 4 int
        Channels of the outputs, finest first, e.g. (C/64, C/16, C/4, C) for a
        decoder of width C.
    widths : tuple of 4 int
        Internal widths of the four stages (full, 1/2, 1/4, 1/8 resolution).
    depth : int
        Residual blocks per stage.
    zero_init_laterals : bool
        Start with zero lateral convs, so the edge maps are zero at initialisation.

    Shapes: (B, 3, T, T) normalised image -> tuple of 4 tensors, coarsest first:
    (B, out[3], T/8, T/8), (B, out[2], T/4, T/4), (B, out[1], T/2, T/2), (B, out[0], T, T).
    """

    def __init__(
        self,
        out_channels: tuple[int, int, int, int],
        widths: tuple[int, int, int, int] = (4, 8, 16, 32),
        depth: int = 1,
        zero_init_laterals: bool = True,
    ) -> None:
        super().__init__()
        if len(out_channels) != 4 or len(widths) != 4:
            raise ValueError(
                "out_channels and widths must have 4 entries (one per stage)"
            )
        self.canny = CannyFrontEnd()
        self.stem = nn.Conv2d(5, widths[0], 3, padding=1)
        self.stages = nn.ModuleList(
            nn.Sequential(*[ResBlock(c) for c in [w] * depth]) for w in widths
        )
        self.laterals = nn.ModuleList(
            nn.Conv2d(w, o, 1) for w, o in zip(widths, out_channels)
        )
        self.downsamplers = nn.ModuleList(
            nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1)
            for i in range(3)
        )
        if zero_init_laterals:
            for conv in self.laterals:
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(
                f"image sides must be multiples of 8, got {tuple(x.shape[-2:])}"
            )
        h = self.stem(self.canny(x))
        outs = []
        for i, (stage, lateral) in enumerate(zip(self.stages, self.laterals)):
            h = stage(h)
            outs.append(lateral(h))
            if i < 3:
                h = self.downsamplers[i](h)
        return tuple(outs[::-1])


def count_parameters(module: nn.Module) -> int:
    """Number of parameters of a module."""
    return sum(p.numel() for p in module.parameters())
