"""The two exported graphs as nn.Modules, plus example inputs for tracing them.

Both exporters and the TorchScript path use these same wrappers, which compute Seq2Seq.encode and
Seq2Seq.decode_step (the decoder step rearranged for speed, same values within float rounding; the
verifier checks them against the eager model); IO names and dims come from iospec.graph_specs.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ModelConfig
from ..iospec import BATCH, SRC_LEN, GraphSpec
from ..model import Seq2Seq

# Sizes of the example inputs used at export time. Both differ from 0 and 1 (which torch.export
# specializes) and from each other, so no dynamic axis can be mistaken for another.
EXPORT_BATCH = 2
EXPORT_SRC_LEN = 5


class EncoderGraph(nn.Module):
    """Seq2Seq.encode as a module: src_tokens (B, S) int64, src_lengths (B,) int64 -> hidden (L, B, H).

    It holds only the encoder, so a scripted encoder.pt carries no decoder weights; tests check it
    against Seq2Seq.encode.
    """

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.encoder = model.encoder

    def forward(self, src_tokens: torch.Tensor, src_lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder(src_tokens, src_lengths)[1]


def gru_cell(gi: torch.Tensor, h: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
    """One GRU step as torch.nn.GRU computes it (gates r, z, n; reset applied after the recurrent
    matmul): input projection gi (B, 3H), state h (B, H) -> new state (B, H)."""
    gh = F.linear(h, w_hh, b_hh)  # (B, 3H)
    i_r, i_z, i_n = gi.chunk(3, 1)  # (B, H) each
    h_r, h_z, h_n = gh.chunk(3, 1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


class DecoderStepGraph(nn.Module):
    """Seq2Seq.decode_step as a module: prev_tokens (B,) int64, hidden (L, B, H) ->
    logits (B, V), next_tokens (B,) int64, hidden_out (L, B, H). Holds only the decoder.

    The GRU runs as explicit cells, and layer 0's input projection is folded into the embedding:
    table[v] = embedding[v] @ W_ih_l0^T + b_ih_l0, so a step gathers one row instead of running a
    GEMM. That is exact for an eval-mode model (embedding dropout off), which graph_modules builds.
    """

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.decoder = model.decoder
        self.num_layers = model.config.num_layers
        rnn = self.decoder.rnn
        with torch.no_grad():
            table = torch.addmm(rnn.bias_ih_l0, self.decoder.embedding.weight, rnn.weight_ih_l0.t())  # (V, 3H)
        self.register_buffer("table", table.float())

    def forward(self, prev_tokens: torch.Tensor, hidden: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        weights = self.decoder.rnn._flat_weights  # per layer: w_ih, w_hh, b_ih, b_hh
        gi = self.table.index_select(0, prev_tokens)  # (B, 3H): one ONNX Gather
        states: List[torch.Tensor] = []
        for layer in range(self.num_layers):
            if layer > 0:
                gi = F.linear(states[-1], weights[4 * layer], weights[4 * layer + 2])  # (B, 3H)
            states.append(gru_cell(gi, hidden[layer], weights[4 * layer + 1], weights[4 * layer + 3]))
        logits = self.decoder.fc_out(states[-1])  # (B, V)
        return logits, logits.argmax(-1), torch.stack(states, 0)


def graph_modules(model: Seq2Seq) -> dict[str, nn.Module]:
    """{graph name: module in eval mode}; keys match iospec.graph_specs."""
    return {"encoder": EncoderGraph(model).eval(), "decoder_step": DecoderStepGraph(model).eval()}


def example_inputs(spec: GraphSpec, cfg: ModelConfig, device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
    """Inputs shaped by `spec` with batch EXPORT_BATCH and source length EXPORT_SRC_LEN."""
    gen = torch.Generator().manual_seed(0)
    sizes = {BATCH: EXPORT_BATCH, SRC_LEN: EXPORT_SRC_LEN}
    high = {"src_tokens": cfg.src_vocab_size, "prev_tokens": cfg.tgt_vocab_size}
    tensors = []
    for t in spec.inputs:
        shape = [sizes[d] if isinstance(d, str) else d for d in t.shape]
        if t.name == "src_lengths":  # mixed lengths, the longest filling the padded width
            x = torch.tensor([EXPORT_SRC_LEN - i % EXPORT_SRC_LEN for i in range(EXPORT_BATCH)])
        elif t.dtype == "int64":
            x = torch.randint(0, high[t.name], shape, generator=gen)
        else:
            x = torch.randn(shape, generator=gen)
        tensors.append(x.to(device))
    return tuple(tensors)
