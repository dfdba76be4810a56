"""The two exported graphs as nn.Modules, plus example inputs for tracing them.

Both exporters and the TorchScript path use these same wrappers. The encoder wrappers run the
model's own GraphEncoder (what Seq2Seq.encode runs); the decoder step is Seq2Seq.decode_step
rearranged for speed (same values within float rounding; the verifier checks them against the eager
model). IO names and dims come from iospec.graph_specs.

TorchScript needs a fixed signature per module, so each graph has one thin class per IO signature,
picked by the spec's input names and output count (WRAPPERS); the computation is shared, and
export/torchscript.py checks each scripted signature against the spec.
"""

from __future__ import annotations

import inspect
import typing

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ModelConfig
from ..errors import ExportError
from ..iospec import (
    BATCH,
    DECODER_STEP,
    ENCODER,
    PREV_TOKENS,
    SRC_LEN,
    SRC_LENGTHS,
    SRC_MASK,
    SRC_TOKENS,
    GraphSpec,
    graph_specs,
)
from ..model import GraphEncoder, Seq2Seq, source_mask

# Sizes of the example inputs used at export time. Both differ from 0 and 1 (which torch.export
# specializes) and from each other, so no dynamic axis can be mistaken for another.
EXPORT_BATCH = 2
EXPORT_SRC_LEN = 5

Tensor = torch.Tensor


class EncoderGraph1(GraphEncoder):
    """One output: hidden (L, B, H) (GRU, no attention)."""

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> Tensor:
        return self.outputs(src_tokens, src_lengths)[0]


class EncoderGraph2(GraphEncoder):
    """Two outputs: hidden, cell (L, B, H) (LSTM, no attention)."""

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor]:
        out = self.outputs(src_tokens, src_lengths)
        return out[0], out[1]


class EncoderGraph3(GraphEncoder):
    """Three outputs: hidden, encoder_outputs (B, S, De), src_mask (B, S) (GRU, Luong)."""

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.outputs(src_tokens, src_lengths)
        return out[0], out[1], out[2]


class EncoderGraph4(GraphEncoder):
    """Four outputs: hidden, cell, encoder_outputs, src_mask (LSTM, Luong) or hidden,
    encoder_outputs, src_mask, attention_keys (B, S, H) (GRU, Bahdanau)."""

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        out = self.outputs(src_tokens, src_lengths)
        return out[0], out[1], out[2], out[3]


class EncoderGraph5(GraphEncoder):
    """Five outputs: hidden, cell, encoder_outputs, src_mask, attention_keys (LSTM, Bahdanau)."""

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
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


def lstm_cell(gi: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor) -> tuple[Tensor, Tensor]:
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
            table = torch.addmm(
                rnn.bias_ih_l0, self.decoder.embedding.weight, rnn.weight_ih_l0[:, :emb].t()
            )  # (V, G*H)
        self.register_buffer("table", table.float())
        if self.bahdanau:  # the context's columns of W_ih_l0 (G*H, De); scripting compiles only used branches
            self.register_buffer("context_weight", rnn.weight_ih_l0[:, emb:].detach().clone().float())

    def step(
        self,
        prev_tokens: Tensor,
        states: list[Tensor],
        memory: Tensor | None,
        mask: Tensor | None,
        keys: Tensor | None = None,
    ) -> tuple[Tensor, list[Tensor], Tensor | None]:
        """prev_tokens (B,), states [(L, B, H)..], memory (B, S, De), mask (B, S), keys (B, S, H)
        (Bahdanau) -> logits (B, V), new states [(L, B, H)..], attention weights (B, S) or None."""
        weights = self.decoder.rnn._flat_weights  # per layer: w_ih, w_hh, b_ih, b_hh
        gi = self.table.index_select(0, prev_tokens)  # (B, G*H): one ONNX Gather
        attention: Tensor | None = None
        if self.bahdanau:
            assert memory is not None and mask is not None and keys is not None
            context, attn = self.decoder.attention(
                states[0][-1].unsqueeze(1), memory, mask, keys
            )  # (B, 1, De), (B, 1, S)
            gi = gi + F.linear(context.squeeze(1), self.context_weight)
            attention = attn.squeeze(1)
        hidden: list[Tensor] = []
        cell: list[Tensor] = []
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


