"""Attention over the encoder outputs: Bahdanau (additive) and Luong (multiplicative) scores, one masked softmax.

Both take queries for T decoder steps at once (T = 1 for a single step), so Luong attention over a
whole teacher-forced target is two batched matmuls.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """scores (B, T, S), mask (B, S) of 1.0 / 0.0 -> weights (B, T, S).

    Padded positions get exactly 0 and real positions sum to 1; a row with no real position (an
    empty source) gets all zeros, never NaN (its uniform softmax is multiplied by the zero mask).
    """
    keep = mask.unsqueeze(1)  # (B, 1, S)
    # -1e30 is far below any real score: its exp() after softmax's max shift is exactly 0.0. (A
    # literal, not a module constant: TorchScript cannot read float globals.)
    return torch.softmax(scores.masked_fill(keep == 0, -1e30), -1) * keep


class BahdanauAttention(nn.Module):
    """score(q, k) = v^T tanh(W_q q + W_k k): returns the context vector, fed into the decoder RNN."""

    def __init__(self, hidden_dim: int, memory_dim: int):
        super().__init__()
        self.query_proj = nn.Linear(hidden_dim, hidden_dim, bias=False)
        self.key_proj = nn.Linear(memory_dim, hidden_dim)
        self.score = nn.Linear(hidden_dim, 1, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        """memory (B, S, De) -> W_k k + b (B, S, H): computed once per source (the encoder graph
        exports it as `attention_keys`), not once per decoder step."""
        return self.key_proj(memory)

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor, keys: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, H), memory (B, S, De), mask (B, S), keys (B, S, H) from keys(memory) ->
        context (B, T, De), weights (B, T, S)."""
        energy = torch.tanh(self.query_proj(query).unsqueeze(2) + keys.unsqueeze(1))  # (B, T, S, H)
        weights = masked_softmax(self.score(energy).squeeze(3), mask)  # (B, T, S)
        return torch.bmm(weights, memory), weights


class LuongAttention(nn.Module):
    """score(h, k) = (W_a h)^T k ("general") or h^T k ("dot"), after the RNN step; returns the
    attentional hidden tanh(W_c [context; h]) that feeds fc_out (no input feeding)."""

    def __init__(self, hidden_dim: int, memory_dim: int, score: str):
        super().__init__()
        self.query_proj: nn.Linear | None = (
            nn.Linear(hidden_dim, memory_dim, bias=False) if score == "general" else None
        )
        self.combine = nn.Linear(memory_dim + hidden_dim, hidden_dim)

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, T, H), memory (B, S, De), mask (B, S) -> attentional hidden (B, T, H), weights (B, T, S)."""
        q = query
        if self.query_proj is not None:
            q = self.query_proj(query)  # (B, T, De)
        weights = masked_softmax(torch.bmm(q, memory.transpose(1, 2)), mask)  # (B, T, S)
        context = torch.bmm(weights, memory)  # (B, T, De)
        return torch.tanh(self.combine(torch.cat([context, query], 2))), weights
