"""How the recurrent state flows between the two graphs, read from a manifest or a model config.

numpy-free and torch-free: every backend reads the same flow, so a model with several state
tensors (e.g. an LSTM's hidden and cell) needs no new loop and no backend change.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..config import ModelConfig
from ..errors import BundleError
from ..iospec import BATCH, STATE_OUT_SUFFIX, GraphSpec


@dataclass(frozen=True)
class StateFlow:
    """One state tensor: produced by the encoder as `encoder_output`, fed to each decoder step as
    `decoder_input`, returned by the step as `decoder_output` (the next step's input)."""

    encoder_output: str
    decoder_input: str
    decoder_output: str
    batch_axis: int  # axis of the batch dim in the state tensor, e.g. 1 for (L, B, H)


def state_flows(entries: Sequence[dict[str, Any]], decoder: GraphSpec) -> tuple[StateFlow, ...]:
    """Parse manifest `state` entries, checked against the decoder_step graph's inputs and outputs."""
    inputs = {t.name: t for t in decoder.inputs}
    flows = []
    for e in entries:
        try:
            enc, din, dout = e["encoder_output"], e["decoder_input"], e["decoder_output"]
        except (KeyError, TypeError):
            raise BundleError(f"manifest state entry {e!r} lacks encoder_output/decoder_input/decoder_output") from None
        if din not in inputs or dout not in decoder.output_names or BATCH not in inputs[din].shape:
            raise BundleError(f"manifest state entry {e!r} does not match the decoder_step graph's inputs and outputs")
        flows.append(StateFlow(enc, din, dout, inputs[din].shape.index(BATCH)))
    if not flows:
        raise BundleError("manifest lists no recurrent state: nothing to carry between decoder steps")
    return tuple(flows)


def config_state_flows(config: ModelConfig, decoder: GraphSpec) -> tuple[StateFlow, ...]:
    """The flow a bundle exported from this config records (for backends built from a model)."""
    return state_flows(
        [{"encoder_output": s, "decoder_input": s, "decoder_output": s + STATE_OUT_SUFFIX} for s in config.state_names],
        decoder,
    )
