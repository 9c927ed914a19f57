"""Dynamic Prompt Embedding (DPE): the reference map as a dense prompt.

Each pixel's reference code (0..4) gets a learned 5-vector; a stack of four
3 x 3 stride-2 convolutions (ReLU after each) brings it to the token grid
(stride 16) and the result is added to the image embedding.

DPE only convolves the box around every pixel that is *not* POSSIBLY_BACKGROUND
(previous foreground, click discs, UNKNOWN pixels), snapped outward to the token
stride and grown by one stride per side. Tokens outside the box get ``e_bg``,
the response of the conv stack to an infinite POSSIBLY_BACKGROUND field. The
conv stack's receptive field is 31 px (token i sees pixels 16 i - 15 .. 16 i + 15),
so outside the box this is exact, and inside the box only the first token row
and column (where the crop's zero padding replaces real pixels) can differ
from a whole-image run.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from ..constants import NUM_REFERENCE_CODES, POSSIBLY_BACKGROUND, TOKEN_STRIDE
from .common import ParameterCache, mask_bbox

__all__ = ["DynamicPromptEmbedding", "prompt_box"]


def prompt_box(
    ref: torch.Tensor, stride: int = TOKEN_STRIDE
) -> tuple[int, int, int, int]:
    """The DPE box of one reference map, in pixels.

    Parameters
    ----------
    ref : Tensor of shape (H, W), integer codes
        One reference map (H and W multiples of ``stride``).
    stride : int
        Token stride.

    Returns
    -------
    (r0, r1, c0, c1) : tuple of int
        End-exclusive pixel box around the pixels with code != POSSIBLY_BACKGROUND,
        snapped outward to multiples of ``stride``, grown by ``stride`` per side and
        clipped to the map. The whole map when every pixel is POSSIBLY_BACKGROUND.
    """
    h, w = ref.shape
    box = mask_bbox(ref != POSSIBLY_BACKGROUND)
    if box is None:
        return 0, h, 0, w
    return _snap_box(box, stride, h, w)


def _snap_box(box, stride: int, height: int, width: int) -> tuple[int, int, int, int]:
    """Snap a pixel box outward to multiples of ``stride``, grow it by one stride, clip."""
    r0, r1, c0, c1 = box
    r0 = max((r0 // stride - 1) * stride, 0)
    c0 = max((c0 // stride - 1) * stride, 0)
    r1 = min((-(-r1 // stride) + 1) * stride, height)
    c1 = min((-(-c1 // stride) + 1) * stride, width)
    return r0, r1, c0, c1


class DynamicPromptEmbedding(nn.Module):
    """Reference map -> prompt embedding on the token grid.

    Parameters
    ----------
    embed_dim : int
        Output channels C (the image embedding width).
    hidden_dims : tuple of int
        Output channels of the first convs; the last conv outputs ``embed_dim``.
        Four convs in all (stride 2 each, total stride 16).
    """

    stride = TOKEN_STRIDE

    def __init__(
        self, embed_dim: int = 256, hidden_dims: tuple[int, ...] = (32, 64, 128)
    ) -> None:
        super().__init__()
        if len(hidden_dims) != 3:
            raise ValueError(
                "hidden_dims must hold 3 widths (4 stride-2 convs give stride 16)"
            )
        self.embed_dim = embed_dim
        self.ref_embed = nn.Embedding(NUM_REFERENCE_CODES, NUM_REFERENCE_CODES)
        dims = (NUM_REFERENCE_CODES, *hidden_dims, embed_dim)
        layers: list[nn.Module] = []
        for cin, cout in pairwise(dims):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self._fields_cache = ParameterCache()

    def embed(self, ref: torch.Tensor) -> torch.Tensor:
        """Run the conv stack on a whole map (or crop).

        Parameters
        ----------
        ref : Tensor of shape (B, 1, h, w), integer codes (h, w multiples of 16)

        Returns
        -------
        Tensor of shape (B, C, h / 16, w / 16)
        """
        x = self.ref_embed(ref[:, 0].long())  # (B, h, w, 5)
        return self.convs(x.permute(0, 3, 1, 2))  # (B, 5, h, w) -> (B, C, h/16, w/16)

    def _compute_fields(self) -> torch.Tensor:
        device = self.ref_embed.weight.device
        patches = torch.arange(NUM_REFERENCE_CODES, device=device).view(-1, 1, 1, 1)
        patches = patches.expand(-1, 1, 3 * self.stride, 3 * self.stride)
        # centre token of a 3 x 3 token patch: no zero padding in its receptive field
        return self.embed(patches)[:, :, 1, 1]

    def uniform_fields(self) -> torch.Tensor:
        """e_c for every code c, shape (5, C): the embedding of an infinite field of code c.

        Cached when autograd is off; recomputed after any weight change.
        """
        if torch.is_grad_enabled():
            return self._compute_fields()
        return self._fields_cache.get(self.parameters(), self._compute_fields)

    def background(self) -> torch.Tensor:
        """e_bg, shape (C,): the embedding of an infinite POSSIBLY_BACKGROUND field."""
        return self.uniform_fields()[POSSIBLY_BACKGROUND]

    def forward(
        self, ref: torch.Tensor, box: tuple[int, int, int, int] | None = None
    ) -> torch.Tensor:
        """Prompt embedding of one map, convolving only inside ``box``.

        Parameters
        ----------
        ref : Tensor of shape (1, 1, H, W), integer codes
        box : (r0, r1, c0, c1), optional
            Pixel box, multiples of 16 (default: :func:`prompt_box`). The whole
            map gives the plain dense embedding.

        Returns
        -------
        Tensor of shape (1, C, H / 16, W / 16)
        """
        if ref.shape[0] != 1:
            raise ValueError(
                f"the cropped DPE path takes one map, got a batch of {ref.shape[0]}"
            )
        _, _, h, w = ref.shape
        s = self.stride
        r0, r1, c0, c1 = prompt_box(ref[0, 0], s) if box is None else box
        if (r0, r1, c0, c1) == (0, h, 0, w):
            return self._embed_box(ref)
        out = (
            self.background()
            .view(1, -1, 1, 1)
            .expand(1, self.embed_dim, h // s, w // s)
        )
        out = out.clone()
        out[:, :, r0 // s : r1 // s, c0 // s : c1 // s] = self._embed_box(
            ref[:, :, r0:r1, c0:c1]
        )
        return out

    def _embed_box(self, crop: torch.Tensor) -> torch.Tensor:
        """Embed a crop, convolving only around its code changes.

        A token whose 31-px receptive field holds one code c is exactly ``e_c``, so
        only the box around the pixels where the code changes (snapped outward, one
        stride of margin, as for the DPE box) is convolved; e.g. on a first click (an
        UNKNOWN map with one disc) that is the disc's box instead of the whole image.
        """
        s = self.stride
        _, _, h, w = crop.shape
        codes = crop[0, 0]
        change = torch.zeros((h, w), dtype=torch.bool, device=crop.device)
        horizontal = codes[:, 1:] != codes[:, :-1]
        vertical = codes[1:, :] != codes[:-1, :]
        change[:, 1:] |= horizontal
        change[:, :-1] |= horizontal
        change[1:, :] |= vertical
        change[:-1, :] |= vertical
        box = mask_bbox(change)
        centres = codes[s // 2 :: s, s // 2 :: s].long()  # (h/16, w/16) code at each token
        out = self.uniform_fields()[centres].permute(2, 0, 1)[None]  # (1, C, h/16, w/16)
        if box is None:
            return out
        r0, r1, c0, c1 = _snap_box(box, s, h, w)
        if (r0, r1, c0, c1) == (0, h, 0, w):
            return self.embed(crop)
        out = out.clone()
        out[:, :, r0 // s : r1 // s, c0 // s : c1 // s] = self.embed(crop[:, :, r0:r1, c0:c1])
        return out
