"""SAM's prompt encoder and mask decoder (as used by MobileSAM).

The ``mobilesam`` baseline of the evaluation tool runs them alone; the predictor blends
:class:`SamMaskHead`'s masks with Inter2Former's on photographs
(:class:`napari_inter2former.Predictor`, ``blend_sam``).

Written from the Segment Anything paper's description; parameter names follow the
MobileSAM checkpoint's ``prompt_encoder.*`` and ``mask_decoder.*`` keys (prefix stripped).

- :class:`PromptEncoder`: points -> sparse tokens (random-Fourier position encoding plus a
  learned embedding per label), a low-res mask (B, 1, 4h, 4w) -> dense (B, C, h, w) map.
- :class:`MaskDecoder`: a two-way transformer between the prompt tokens (plus an IoU token
  and 4 mask tokens) and the image embedding, then 4x upscaling and per-token
  hypernetwork MLPs giving (B, 4, 4h, 4w) mask logits and (B, 4) predicted IoUs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .image_encoder import LayerNorm2d

__all__ = [
    "PositionEmbeddingRandom",
    "PromptEncoder",
    "TwoWayTransformer",
    "MaskDecoder",
    "SamMaskHead",
    "MASK_PROMPT_LOGIT",
    "MOBILESAM_PROMPT_DECODER_FILE",
    "load_mobilesam_prompt_decoder",
]

MOBILESAM_PROMPT_DECODER_FILE = "mobilesam_prompt_decoder.safetensors"
MASK_PROMPT_LOGIT = 8.0  # |logit| given to a mask (e.g. a prior) used as SAM's mask prompt


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of normalised (x, y) positions.

    ``positional_encoding_gaussian_matrix`` (2, F) maps coordinates in [-1, 1] to F
    frequencies; the output is [sin | cos] of 2*pi times that, 2F channels.
    """

    def __init__(self, num_pos_feats: int = 64, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer(
            "positional_encoding_gaussian_matrix", scale * torch.randn(2, num_pos_feats)
        )

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., 2) coords in [0, 1] -> (..., 2F)."""
        coords = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([coords.sin(), coords.cos()], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Encoding of the centres of an (h, w) grid -> (2F, h, w)."""
        h, w = size
        g = self.positional_encoding_gaussian_matrix
        ys = (torch.arange(h, device=g.device, dtype=g.dtype) + 0.5) / h
        xs = (torch.arange(w, device=g.device, dtype=g.dtype) + 0.5) / w
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
        return self._encode(grid).permute(2, 0, 1)

    def forward_with_coords(
        self, coords: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """(B, N, 2) pixel (x, y) in an (H, W) image -> (B, N, 2F)."""
        coords = coords.clone().float()
        coords[..., 0] = coords[..., 0] / image_size[1]
        coords[..., 1] = coords[..., 1] / image_size[0]
        return self._encode(coords)


class PromptEncoder(nn.Module):
    """Point and mask prompts -> sparse tokens and a dense map.

    Parameters
    ----------
    embed_dim : int
        Token and dense-map channels C.
    image_embedding_size : (int, int)
        Grid (h, w) of the image embedding.
    input_image_size : (int, int)
        Padded network input (H, W) in which point coordinates are given.
    mask_in_chans : int
        Hidden channels of the mask downscaling convs.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        image_embedding_size: tuple[int, int] = (64, 64),
        input_image_size: tuple[int, int] = (1024, 1024),
        mask_in_chans: int = 16,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = tuple(image_embedding_size)
        self.input_image_size = tuple(input_image_size)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # 0: negative point, 1: positive point, 2/3: box corners (unused here)
        self.point_embeddings = nn.ModuleList([nn.Embedding(1, embed_dim) for _ in range(4)])
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """Position encoding of the image embedding grid, (1, C, h, w)."""
        return self.pe_layer(self.image_embedding_size)[None]

    def embed_points(self, points: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) pixel (x, y) and (B, N) labels (1 pos, 0 neg) -> (B, N + 1, C).

        A padding token (label -1) is appended, as SAM does when no box is given.
        """
        points = points.float() + 0.5  # pixel centres
        b = points.shape[0]
        points = torch.cat([points, points.new_zeros(b, 1, 2)], dim=1)
        labels = torch.cat([labels, -labels.new_ones(b, 1)], dim=1)
        emb = self.pe_layer.forward_with_coords(points, self.input_image_size)
        emb = torch.where((labels == -1)[..., None], torch.zeros_like(emb), emb)
        emb = emb + (labels == -1)[..., None] * self.not_a_point_embed.weight
        emb = emb + (labels == 0)[..., None] * self.point_embeddings[0].weight
        emb = emb + (labels == 1)[..., None] * self.point_embeddings[1].weight
        return emb

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor],
        masks: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode point prompts and an optional mask.

        Parameters
        ----------
        points : (Tensor (B, N, 2), Tensor (B, N))
            Pixel (x, y) in the input frame, labels 1 (positive) / 0 (negative).
        masks : Tensor (B, 1, 4h, 4w), optional
            Low-res mask logits from a previous prediction.

        Returns
        -------
        sparse : Tensor (B, N + 1, C)
        dense : Tensor (B, C, h, w)
        """
        coords, labels = points
        sparse = self.embed_points(coords, labels)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            h, w = self.image_embedding_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(coords.shape[0], -1, h, w)
        return sparse, dense


class Attention(nn.Module):
    """Multi-head attention with an optional smaller internal width (dim // downsample_rate)."""

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError("num_heads must divide embedding_dim // downsample_rate")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.view(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)  # (B, h, N, d)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q (B, Nq, C), k and v (B, Nk, C) -> (B, Nq, C)."""
        q, k, v = (
            self._heads(self.q_proj(q)),
            self._heads(self.k_proj(k)),
            self._heads(self.v_proj(v)),
        )
        out = F.scaled_dot_product_attention(q, k, v)  # (B, h, Nq, d)
        b, h, n, d = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, h * d))


