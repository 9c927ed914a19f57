"""Dynamic Hybrid Attention (DHA): full attention for boundary tokens, BSQ for the rest.

Boundary tokens (see :func:`boundary_tokens`) attend to all keys with ordinary
single-head softmax attention and 2-D RoPE (cost O(N_b N)). The other tokens use
binary-spherical-quantisation (BSQ) attention: every key is reduced to an
8-bit code (signs of a normalised 8-d projection), whose quantised key is built
from a 16 x d codebook (row i for "bit i is 1", row 8 + i for "bit i is 0").
Tokens with the same code share a key, so at inference the softmax over N keys
collapses onto the <= 256 occupied codes (scatter-add of values and counts):
cost O(N + N_q M).

Training (``forward_train``) replaces every key by its quantised key through a
straight-through estimator, runs plain softmax attention for all queries and
overwrites the boundary rows with full attention; it returns the BSQ commitment
loss 0.25 * MSE(sign(c) / sqrt(k), c). Pure PyTorch, runs on CPU.

Boundary rules
--------------
``"box"`` (default, what the official float32 code does in practice): every token
of the DPE box. ``"boundary"`` (faster, the paper's intent): tokens containing a
pixel inside the DPE box whose 7 x 7 neighbourhood holds more than one reference
code (max != min, exact on integers), or an UNKNOWN pixel. ``"all"``: every token
(no BSQ; what every rule gives on a first click, when the whole map is UNKNOWN).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..constants import TOKEN_STRIDE, UNKNOWN
from .common import ParameterCache
from .rope import RoPE2d

__all__ = ["BOUNDARY_RULES", "HybridAttention", "boundary_tokens"]

BOUNDARY_RULES = ("box", "boundary", "all")
BOUNDARY_KERNEL = 7  # local-variation window of the "boundary" rule


def boundary_tokens(
    ref: torch.Tensor,
    box: tuple[int, int, int, int],
    rule: str = "box",
    stride: int = TOKEN_STRIDE,
    kernel_size: int = BOUNDARY_KERNEL,
) -> torch.Tensor:
    """Token mask of the tokens that get full attention and routed experts.

    Parameters
    ----------
    ref : Tensor of shape (H, W), integer codes
        One reference map.
    box : (r0, r1, c0, c1)
        DPE box in pixels (multiples of ``stride``).
    rule : {'box', 'boundary', 'all'}
        See the module docstring.
    stride : int
        Token stride.
    kernel_size : int
        Window of the local-variation test (odd).

    Returns
    -------
    Tensor of shape (H / stride, W / stride), bool
    """
    if rule not in BOUNDARY_RULES:
        raise ValueError(f"boundary rule must be one of {BOUNDARY_RULES}, got {rule!r}")
    h, w = ref.shape
    r0, r1, c0, c1 = box
    if rule == "all":
        return torch.ones(h // stride, w // stride, dtype=torch.bool, device=ref.device)
    tokens = torch.zeros(h // stride, w // stride, dtype=torch.bool, device=ref.device)
    if rule == "box":
        tokens[r0 // stride : r1 // stride, c0 // stride : c1 // stride] = True
        return tokens
    crop = ref[r0:r1, c0:c1].float()[None, None]  # (1, 1, h', w')
    pad = kernel_size // 2
    # max/min pooling ignores the padding, like a reflect-padded window would
    hi = F.max_pool2d(crop, kernel_size, stride=1, padding=pad)
    lo = -F.max_pool2d(-crop, kernel_size, stride=1, padding=pad)
    pixels = (hi != lo) | (crop == UNKNOWN)
    pooled = F.max_pool2d(pixels.float(), stride, stride)[0, 0] > 0  # (h'/s, w'/s)
    tokens[r0 // stride : r1 // stride, c0 // stride : c1 // stride] = pooled
    return tokens



def single_head_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ / sqrt(d)) v for (B, N, d) tensors.

    Given a head axis, (B, 1, N, d), PyTorch picks its fused flash kernel on CPU too;
    with 3-D inputs it falls back to the math path that materialises the N x N scores
    (measured 5x slower for N = 4096, d = 32, one thread).
    """
    return F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]

