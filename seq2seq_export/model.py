"""The seed tutorial's GRU encoder/decoder, with the seed's parameter names, done properly.

Parameter names match the seed (`encoder.embedding`, `encoder.rnn`, `decoder.embedding`,
`decoder.rnn`, `decoder.fc_out`), so a state_dict saved from the seed's code loads unchanged.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig


class Encoder(nn.Module):
    """Embedding -> stacked GRU over the padded batch; final states taken at each row's true length."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.num_layers = cfg.num_layers
        self.hidden_dim = cfg.hidden_dim
        self.embedding = nn.Embedding(cfg.src_vocab_size, cfg.emb_dim)
        self.rnn = nn.GRU(cfg.emb_dim, cfg.hidden_dim, num_layers=cfg.num_layers, batch_first=True)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """src (B, S) int64, src_lengths (B,) int64 -> outputs (B, S, H), hidden (L, B, H)."""
        x = self.dropout(self.embedding(src))  # (B, S, E)
        batch = src.shape[0]
        # A unidirectional GRU's output at t < length never sees the padding after it, so the
        # state at position length-1 is exactly the state of the unpadded sequence. Layers run one
        # at a time (same weights as the stacked nn.GRU) so every layer's state can be gathered.
        last = (src_lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, self.hidden_dim)  # (B, 1, H)
        nonempty = (src_lengths > 0).view(-1, 1).to(x.dtype)  # (B, 1): empty input -> zero state
        weights = self.rnn._flat_weights
        finals: List[torch.Tensor] = []
        for layer in range(self.num_layers):
            if layer > 0:
                x = self.dropout(x)
            h0 = x.new_zeros(1, batch, self.hidden_dim)
            x, _ = torch.gru(x, h0, weights[4 * layer : 4 * layer + 4], True, 1, 0.0, False, False, True)
            finals.append(x.gather(1, last).squeeze(1) * nonempty)  # (B, H)
        return x, torch.stack(finals, 0)  # (B, S, H), (L, B, H)


class Decoder(nn.Module):
    """Embedding -> stacked GRU -> Linear, one step per call (or a whole teacher-forced sequence)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.tgt_vocab_size, cfg.emb_dim)
        inner_dropout = cfg.dropout if cfg.num_layers > 1 else 0.0
        self.rnn = nn.GRU(cfg.emb_dim, cfg.hidden_dim, num_layers=cfg.num_layers, dropout=inner_dropout, batch_first=True)
        self.fc_out = nn.Linear(cfg.hidden_dim, cfg.tgt_vocab_size)
        self.dropout = nn.Dropout(cfg.dropout)

    def step(
        self,
        prev_tokens: torch.Tensor,
        hidden: torch.Tensor,
        encoder_outputs: Optional[torch.Tensor] = None,
        src_mask: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """prev_tokens (B,), hidden (L, B, H) -> logits (B, V), hidden (L, B, H).

        encoder_outputs (B, S, H) and src_mask (B, S) are accepted for attention variants; this
        baseline decoder ignores them.
        """
        x = self.dropout(self.embedding(prev_tokens)).unsqueeze(1)  # (B, 1, E)
        _, hidden = self.rnn(x, hidden)  # (L, B, H)
        # The last layer's new state is the step's output; reading it from `hidden` rather than the
        # (B, 1, H) output tensor keeps the exported step graph free of a squeeze and its shape ops.
        return self.fc_out(hidden[-1]), hidden

    def forward_sequence(self, tgt_in: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """Teacher forcing on every step in one GRU call: tgt_in (B, T) -> logits (B, T, V)."""
        x = self.dropout(self.embedding(tgt_in))  # (B, T, E)
        out, _ = self.rnn(x, hidden)  # (B, T, H)
        return self.fc_out(out)


class Seq2Seq(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def forward(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        tgt_in: torch.Tensor,
        teacher_forcing_ratio: float = 1.0,
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        """Training pass: tgt_in (B, T) is `<sos> y1 .. y(n)` padded; returns logits (B, T, V).

        With teacher_forcing_ratio < 1, each step feeds the gold token with that probability
        (one draw per step for the whole batch, as the seed does) and the model's argmax otherwise.
        """
        _, hidden = self.encoder(src, src_lengths)
        if teacher_forcing_ratio >= 1.0:
            return self.decoder.forward_sequence(tgt_in, hidden)
        steps = []
        token = tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            logits, hidden = self.decoder.step(token, hidden)
            steps.append(logits)
            if t + 1 < tgt_in.shape[1]:
                teacher = float(torch.rand((), generator=generator)) < teacher_forcing_ratio  # CPU draw
                token = tgt_in[:, t + 1] if teacher else logits.argmax(-1)
        return torch.stack(steps, 1)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> torch.Tensor:
        """The exported encoder graph: -> the decoder's initial hidden (L, B, H)."""
        return self.encoder(src, src_lengths)[1]

    def decode_step(self, prev_tokens: torch.Tensor, hidden: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The exported decoder-step graph: -> logits (B, V), next_tokens (B,), hidden_out (L, B, H)."""
        logits, hidden = self.decoder.step(prev_tokens, hidden)
        return logits, logits.argmax(-1), hidden


def sequence_loss(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Mean cross-entropy over non-pad target positions: logits (B, T, V), targets (B, T)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=pad_id)


def select_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cpu' / 'cuda' as asked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