class MLPBlock(nn.Module):
    """Linear, activation, Linear (keys ``lin1``, ``lin2``)."""

    def __init__(self, embedding_dim: int, mlp_dim: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token->image cross-attention, token MLP, image->token cross-attention.

    Each step is residual and followed by a LayerNorm. In the first block the
    self-attention sees no position encoding and has no residual (SAM's choice).
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int = 2048,
        attention_downsample_rate: int = 2,
        skip_first_layer_pe: bool = False,
    ) -> None:
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(
            embedding_dim, num_heads, attention_downsample_rate
        )
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(
            embedding_dim, num_heads, attention_downsample_rate
        )
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor,
        query_pe: torch.Tensor,
        key_pe: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries (B, Nt, C) tokens, keys (B, h*w, C) image -> updated (queries, keys)."""
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)

        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))

        queries = self.norm3(queries + self.mlp(queries))

        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """Stack of two-way blocks and a final token->image attention."""

    def __init__(
        self,
        depth: int = 2,
        embedding_dim: int = 256,
        num_heads: int = 8,
        mlp_dim: int = 2048,
        attention_downsample_rate: int = 2,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                TwoWayAttentionBlock(
                    embedding_dim, num_heads, mlp_dim, attention_downsample_rate, i == 0
                )
                for i in range(depth)
            ]
        )
        self.final_attn_token_to_image = Attention(
            embedding_dim, num_heads, attention_downsample_rate
        )
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self, image_embedding: torch.Tensor, image_pe: torch.Tensor, point_embedding: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image (B, C, h, w), its PE (B, C, h, w), tokens (B, Nt, C) -> tokens, image tokens."""
        keys = image_embedding.flatten(2).transpose(1, 2)  # (B, h*w, C)
        key_pe = image_pe.flatten(2).transpose(1, 2)  # (B, h*w, C)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embedding, key_pe)
        q, k = queries + point_embedding, keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them (keys ``layers.i``)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class MaskDecoder(nn.Module):
    """Tokens + image embedding -> mask logits at 4x the embedding grid and IoU scores.

    Parameters
    ----------
    transformer_dim : int
        Channels C of tokens and image embedding.
    num_multimask_outputs : int
        Masks predicted for ambiguous prompts (plus one single-mask output).
    depth, num_heads, mlp_dim : int
        Two-way transformer configuration.
    iou_head_depth, iou_head_hidden_dim : int
        IoU prediction MLP.
    """

    def __init__(
        self,
        transformer_dim: int = 256,
        num_multimask_outputs: int = 3,
        depth: int = 2,
        num_heads: int = 8,
        mlp_dim: int = 2048,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
    ) -> None:
        super().__init__()
        self.transformer = TwoWayTransformer(depth, transformer_dim, num_heads, mlp_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            [
                MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
                for _ in range(self.num_mask_tokens)
            ]
        )
        self.iou_prediction_head = MLP(
            transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth
        )

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict masks.

        Parameters
        ----------
        image_embeddings : Tensor (B, C, h, w)
        image_pe : Tensor (1, C, h, w)
        sparse_prompt_embeddings : Tensor (B, N, C)
        dense_prompt_embeddings : Tensor (B, C, h, w)
        multimask_output : bool
            True: the 3 ambiguity-aware masks; False: the single-mask output.

        Returns
        -------
        masks : Tensor (B, 3 or 1, 4h, 4w), logits
        iou_pred : Tensor (B, 3 or 1)
        """
        b, c, h, w = image_embeddings.shape
        out_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat(
            [
                out_tokens[None].expand(sparse_prompt_embeddings.shape[0], -1, -1),
                sparse_prompt_embeddings,
            ],
            dim=1,
        )  # (B, 1 + M + N, C)
        src = image_embeddings + dense_prompt_embeddings
        pos = image_pe.expand(src.shape[0], -1, -1, -1)
        hs, src = self.transformer(src, pos, tokens)
        iou_out = hs[:, 0]
        mask_out = hs[:, 1 : 1 + self.num_mask_tokens]  # (B, M, C)
        src = src.transpose(1, 2).reshape(src.shape[0], c, h, w)
        upscaled = self.output_upscaling(src)  # (B, C/8, 4h, 4w)
        hyper = torch.stack(
            [mlp(mask_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )  # (B, M, C/8)
        bb, cc, hh, ww = upscaled.shape
        masks = (hyper @ upscaled.view(bb, cc, hh * ww)).view(bb, -1, hh, ww)
        iou_pred = self.iou_prediction_head(iou_out)
        sl = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, sl], iou_pred[:, sl]


def load_mobilesam_prompt_decoder(
    prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder, path=None
) -> None:
    """Load the shipped MobileSAM prompt encoder and mask decoder (strict, sha256 checked).

    Parameters
    ----------
    prompt_encoder : PromptEncoder
    mask_decoder : MaskDecoder
        Default-sized modules.
    path : path, optional
        Another safetensors file with ``prompt_encoder.*`` and ``mask_decoder.*`` keys;
        default: the packaged ``mobilesam_prompt_decoder.safetensors``.
    """
    from .weights import load_packaged_weights, load_weights

    state = (
        load_packaged_weights(MOBILESAM_PROMPT_DECODER_FILE) if path is None else load_weights(path)
    )
    for prefix, module in (("prompt_encoder.", prompt_encoder), ("mask_decoder.", mask_decoder)):
        part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        module.load_state_dict(part, strict=True)


class SamMaskHead(nn.Module):
    """Points (and the previous low-res mask) -> one mask, on an image embedding.

    SAM's way of answering clicks: every click so far as a point prompt, from the
    second click on the previous answer's low-res logits as the mask prompt; without
    a mask prompt the best of the 3 multimask outputs by predicted IoU.

    Parameters
    ----------
    prompt_encoder : PromptEncoder
    mask_decoder : MaskDecoder
    """

    def __init__(self, prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder) -> None:
        super().__init__()
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder

    @classmethod
    def from_pretrained(cls) -> "SamMaskHead":
        """MobileSAM's prompt encoder and mask decoder from the packaged file (no network)."""
        prompt_encoder, mask_decoder = PromptEncoder(), MaskDecoder()
        load_mobilesam_prompt_decoder(prompt_encoder, mask_decoder)
        return cls(prompt_encoder, mask_decoder).eval()

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of the padded network input that point coordinates refer to."""
        return self.prompt_encoder.input_image_size

    def mask_prompt(self, mask: torch.Tensor) -> torch.Tensor:
        """A mask on the padded network input -> SAM's mask prompt.

        Parameters
        ----------
        mask : Tensor (1, 1, H, W)
            Foreground (bool, or fractions in [0, 1]) on the padded input frame.

        Returns
        -------
        Tensor (1, 1, 4h, 4w)
            Logits of +-``MASK_PROMPT_LOGIT`` scaled by the foreground share of each
            low-res pixel (area average).
        """
        share = F.adaptive_avg_pool2d(mask.float(), self.prompt_encoder.mask_input_size)
        return (2.0 * share - 1.0) * MASK_PROMPT_LOGIT

    @torch.no_grad()
    def forward(
        self,
        embedding: torch.Tensor,
        points: torch.Tensor,
        labels: torch.Tensor,
        mask_input: torch.Tensor | None = None,
        multimask: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mask for one image's clicks.

        Parameters
        ----------
        embedding : Tensor (1, C, h, w)
        points : Tensor (1, N, 2)
            Click (x, y) in pixels of the padded network input.
        labels : Tensor (1, N)
            1 positive, 0 negative.
        mask_input : Tensor (1, 1, 4h, 4w), optional
            The previous answer's logits (:meth:`forward`'s first output).
        multimask : bool, optional
            Pick the best of the 3 multimask outputs (True) or take the single-mask
            output (False); default: the former without ``mask_input``.

        Returns
        -------
        low_res : Tensor (1, 1, 4h, 4w), logits
        iou_pred : Tensor (1, 3 or 1), the predicted IoUs of the outputs it chose from
        """
        low_res, iou_pred = self.candidates(embedding, points, labels, mask_input, multimask)
        best = int(iou_pred[0].argmax())
        return low_res[:, best : best + 1], iou_pred

    @torch.no_grad()
    def candidates(
        self,
        embedding: torch.Tensor,
        points: torch.Tensor,
        labels: torch.Tensor,
        mask_input: torch.Tensor | None = None,
        multimask: bool | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every output for one image's clicks (:meth:`forward` picks one of them).

        Parameters are :meth:`forward`'s.

        Returns
        -------
        low_res : Tensor (1, 3 or 1, 4h, 4w), logits
        iou_pred : Tensor (1, 3 or 1)
        """
        if multimask is None:
            multimask = mask_input is None
        sparse, dense = self.prompt_encoder((points, labels), mask_input)
        return self.mask_decoder(embedding, self.prompt_encoder.get_dense_pe(), sparse, dense, multimask)