class HybridAttention(nn.Module):
    """Single-head hybrid attention with its projections.

    Parameters
    ----------
    embed_dim : int
        Token width C.
    attn_dim : int
        Width d of the single head (the official model: C / 8 = 32).
    code_size : int
        Bits k of the BSQ codes (2**k possible keys).
    rope_theta, rope_ratio : float
        2-D RoPE base and position scale of the full attention.
    commitment : float
        Weight of the BSQ commitment loss.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        attn_dim: int = 32,
        code_size: int = 8,
        rope_theta: float = 10000.0,
        rope_ratio: float = 0.5,
        commitment: float = 0.25,
    ) -> None:
        super().__init__()
        self.attn_dim = attn_dim
        self.code_size = code_size
        self.commitment = commitment
        self.qkv_proj = nn.Linear(embed_dim, 3 * attn_dim)
        self.o_proj = nn.Linear(attn_dim, embed_dim)
        self.code_proj = nn.Linear(attn_dim, code_size)
        self.codebook = nn.Parameter(
            torch.randn(2 * code_size, attn_dim) / math.sqrt(attn_dim)
        )
        self.rope = RoPE2d(attn_dim, rope_theta, rope_ratio)
        bits = (
            torch.arange(2**code_size)[:, None] >> torch.arange(code_size - 1, -1, -1)
        ) & 1
        self.register_buffer(
            "code_bits", bits.float(), persistent=False
        )  # (2**k, k), MSB first
        self.register_buffer(
            "code_weights", 2 ** torch.arange(code_size - 1, -1, -1), persistent=False
        )
        self._keys_cache = ParameterCache()

    # ----- BSQ helpers -----
    def quantised_keys(self, bits: torch.Tensor) -> torch.Tensor:
        """Keys (..., d) of binary codes ``bits`` (..., k) with values in {0, 1}."""
        k = self.code_size
        return bits @ self.codebook[:k] + (1.0 - bits) @ self.codebook[k:]

    def code_keys(self) -> torch.Tensor:
        """The 2**k possible quantised keys, shape (2**k, d); cached when autograd is off."""
        if torch.is_grad_enabled():
            return self.quantised_keys(self.code_bits)
        return self._keys_cache.get(
            [self.codebook], lambda: self.quantised_keys(self.code_bits)
        )

    def codes(self, k: torch.Tensor) -> torch.Tensor:
        """Normalised code projections c, shape (..., code_size), of keys (..., d)."""
        return F.normalize(self.code_proj(k), dim=-1)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.qkv_proj(x).chunk(3, dim=-1)  # 3 x (..., N, d)

    # ----- inference -----
    def forward(
        self,
        x: torch.Tensor,
        grid: tuple[int, int],
        boundary: torch.Tensor,
    ) -> torch.Tensor:
        """Eval path for one image: each query group computed once.

        Parameters
        ----------
        x : Tensor of shape (N, C)
            Normalised tokens, row-major over ``grid`` (N = H' W').
        grid : (H', W')
            Token grid.
        boundary : Tensor of shape (N,), bool
            Queries that take full attention; the others take BSQ attention.

        Returns
        -------
        Tensor of shape (N, C)
        """
        q, k, v = self._qkv(x)  # (N, d) each
        out = torch.empty_like(q)
        idx = torch.nonzero(boundary).flatten()
        inv = torch.nonzero(~boundary).flatten()
        if idx.numel():
            qb = self.rope(q[idx], idx, grid)  # (N_b, d)
            kr = self.rope(k, None, grid)  # (N, d)
            out[idx] = single_head_attention(qb[None], kr[None], v[None])[0]
        if inv.numel():
            out[inv] = self._bsq_eval(q[inv], k, v)
        return self.o_proj(out)

    def _bsq_eval(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        """BSQ attention of queries (N_q, d) over keys/values (N, d) via occupied codes."""
        n_codes = 2**self.code_size
        index = ((self.codes(k) >= 0).long() * self.code_weights).sum(
            -1
        )  # (N,) code ids
        counts = torch.bincount(index, minlength=n_codes)  # (2**k,)
        v_sum = torch.zeros(n_codes, v.shape[-1], dtype=v.dtype, device=v.device)
        v_sum.index_add_(0, index, v)
        occupied = torch.nonzero(counts).flatten()  # (M,)
        keys = self.code_keys()[occupied]  # (M, d)
        attn = torch.softmax(
            q @ keys.t() / math.sqrt(self.attn_dim), dim=-1
        )  # (N_q, M)
        num = attn @ v_sum[occupied]  # (N_q, d)
        den = attn @ counts[occupied].to(v.dtype)[:, None]  # (N_q, 1)
        return num / den

    # ----- training -----
    def forward_train(
        self, x: torch.Tensor, grid: tuple[int, int], boundary: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable path: straight-through quantised keys for every query.

        Parameters
        ----------
        x : Tensor of shape (B, N, C)
        grid : (H', W')
        boundary : Tensor of shape (B, N), bool

        Returns
        -------
        out : Tensor of shape (B, N, C)
        vq_loss : Tensor, scalar
            Commitment loss of the codes.
        """
        q, k, v = self._qkv(x)  # (B, N, d) each
        c = self.codes(k)  # (B, N, code)
        bits = (c >= 0).to(c.dtype)
        soft = (
            c * math.sqrt(self.code_size) + 1.0
        ) / 2.0  # = bits where c = +-1/sqrt(k)
        bits_st = bits + (soft - soft.detach())  # forward: bits; gradient: to c
        keys = self.quantised_keys(bits_st)  # (B, N, d)
        hard = (2.0 * bits - 1.0) / math.sqrt(self.code_size)
        vq_loss = self.commitment * F.mse_loss(c, hard)
        bsq = single_head_attention(q, keys, v)  # (B, N, d)
        if boundary.any():
            full = single_head_attention(
                self.rope(q, None, grid), self.rope(k, None, grid), v
            )
            out = torch.where(boundary[..., None], full, bsq)
        else:
            out = bsq
        return self.o_proj(out), vq_loss
