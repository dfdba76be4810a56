"""The two exported graphs as nn.Modules, plus example inputs for tracing them.

Both exporters and the TorchScript path use these same wrappers, which compute exactly
Seq2Seq.encode and Seq2Seq.decode_step; IO names and dims come from iospec.graph_specs.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn as nn

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


class DecoderStepGraph(nn.Module):
    """Seq2Seq.decode_step as a module: prev_tokens (B,) int64, hidden (L, B, H) ->
    logits (B, V), next_tokens (B,) int64, hidden_out (L, B, H). Holds only the decoder."""

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.decoder = model.decoder

    def forward(self, prev_tokens: torch.Tensor, hidden: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, hidden_out = self.decoder.step(prev_tokens, hidden)
        return logits, logits.argmax(-1), hidden_out


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
