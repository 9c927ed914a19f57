"""TinyViT image encoder of MobileSAM ("vit_t"), written from the architecture description.

The network maps a normalised (B, 3, T, T) image to a (B, 256, T/16, T/16) embedding:

- ``patch_embed``: two stride-2 3x3 convolutions (T -> T/4);
- ``layers[0]``: MBConv (inverted-residual) blocks, then patch merging (T/4 -> T/8);
- ``layers[1:]``: transformer stages with windowed self-attention (learned relative
  position biases), a depthwise 3x3 "local" convolution and an MLP; each stage but the
  last ends with patch merging (T/8 -> T/16, then stride 1 before the last stage);
- ``neck``: 1x1 conv + LayerNorm2d + 3x3 conv + LayerNorm2d to ``out_chans`` channels.

Parameter names follow the MobileSAM checkpoint (``image_encoder.*`` minus the prefix),
except the unused ImageNet classification head (``norm_head``, ``head``), which is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d

__all__ = [
    "TinyViT",
    "LayerNorm2d",
    "load_mobilesam_encoder",
    "strip_classifier_head",
    "MOBILESAM_ENCODER_FILE",
    "CLASSIFIER_HEAD_PREFIXES",
]

MOBILESAM_ENCODER_FILE = "mobilesam_image_encoder.safetensors"
# checkpoint keys of the ImageNet head that MobileSAM carries but never uses
CLASSIFIER_HEAD_PREFIXES = ("norm_head.", "head.")


class ConvBN(nn.Sequential):
    """Bias-free convolution followed by batch norm (keys ``c.*`` and ``bn.*``)."""

    def __init__(
        self,
        in_chans: int,
        out_chans: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.add_module(
            "c",
            nn.Conv2d(in_chans, out_chans, kernel_size, stride, padding, groups=groups, bias=False),
        )
        self.add_module("bn", nn.BatchNorm2d(out_chans))


class PatchEmbed(nn.Module):
    """Two stride-2 3x3 ConvBN layers: (B, 3, T, T) -> (B, C, T/4, T/4)."""

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(
            ConvBN(in_chans, embed_dim // 2, 3, 2, 1),
            nn.GELU(),
            ConvBN(embed_dim // 2, embed_dim, 3, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, 1x1 project, residual, GELU.

    Input and output are (B, C, H, W).
    """

    def __init__(self, dim: int, expand_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = ConvBN(dim, hidden, 1)
        self.conv2 = ConvBN(hidden, hidden, 3, 1, 1, groups=hidden)
        self.conv3 = ConvBN(hidden, dim, 1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv1(x))
        y = self.act(self.conv2(y))
        y = self.conv3(y)
        return self.act(x + y)


class PatchMerging(nn.Module):
    """1x1 ConvBN, depthwise 3x3 ConvBN (stride 2 or 1), 1x1 ConvBN.

    Input (B, C, H, W) or tokens (B, H*W, C) of a known (H, W); output tokens
    (B, H'*W', out_dim) with H' = ceil(H / stride).
    """

    def __init__(
        self, resolution: tuple[int, int], dim: int, out_dim: int, stride: int = 2
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.conv1 = ConvBN(dim, out_dim, 1)
        self.conv2 = ConvBN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim, 1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            h, w = self.resolution
            x = x.transpose(1, 2).reshape(x.shape[0], -1, h, w)  # (B, C, H, W)
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        x = self.conv3(x)
        return x.flatten(2).transpose(1, 2)  # (B, H'*W', out_dim)


class _Stage(nn.Module):
    """Blocks (``self.blocks``), then an optional patch merging (``self.downsample``)."""

    blocks: nn.ModuleList
    downsample: nn.Module | None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


class ConvStage(_Stage):
    """First stage: MBConv blocks on (B, C, H, W), then optional patch merging."""

    def __init__(
        self,
        dim: int,
        depth: int,
        resolution: tuple[int, int],
        out_dim: int | None = None,
        merge_stride: int = 2,
        expand_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([MBConv(dim, expand_ratio) for _ in range(depth)])
        self.downsample = (
            PatchMerging(resolution, dim, out_dim, merge_stride) if out_dim is not None else None
        )


class WindowAttention(nn.Module):
    """Multi-head self-attention inside one window with learned relative biases.

    One bias per head and per absolute offset ``(|dy|, |dx|)`` between two tokens of
    the window, stored as ``attention_biases`` (heads, window**2) at index
    ``|dy| * window + |dx|``. The LayerNorm of the block sits inside (``norm``).
    The fused projection ``qkv`` is laid out per head: [q | k | v] for head 0, then head 1 ...

    Input and output are (B, window**2, dim).
    """

    def __init__(self, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window_size * window_size))
        pos = torch.arange(window_size)
        rows = pos.repeat_interleave(window_size)  # (w*w,) row of each token
        cols = pos.repeat(window_size)  # (w*w,) col of each token
        idx = (rows[:, None] - rows[None, :]).abs() * window_size + (
            cols[:, None] - cols[None, :]
        ).abs()
        self.register_buffer("bias_idx", idx, persistent=False)  # (w*w, w*w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        x = self.norm(x)
        qkv = self.qkv(x).view(b, n, self.num_heads, 3 * self.head_dim)
        q, k, v = qkv.permute(0, 2, 1, 3).split(self.head_dim, dim=-1)  # (B, h, N, d) each
        bias = self.attention_biases[:, self.bias_idx]  # (h, N, N)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        out = out.transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class MLP(nn.Module):
    """Pre-norm MLP: LayerNorm, Linear, GELU, Linear on (B, N, C)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Windowed attention + depthwise local conv + MLP on tokens (B, H*W, C).

    The token grid is zero-padded at the bottom/right to a multiple of the window
    (the padded tokens take part in attention as they are) and cropped afterwards.
    """

    def __init__(
        self,
        dim: int,
        resolution: tuple[int, int],
        num_heads: int,
        window_size: int,
        mlp_ratio: float = 4.0,
        local_conv_size: int = 3,
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.window_size = window_size
        self.attn = WindowAttention(dim, num_heads, window_size)
        self.mlp = MLP(dim, int(dim * mlp_ratio))
        self.local_conv = ConvBN(dim, dim, local_conv_size, 1, local_conv_size // 2, groups=dim)

    def _window_attention(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.resolution
        ws = self.window_size
        b, _, c = x.shape
        if h == ws and w == ws:
            return self.attn(x)
        x = x.view(b, h, w, c)
        pad_b, pad_r = (-h) % ws, (-w) % ws
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        nh, nw = hp // ws, wp // ws
        # (B, nh, ws, nw, ws, C) -> (B*nh*nw, ws*ws, C)
        x = x.view(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
        x = self.attn(x)
        # (B*nh*nw, ws*ws, C) -> (B, hp, wp, C)
        x = x.view(b, nh, nw, ws, ws, c).transpose(2, 3).reshape(b, hp, wp, c)
        return x[:, :h, :w].reshape(b, h * w, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.resolution
        b, n, c = x.shape
        if n != h * w:
            raise ValueError(f"expected {h * w} tokens for a {h}x{w} grid, got {n}")
        x = x + self._window_attention(x)
        x = x.transpose(1, 2).reshape(b, c, h, w)  # (B, C, H, W)
        x = self.local_conv(x)
        x = x.flatten(2).transpose(1, 2)  # (B, H*W, C)
        return x + self.mlp(x)


class AttentionStage(_Stage):
    """Transformer stage: TinyViT blocks, then optional patch merging."""

    def __init__(
        self,
        dim: int,
        depth: int,
        resolution: tuple[int, int],
        num_heads: int,
        window_size: int,
        out_dim: int | None = None,
        merge_stride: int = 2,
        mlp_ratio: float = 4.0,
        local_conv_size: int = 3,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [
                TinyViTBlock(dim, resolution, num_heads, window_size, mlp_ratio, local_conv_size)
                for _ in range(depth)
            ]
        )
        self.downsample = (
            PatchMerging(resolution, dim, out_dim, merge_stride) if out_dim is not None else None
        )


class TinyViT(nn.Module):
    """MobileSAM's TinyViT image encoder.

    Parameters
    ----------
    img_size : int
        Side T of the square input; must be a multiple of 16 (output side T / 16).
    in_chans : int
        Input channels.
    embed_dims : sequence of int
        Channels of each stage (first stage: MBConv; the others: attention).
    depths : sequence of int
        Blocks per stage.
    num_heads : sequence of int
        Attention heads per stage (the first entry is unused).
    window_sizes : sequence of int
        Attention window side per stage (the first entry is unused).
    mlp_ratio : float
        MLP hidden width relative to the stage width.
    mbconv_expand_ratio : float
        MBConv hidden width relative to the stage width.
    local_conv_size : int
        Kernel of the depthwise conv between attention and MLP.
    out_chans : int
        Channels of the output embedding.

    Notes
    -----
    Resolution: T/4 after the patch embedding, halved by each patch merging except
    the one before the last stage (stride 1), so the last stages run at T/16.
    """

    def __init__(
        self,
        img_size: int = 1024,
        in_chans: int = 3,
        embed_dims: Sequence[int] = (64, 128, 160, 320),
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (2, 4, 5, 10),
        window_sizes: Sequence[int] = (7, 7, 14, 7),
        mlp_ratio: float = 4.0,
        mbconv_expand_ratio: float = 4.0,
        local_conv_size: int = 3,
        out_chans: int = 256,
    ) -> None:
        super().__init__()
        n = len(embed_dims)
        if not (len(depths) == len(num_heads) == len(window_sizes) == n):
            raise ValueError(
                "embed_dims, depths, num_heads and window_sizes must have one entry per stage"
            )
        if n < 3:
            raise ValueError(f"TinyViT needs at least 3 stages for a stride of 16, got {n}")
        if img_size % 16:
            raise ValueError(f"img_size must be a multiple of 16, got {img_size}")
        self.img_size = img_size
        self.out_chans = out_chans
        self.patch_embed = PatchEmbed(in_chans, embed_dims[0])
        res = img_size // 4
        self.layers = nn.ModuleList()
        for i in range(n):
            last = i == n - 1
            out_dim = None if last else embed_dims[i + 1]
            # two stride-2 mergings take T/4 to T/16; the remaining ones keep the size
            stride = 2 if i < 2 else 1
            if i == 0:
                stage = ConvStage(
                    embed_dims[0], depths[0], (res, res), out_dim, stride, mbconv_expand_ratio
                )
            else:
                stage = AttentionStage(
                    embed_dims[i], depths[i], (res, res), num_heads[i], window_sizes[i],
                    out_dim, stride, mlp_ratio, local_conv_size,
                )  # fmt: skip
            self.layers.append(stage)
            if not last:
                res = (res + stride - 1) // stride
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_chans, 1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, 3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, T) normalised image -> (B, out_chans, T/16, T/16) embedding."""
        if x.ndim != 4 or x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(
                f"expected input of shape (B, C, {self.img_size}, {self.img_size}), "
                f"got {tuple(x.shape)}"
            )
        x = self.patch_embed(x)  # (B, C0, T/4, T/4)
        for layer in self.layers:
            x = layer(x)  # tokens (B, L, C)
        b, _, c = x.shape
        side = self.img_size // 16
        x = x.transpose(1, 2).reshape(b, c, side, side)  # (B, C_last, T/16, T/16)
        return self.neck(x)


def strip_classifier_head(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the unused ImageNet head keys (``norm_head.*``, ``head.*``) of a TinyViT state dict."""
    return {k: v for k, v in state_dict.items() if not k.startswith(CLASSIFIER_HEAD_PREFIXES)}


def load_mobilesam_encoder(model: TinyViT, path: str | Path | None = None) -> None:
    """Load the shipped MobileSAM TinyViT weights into ``model`` (strict, sha256 checked).

    Parameters
    ----------
    model : TinyViT
        A default-sized ``TinyViT()``.
    path : path, optional
        Another safetensors file; default: the packaged ``mobilesam_image_encoder.safetensors``
        (its sha256 is checked against ``weights/weights.json``).
    """
    from .weights import load_packaged_weights, load_weights

    if path is None:
        state = load_packaged_weights(MOBILESAM_ENCODER_FILE)
    else:
        state = load_weights(path)
    model.load_state_dict(strip_classifier_head(state), strict=True)
