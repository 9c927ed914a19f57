"""Hybrid Mixture of Experts (HMoE): a shared expert for all tokens, routed experts for boundary tokens.

Every expert is a SwiGLU with a LayerNorm on its hidden layer,
``y = W3 LN(SiLU(W1 x) * (W2 x))``. All tokens get the shared expert. Boundary
tokens are also routed (top-1) to one of E experts whose weights are stacked
tensors sharing one LayerNorm; the expert is ``argmax(sigmoid(gate(x)) + exp_bias)``
and the output ``w_s shared(x) + w_e expert(x)`` with ``(w_s, w_e)`` the softmax of
the two sigmoid gate values. ``exp_bias`` balances the load without a loss: in
train mode, after every forward, ``exp_bias -= rate * sign(count - mean count)``.

Inference sorts the routed tokens by expert and runs one matmul per expert on
contiguous slices (the official C++ ``fast_moe`` does the same).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HybridMoE"]


class HybridMoE(nn.Module):
    """Shared + routed SwiGLU experts.

    Parameters
    ----------
    embed_dim : int
        Token width C.
    hidden_dim : int
        Total hidden width; each expert has ``hidden_dim // num_experts``.
    num_experts : int
        Routed experts E.
    bias_update_rate : float
        Step of the load-balancing bias update (train mode only).
    """

    def __init__(
        self,
        embed_dim: int = 256,
        hidden_dim: int = 512,
        num_experts: int = 8,
        bias_update_rate: float = 1e-3,
    ) -> None:
        super().__init__()
        h = hidden_dim // num_experts
        e = num_experts
        self.num_experts = e
        self.bias_update_rate = bias_update_rate
        self.shared_w1 = nn.Linear(embed_dim, h)
        self.shared_w2 = nn.Linear(embed_dim, h)
        self.shared_w3 = nn.Linear(h, embed_dim)
        self.shared_ln = nn.LayerNorm(h)
        self.shared_gate = nn.Linear(embed_dim, 1)
        self.expert_w1 = nn.Parameter(torch.empty(e, h, embed_dim))
        self.expert_b1 = nn.Parameter(torch.zeros(e, h))
        self.expert_w2 = nn.Parameter(torch.empty(e, h, embed_dim))
        self.expert_b2 = nn.Parameter(torch.zeros(e, h))
        self.expert_w3 = nn.Parameter(torch.empty(e, embed_dim, h))
        self.expert_b3 = nn.Parameter(torch.zeros(e, embed_dim))
        self.expert_ln = nn.LayerNorm(h)
        self.expert_gate = nn.Linear(embed_dim, e)
        self.register_buffer("exp_bias", torch.zeros(e))
        for w in (self.expert_w1, self.expert_w2, self.expert_w3):
            nn.init.uniform_(w, -1 / math.sqrt(w.shape[-1]), 1 / math.sqrt(w.shape[-1]))

    def shared(self, x: torch.Tensor) -> torch.Tensor:
        """Shared expert, (..., C) -> (..., C)."""
        return self.shared_w3(
            self.shared_ln(F.silu(self.shared_w1(x)) * self.shared_w2(x))
        )

    def expert(self, x: torch.Tensor, e: int) -> torch.Tensor:
        """Routed expert ``e``, (n, C) -> (n, C)."""
        h1 = F.linear(x, self.expert_w1[e], self.expert_b1[e])
        h2 = F.linear(x, self.expert_w2[e], self.expert_b2[e])
        return F.linear(
            self.expert_ln(F.silu(h1) * h2), self.expert_w3[e], self.expert_b3[e]
        )

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Expert index (n,) and mixing weights (n,), (n,) of shared and expert outputs."""
        gates = torch.sigmoid(self.expert_gate(x))  # (n, E)
        choice = torch.argmax(gates + self.exp_bias, dim=-1)  # (n,)
        g_e = gates.gather(1, choice[:, None])  # (n, 1)
        g_s = torch.sigmoid(self.shared_gate(x))  # (n, 1)
        w = torch.softmax(torch.cat([g_s, g_e], dim=1), dim=1)  # (n, 2)
        return choice, w[:, 0], w[:, 1]

    def forward(self, x: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
        """Apply the experts.

        Parameters
        ----------
        x : Tensor of shape (N, C) or (B, N, C)
            Normalised tokens.
        boundary : Tensor of shape (N,) or (B, N), bool
            Tokens routed to an expert.

        Returns
        -------
        Tensor of the shape of ``x``
        """
        shape = x.shape
        x = x.reshape(-1, shape[-1])  # (B*N, C)
        boundary = boundary.reshape(-1)
        y = self.shared(x)
        idx = torch.nonzero(boundary).flatten()
        if idx.numel() == 0:
            return y.reshape(shape)
        xb = x[idx]  # (n, C)
        choice, w_s, w_e = self.route(xb)
        routed = self._grouped(xb, choice)
        y_b = w_s[:, None] * y[idx] + w_e[:, None] * routed
        y[idx] = y_b.to(y.dtype)  # under autocast y_b may be bf16; y is not saved for backward
        if self.training:
            self._update_bias(choice)
        return y.reshape(shape)

    def _grouped(self, x: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
        """Routed outputs (n, C): tokens sorted by expert, one matmul chain per expert."""
        order = torch.argsort(choice, stable=True)
        counts = torch.bincount(choice, minlength=self.num_experts).tolist()
        chunks = torch.split(x[order], counts)  # contiguous slice per expert
        outs = [
            self.expert(chunk, e) for e, chunk in enumerate(chunks) if chunk.shape[0]
        ]
        sorted_out = torch.cat(outs, dim=0)  # (n, C) in expert order
        return torch.empty_like(sorted_out).index_copy(0, order, sorted_out)

    @torch.no_grad()
    def _update_bias(self, choice: torch.Tensor) -> None:
        counts = torch.bincount(choice, minlength=self.num_experts).float()
        self.exp_bias -= self.bias_update_rate * torch.sign(counts - counts.mean())
