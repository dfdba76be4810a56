"""The two exported graphs as nn.Modules, plus example inputs for tracing them.

Both exporters and the TorchScript path use these same wrappers, which compute Seq2Seq.encode and
Seq2Seq.decode_step (the decoder step rearranged for speed, same values within float rounding; the
verifier checks them against the eager model); IO names and dims come from iospec.graph_specs.

TorchScript needs a fixed signature per module, so each graph has one thin class per IO signature
(GRU or LSTM state; no attention memory, Luong's two tensors or Bahdanau's three); the computation
is shared.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ModelConfig
from ..iospec import BATCH, SRC_LEN, SRC_LENGTHS, SRC_MASK, GraphSpec
from ..model import Seq2Seq, source_mask

# Sizes of the example inputs used at export time. Both differ from 0 and 1 (which torch.export
# specializes) and from each other, so no dynamic axis can be mistaken for another.
EXPORT_BATCH = 2
EXPORT_SRC_LEN = 5

Tensor = torch.Tensor


class _EncoderCore(nn.Module):
    """Seq2Seq.encode's outputs in iospec order, as a list. Holds only the encoder, so a scripted
    encoder.pt carries no decoder weights."""

    __constants__ = ["attention"]

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.encoder = model.encoder
        self.attention = bool(model.config.memory_names)
        # Bahdanau's key projection runs here, once per source; only that Linear of the decoder is held.
        self.key_proj = model.decoder.attention.key_proj if model.decoder.bahdanau else None

    def outputs(self, src_tokens: Tensor, src_lengths: Tensor) -> List[Tensor]:
        memory, states = self.encoder(src_tokens, src_lengths)  # (B, S, De), [(L, B, H)..]
        if not self.attention:
            return states
        out = states + [memory, source_mask(src_lengths, src_tokens.shape[1])]
        if self.key_proj is not None:
            out.append(self.key_proj(memory))  # (B, S, H): attention_keys
        return out


class EncoderGraph(_EncoderCore):
    """GRU, no attention: src_tokens (B, S), src_lengths (B,) -> hidden (L, B, H)."""

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> Tensor:
        return self.outputs(src_tokens, src_lengths)[0]


class LSTMEncoderGraph(_EncoderCore):
    """LSTM, no attention: -> hidden, cell (L, B, H)."""

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> Tuple[Tensor, Tensor]:
        out = self.outputs(src_tokens, src_lengths)
        return out[0], out[1]


class AttentionEncoderGraph(_EncoderCore):
    """GRU with Luong attention: -> hidden (L, B, H), encoder_outputs (B, S, De), src_mask (B, S)."""

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        out = self.outputs(src_tokens, src_lengths)
        return out[0], out[1], out[2]


class LSTMAttentionEncoderGraph(_EncoderCore):
    """LSTM with Luong attention: -> hidden, cell (L, B, H), encoder_outputs (B, S, De), src_mask (B, S)."""

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        out = self.outputs(src_tokens, src_lengths)
        return out[0], out[1], out[2], out[3]


class BahdanauEncoderGraph(_EncoderCore):
    """GRU with Bahdanau attention: -> hidden, encoder_outputs, src_mask, attention_keys (B, S, H)."""

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        out = self.outputs(src_tokens, src_lengths)
        return out[0], out[1], out[2], out[3]


class LSTMBahdanauEncoderGraph(_EncoderCore):
    """LSTM with Bahdanau attention: -> hidden, cell, encoder_outputs, src_mask, attention_keys."""

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        out = self.outputs(src_tokens, src_lengths)
        return out[0], out[1], out[2], out[3], out[4]


def gru_cell(gi: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """One GRU step as torch.nn.GRU computes it (gates r, z, n; reset applied after the recurrent
    matmul): input projection gi (B, 3H), state h (B, H) -> new state (B, H)."""
    gh = F.linear(h, w_hh, b_hh)  # (B, 3H)
    i_r, i_z, i_n = gi.chunk(3, 1)  # (B, H) each
    h_r, h_z, h_n = gh.chunk(3, 1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def lstm_cell(gi: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tuple[Tensor, Tensor]:
    """One LSTM step as torch.nn.LSTM computes it (gates i, f, g, o): input projection gi (B, 4H),
    hidden h and cell c (B, H) -> new hidden, new cell (B, H)."""
    i, f, g, o = (gi + F.linear(h, w_hh, b_hh)).chunk(4, 1)  # (B, H) each
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class _DecoderCore(nn.Module):
    """Seq2Seq.decode_step with explicit GRU/LSTM cells. Holds only the decoder.

    Layer 0's input projection of the embedding is folded into a table, table[v] = embedding[v] @
    W_e^T + b_ih_l0 (W_e: the embedding's columns of W_ih_l0), so a step gathers one row instead of
    running a GEMM; Bahdanau's context adds its own columns' projection. Exact for an eval-mode
    model (embedding dropout off), which graph_modules builds. Attention and the output layer are
    the model's own modules.
    """

    __constants__ = ["is_lstm", "bahdanau", "luong", "num_layers"]

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.decoder = model.decoder
        self.is_lstm, self.bahdanau, self.luong = model.decoder.is_lstm, model.decoder.bahdanau, model.decoder.luong
        self.num_layers = model.config.num_layers
        rnn, emb = self.decoder.rnn, model.config.emb_dim
        with torch.no_grad():
            table = torch.addmm(rnn.bias_ih_l0, self.decoder.embedding.weight, rnn.weight_ih_l0[:, :emb].t())  # (V, G*H)
        self.register_buffer("table", table.float())
        if self.bahdanau:  # the context's columns of W_ih_l0 (G*H, De); scripting compiles only used branches
            self.register_buffer("context_weight", rnn.weight_ih_l0[:, emb:].detach().clone().float())

    def step(
        self, prev_tokens: Tensor, states: List[Tensor], memory: Optional[Tensor], mask: Optional[Tensor],
        keys: Optional[Tensor] = None,
    ) -> Tuple[Tensor, List[Tensor], Optional[Tensor]]:
        """prev_tokens (B,), states [(L, B, H)..], memory (B, S, De), mask (B, S), keys (B, S, H)
        (Bahdanau) -> logits (B, V), new states [(L, B, H)..], attention weights (B, S) or None."""
        weights = self.decoder.rnn._flat_weights  # per layer: w_ih, w_hh, b_ih, b_hh
        gi = self.table.index_select(0, prev_tokens)  # (B, G*H): one ONNX Gather
        attention: Optional[Tensor] = None
        if self.bahdanau:
            assert memory is not None and mask is not None and keys is not None
            context, attn = self.decoder.attention(states[0][-1].unsqueeze(1), memory, mask, keys)  # (B, 1, De), (B, 1, S)
            gi = gi + F.linear(context.squeeze(1), self.context_weight)
            attention = attn.squeeze(1)
        hidden: List[Tensor] = []
        cell: List[Tensor] = []
        for layer in range(self.num_layers):
            if layer > 0:
                gi = F.linear(hidden[-1], weights[4 * layer], weights[4 * layer + 2])  # (B, G*H)
            if self.is_lstm:
                h, c = lstm_cell(gi, states[0][layer], states[1][layer], weights[4 * layer + 1], weights[4 * layer + 3])
                hidden.append(h)
                cell.append(c)
            else:
                hidden.append(gru_cell(gi, states[0][layer], weights[4 * layer + 1], weights[4 * layer + 3]))
        out = hidden[-1]  # (B, H)
        if self.luong:
            assert memory is not None and mask is not None
            attended, attn = self.decoder.attention(out.unsqueeze(1), memory, mask)  # (B, 1, H), (B, 1, S)
            out, attention = attended.squeeze(1), attn.squeeze(1)
        new_states = [torch.stack(hidden, 0)]
        if self.is_lstm:
            new_states.append(torch.stack(cell, 0))
        return self.decoder.fc_out(out), new_states, attention


class DecoderStepGraph(_DecoderCore):
    """GRU, no attention: prev_tokens (B,), hidden (L, B, H) -> logits (B, V), next_tokens (B,), hidden_out."""

    def forward(self, prev_tokens: Tensor, hidden: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        logits, states, _ = self.step(prev_tokens, [hidden], None, None)
        return logits, logits.argmax(-1), states[0]


class LSTMDecoderStepGraph(_DecoderCore):
    """LSTM, no attention: prev_tokens, hidden, cell -> logits, next_tokens, hidden_out, cell_out."""

    def forward(self, prev_tokens: Tensor, hidden: Tensor, cell: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        logits, states, _ = self.step(prev_tokens, [hidden, cell], None, None)
        return logits, logits.argmax(-1), states[0], states[1]


class AttentionDecoderStepGraph(_DecoderCore):
    """GRU with Luong attention: prev_tokens, hidden, encoder_outputs, src_mask -> logits, next_tokens,
    hidden_out, attention (B, S)."""

    def forward(
        self, prev_tokens: Tensor, hidden: Tensor, encoder_outputs: Tensor, src_mask: Tensor
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        logits, states, attention = self.step(prev_tokens, [hidden], encoder_outputs, src_mask)
        assert attention is not None
        return logits, logits.argmax(-1), states[0], attention


class LSTMAttentionDecoderStepGraph(_DecoderCore):
    """LSTM with Luong attention: prev_tokens, hidden, cell, encoder_outputs, src_mask -> logits,
    next_tokens, hidden_out, cell_out, attention (B, S)."""

    def forward(
        self, prev_tokens: Tensor, hidden: Tensor, cell: Tensor, encoder_outputs: Tensor, src_mask: Tensor
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        logits, states, attention = self.step(prev_tokens, [hidden, cell], encoder_outputs, src_mask)
        assert attention is not None
        return logits, logits.argmax(-1), states[0], states[1], attention


class BahdanauDecoderStepGraph(_DecoderCore):
    """GRU with Bahdanau attention: prev_tokens, hidden, encoder_outputs, src_mask, attention_keys ->
    logits, next_tokens, hidden_out, attention (B, S)."""

    def forward(
        self, prev_tokens: Tensor, hidden: Tensor, encoder_outputs: Tensor, src_mask: Tensor, attention_keys: Tensor
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        logits, states, attention = self.step(prev_tokens, [hidden], encoder_outputs, src_mask, attention_keys)
        assert attention is not None
        return logits, logits.argmax(-1), states[0], attention


class LSTMBahdanauDecoderStepGraph(_DecoderCore):
    """LSTM with Bahdanau attention: prev_tokens, hidden, cell, encoder_outputs, src_mask,
    attention_keys -> logits, next_tokens, hidden_out, cell_out, attention (B, S)."""

    def forward(
        self, prev_tokens: Tensor, hidden: Tensor, cell: Tensor, encoder_outputs: Tensor, src_mask: Tensor,
        attention_keys: Tensor,
    ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        logits, states, attention = self.step(prev_tokens, [hidden, cell], encoder_outputs, src_mask, attention_keys)
        assert attention is not None
        return logits, logits.argmax(-1), states[0], states[1], attention


# {(LSTM?, attention): (encoder class, decoder step class)}
GRAPH_CLASSES = {
    (False, "none"): (EncoderGraph, DecoderStepGraph),
    (True, "none"): (LSTMEncoderGraph, LSTMDecoderStepGraph),
    (False, "luong"): (AttentionEncoderGraph, AttentionDecoderStepGraph),
    (True, "luong"): (LSTMAttentionEncoderGraph, LSTMAttentionDecoderStepGraph),
    (False, "bahdanau"): (BahdanauEncoderGraph, BahdanauDecoderStepGraph),
    (True, "bahdanau"): (LSTMBahdanauEncoderGraph, LSTMBahdanauDecoderStepGraph),
}


def graph_modules(model: Seq2Seq) -> dict[str, nn.Module]:
    """{graph name: module in eval mode}; keys match iospec.graph_specs."""
    cfg = model.config
    encoder, decoder_step = GRAPH_CLASSES[cfg.rnn == "lstm", cfg.attention]
    return {"encoder": encoder(model).eval(), "decoder_step": decoder_step(model).eval()}


def example_inputs(spec: GraphSpec, cfg: ModelConfig, device: torch.device | str = "cpu") -> tuple[Tensor, ...]:
    """Inputs shaped by `spec` with batch EXPORT_BATCH and source length EXPORT_SRC_LEN."""
    gen = torch.Generator().manual_seed(0)
    sizes = {BATCH: EXPORT_BATCH, SRC_LEN: EXPORT_SRC_LEN}
    high = {"src_tokens": cfg.src_vocab_size, "prev_tokens": cfg.tgt_vocab_size}
    # Mixed lengths, the longest filling the padded width.
    lengths = torch.tensor([EXPORT_SRC_LEN - i % EXPORT_SRC_LEN for i in range(EXPORT_BATCH)])
    tensors = []
    for t in spec.inputs:
        shape = [sizes[d] if isinstance(d, str) else d for d in t.shape]
        if t.name == SRC_LENGTHS:
            x = lengths
        elif t.name == SRC_MASK:
            x = source_mask(lengths, EXPORT_SRC_LEN)
        elif t.dtype == "int64":
            x = torch.randint(0, high[t.name], shape, generator=gen)
        else:
            x = torch.randn(shape, generator=gen)
        tensors.append(x.to(device))
    return tuple(tensors)