class StepHidden(_DecoderCore):
    """prev_tokens (B,), hidden (L, B, H) -> logits (B, V), next_tokens (B,), hidden_out (GRU, no attention)."""

    def forward(self, prev_tokens: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, states, _ = self.step(prev_tokens, [hidden], None, None)
        return logits, logits.argmax(-1), states[0]


class StepHiddenCell(_DecoderCore):
    """prev_tokens, hidden, cell -> logits, next_tokens, hidden_out, cell_out (LSTM, no attention)."""

    def forward(self, prev_tokens: Tensor, hidden: Tensor, cell: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        logits, states, _ = self.step(prev_tokens, [hidden, cell], None, None)
        return logits, logits.argmax(-1), states[0], states[1]


class StepHiddenMemory(_DecoderCore):
    """prev_tokens, hidden, encoder_outputs, src_mask -> logits, next_tokens, hidden_out, attention
    (B, S) (GRU, Luong)."""

    def forward(
        self, prev_tokens: Tensor, hidden: Tensor, encoder_outputs: Tensor, src_mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        logits, states, attention = self.step(prev_tokens, [hidden], encoder_outputs, src_mask)
        assert attention is not None
        return logits, logits.argmax(-1), states[0], attention


class StepHiddenCellMemory(_DecoderCore):
    """prev_tokens, hidden, cell, encoder_outputs, src_mask -> logits, next_tokens, hidden_out,
    cell_out, attention (B, S) (LSTM, Luong)."""

    def forward(
        self, prev_tokens: Tensor, hidden: Tensor, cell: Tensor, encoder_outputs: Tensor, src_mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        logits, states, attention = self.step(prev_tokens, [hidden, cell], encoder_outputs, src_mask)
        assert attention is not None
        return logits, logits.argmax(-1), states[0], states[1], attention


class StepHiddenKeys(_DecoderCore):
    """prev_tokens, hidden, encoder_outputs, src_mask, attention_keys -> logits, next_tokens,
    hidden_out, attention (B, S) (GRU, Bahdanau)."""

    def forward(
        self, prev_tokens: Tensor, hidden: Tensor, encoder_outputs: Tensor, src_mask: Tensor, attention_keys: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        logits, states, attention = self.step(prev_tokens, [hidden], encoder_outputs, src_mask, attention_keys)
        assert attention is not None
        return logits, logits.argmax(-1), states[0], attention


class StepHiddenCellKeys(_DecoderCore):
    """prev_tokens, hidden, cell, encoder_outputs, src_mask, attention_keys -> logits, next_tokens,
    hidden_out, cell_out, attention (B, S) (LSTM, Bahdanau)."""

    def forward(
        self,
        prev_tokens: Tensor,
        hidden: Tensor,
        cell: Tensor,
        encoder_outputs: Tensor,
        src_mask: Tensor,
        attention_keys: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        logits, states, attention = self.step(prev_tokens, [hidden, cell], encoder_outputs, src_mask, attention_keys)
        assert attention is not None
        return logits, logits.argmax(-1), states[0], states[1], attention


def forward_inputs(cls: type[nn.Module]) -> tuple[str, ...]:
    """The input names a wrapper class's forward takes, in order (with forward_outputs, its key in WRAPPERS)."""
    return tuple(inspect.signature(cls.forward).parameters)[1:]


def forward_outputs(cls: type[nn.Module]) -> int:
    """How many outputs a wrapper class's forward returns, read from its return annotation."""
    ret = typing.get_type_hints(cls.forward)["return"]
    return len(typing.get_args(ret)) if typing.get_origin(ret) is tuple else 1


# The wrappers by IO signature: {(input names, output count): class}. Exactly the signatures
# iospec.graph_specs produces; a graph without a wrapper here cannot be exported.
WRAPPERS: dict[str, dict[tuple[tuple[str, ...], int], type[nn.Module]]] = {
    graph: {(forward_inputs(c), forward_outputs(c)): c for c in classes}
    for graph, classes in (
        (ENCODER, (EncoderGraph1, EncoderGraph2, EncoderGraph3, EncoderGraph4, EncoderGraph5)),
        (
            DECODER_STEP,
            (StepHidden, StepHiddenCell, StepHiddenMemory, StepHiddenCellMemory, StepHiddenKeys, StepHiddenCellKeys),
        ),
    )
}


def wrapper_class(spec: GraphSpec) -> type[nn.Module]:
    """The wrapper whose forward has the spec's input names and output count; ExportError if none."""
    key = (tuple(spec.input_names), len(spec.outputs))
    if key not in WRAPPERS.get(spec.name, {}):
        raise ExportError(f"{spec.name}: no export wrapper takes {list(key[0])} and returns {key[1]} outputs")
    return WRAPPERS[spec.name][key]


def graph_modules(model: Seq2Seq) -> dict[str, nn.Module]:
    """{graph name: its wrapper module in eval mode}; keys match iospec.graph_specs."""
    return {name: wrapper_class(spec)(model).eval() for name, spec in graph_specs(model.config).items()}


def example_inputs(spec: GraphSpec, cfg: ModelConfig, device: torch.device | str = "cpu") -> tuple[Tensor, ...]:
    """Inputs shaped by `spec` with batch EXPORT_BATCH and source length EXPORT_SRC_LEN."""
    gen = torch.Generator().manual_seed(0)
    sizes = {BATCH: EXPORT_BATCH, SRC_LEN: EXPORT_SRC_LEN}
    high = {SRC_TOKENS: cfg.src_vocab_size, PREV_TOKENS: cfg.tgt_vocab_size}
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
