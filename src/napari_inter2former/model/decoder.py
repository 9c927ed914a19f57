"""Per-click decoder: DPE, then blocks of hybrid attention (DHA) and hybrid experts (HMoE).

Image embedding F (B, C, H', W') + prompt embedding of the reference map ->
tokens (N = H' W') -> ``depth`` x [LN -> DHA -> residual, LN -> HMoE -> residual]
-> token grid G (B, C, H', W'). The boundary-token set is computed once per call
from the reference map and shared by all blocks (attention and expert routing).
"""

from __future__ import annotations

import torch
from torch import nn

from .hybrid_attention import BOUNDARY_RULES, HybridAttention, boundary_tokens
from .moe import HybridMoE
from .prompt_embedding import DynamicPromptEmbedding, prompt_box

__all__ = ["DecoderBlock", "Inter2FormerDecoder"]


class DecoderBlock(nn.Module):
    """Pre-norm block: x + DHA(LN(x)), then x + HMoE(LN(x))."""

    def __init__(
        self,
        embed_dim: int,
        attn_dim: int,
        code_size: int,
        hidden_dim: int,
        num_experts: int,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dim)
        self.attn = HybridAttention(embed_dim, attn_dim, code_size)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.ffn = HybridMoE(embed_dim, hidden_dim, num_experts)

    def forward(
        self, x: torch.Tensor, grid: tuple[int, int], boundary: torch.Tensor
    ) -> torch.Tensor:
        """Eval path; x (N, C), boundary (N,) -> (N, C)."""
        if torch.is_grad_enabled():
            x = x + self.attn(self.norm1(x), grid, boundary)
            return x + self.ffn(self.norm2(x), boundary)
        x = x + self.attn(self.norm1(x), grid, boundary)
        return x.add_(self.ffn(self.norm2(x), boundary))  # no autograd: in place

    def forward_train(
        self, x: torch.Tensor, grid: tuple[int, int], boundary: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Train path; x (B, N, C), boundary (B, N) -> ((B, N, C), vq_loss)."""
        a, vq_loss = self.attn.forward_train(self.norm1(x), grid, boundary)
        x = x + a
        return x + self.ffn(self.norm2(x), boundary), vq_loss


class Inter2FormerDecoder(nn.Module):
    """DPE + ``depth`` DHA/HMoE blocks.

    Parameters
    ----------
    embed_dim : int
        Token width C.
    depth : int
        Number of blocks.
    attn_dim : int
        Single attention head width (official: C / 8).
    code_size : int
        BSQ code bits.
    mlp_ratio : float
        Total expert hidden width = mlp_ratio * C, split over the experts.
    num_experts : int
        Routed experts per block.
    prompt_dims : tuple of 3 int
        Hidden widths of the DPE conv stack.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        depth: int = 2,
        attn_dim: int = 32,
        code_size: int = 8,
        mlp_ratio: float = 2.0,
        num_experts: int = 8,
        prompt_dims: tuple[int, int, int] = (32, 64, 128),
    ) -> None:
        super().__init__()
        self.prompt = DynamicPromptEmbedding(embed_dim, prompt_dims)
        hidden = int(mlp_ratio * embed_dim)
        self.blocks = nn.ModuleList(
            DecoderBlock(embed_dim, attn_dim, code_size, hidden, num_experts)
            for _ in range(depth)
        )

    def forward(
        self,
        embedding: torch.Tensor,
        ref: torch.Tensor,
        boundary_rule: str = "box",
        dense: bool = False,
    ) -> tuple[torch.Tensor, dict]:
        """Eval path for one image.

        Parameters
        ----------
        embedding : Tensor of shape (1, C, H', W')
        ref : Tensor of shape (1, 1, H, W), integer codes (H = 16 H')
        boundary_rule : {'box', 'boundary', 'all'}
        dense : bool
            Reference variant: whole-image DPE and full attention + routed experts
            for every token (for benchmarks and checks).

        Returns
        -------
        G : Tensor of shape (1, C, H', W')
        info : dict
            ``box`` (pixel DPE box) and ``boundary`` (token mask (H', W')).
        """
        if boundary_rule not in BOUNDARY_RULES:
            raise ValueError(
                f"boundary_rule must be one of {BOUNDARY_RULES}, got {boundary_rule!r}"
            )
        _, c, gh, gw = embedding.shape
        if dense:
            box = (0, ref.shape[-2], 0, ref.shape[-1])
            tokens = torch.ones(gh, gw, dtype=torch.bool, device=embedding.device)
        else:
            box = prompt_box(ref[0, 0], self.prompt.stride)
            tokens = boundary_tokens(ref[0, 0], box, boundary_rule, self.prompt.stride)
        x = embedding + (self.prompt.embed(ref) if dense else self.prompt(ref, box))
        x = x[0].flatten(1).t().contiguous()  # (C, H', W') -> (N, C)
        flat = tokens.flatten()
        for block in self.blocks:
            x = block(x, (gh, gw), flat)
        g = x.t().reshape(1, c, gh, gw).contiguous()  # (N, C) -> (1, C, H', W')
        return g, {"box": box, "boundary": tokens}

    def forward_train(
        self,
        embedding: torch.Tensor,
        ref: torch.Tensor,
        boundary_rule: str = "box",
        cropped_prompt: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable path over a batch: whole-image DPE, straight-through BSQ.

        Parameters
        ----------
        embedding : Tensor of shape (B, C, H', W')
        ref : Tensor of shape (B, 1, H, W)
        boundary_rule : {'box', 'boundary', 'all'}
        cropped_prompt : bool
            Embed each map with the inference DPE (convolving only its box, the
            uniform-field shortcut elsewhere): same values as inference and far
            cheaper than the whole-image DPE on early clicks; still differentiable.

        Returns
        -------
        G : Tensor of shape (B, C, H', W')
        vq_loss : Tensor, scalar (mean over blocks)
        """
        if boundary_rule not in BOUNDARY_RULES:
            raise ValueError(
                f"boundary_rule must be one of {BOUNDARY_RULES}, got {boundary_rule!r}"
            )
        b, c, gh, gw = embedding.shape
        s = self.prompt.stride
        with torch.no_grad():
            tokens = torch.stack(
                [
                    boundary_tokens(r[0], prompt_box(r[0], s), boundary_rule, s)
                    for r in ref
                ]
            )  # (B, H', W')
        if cropped_prompt:
            prompt = torch.cat([self.prompt(r[None]) for r in ref])
        else:
            prompt = self.prompt.embed(ref)
        x = embedding + prompt
        x = x.flatten(2).transpose(1, 2).contiguous()  # (B, C, H', W') -> (B, N, C)
        flat = tokens.flatten(1)  # (B, N)
        losses = []
        for block in self.blocks:
            x, vq = block.forward_train(x, (gh, gw), flat)
            losses.append(vq)
        g = x.transpose(1, 2).reshape(b, c, gh, gw)  # (B, N, C) -> (B, C, H', W')
        return g, torch.stack(losses).mean()
