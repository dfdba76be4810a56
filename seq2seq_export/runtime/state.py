"""How the recurrent state and the attention memory flow between the two graphs, read from a
manifest or a model config.

numpy-free and torch-free: every backend reads the same flows, so a model with several state
tensors (e.g. an LSTM's hidden and cell) or with attention memory needs no new loop and no backend
change. Drivers carry every state and memory tensor by name and select rows of each along its
batch axis when rows finish.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config import ModelConfig
from ..errors import BundleError
from ..iospec import BATCH, DECODER_STEP, GraphSpec, carried_entries


@dataclass(frozen=True)
class StateFlow:
    """One state tensor: produced by the encoder as `encoder_output`, fed to each decoder step as
    `decoder_input`, returned by the step as `decoder_output` (the next step's input)."""

    encoder_output: str
    decoder_input: str
    decoder_output: str
    batch_axis: int  # axis of the batch dim in the state tensor, e.g. 1 for (L, B, H)


@dataclass(frozen=True)
class MemoryFlow:
    """One memory tensor (attention models): produced by the encoder as `encoder_output` and fed
    unchanged to every decoder step as `decoder_input`."""

    encoder_output: str
    decoder_input: str
    batch_axis: int  # axis of the batch dim, e.g. 0 for encoder_outputs (B, S, De)


def _checked(e: Any, keys: tuple[str, ...], decoder: GraphSpec, kind: str) -> tuple[list[str], int]:
    """The entry's values for `keys` (decoder_input second, decoder_output third if asked) and the
    batch axis of its decoder input; a BundleError if they do not fit the decoder_step graph."""
    try:
        values = [e[k] for k in keys]
    except (KeyError, TypeError):
        raise BundleError(f"manifest {kind} entry {e!r} lacks {'/'.join(keys)}") from None
    inputs = {t.name: t for t in decoder.inputs}
    din, outputs = values[1], values[2:]
    if din not in inputs or BATCH not in inputs[din].shape or any(o not in decoder.output_names for o in outputs):
        raise BundleError(f"manifest {kind} entry {e!r} does not match the {DECODER_STEP} graph's inputs and outputs")
    return values, inputs[din].shape.index(BATCH)


def state_flows(entries: Sequence[dict[str, Any]], decoder: GraphSpec) -> tuple[StateFlow, ...]:
    """Parse manifest `state` entries, checked against the decoder_step graph's inputs and outputs."""
    flows = []
    for e in entries:
        (enc, din, dout), axis = _checked(e, ("encoder_output", "decoder_input", "decoder_output"), decoder, "state")
        flows.append(StateFlow(enc, din, dout, axis))
    if not flows:
        raise BundleError("manifest lists no recurrent state: nothing to carry between decoder steps")
    return tuple(flows)


def memory_flows(entries: Sequence[dict[str, Any]], decoder: GraphSpec) -> tuple[MemoryFlow, ...]:
    """Parse manifest `memory` entries ([] for models without attention), checked like state entries."""
    flows = []
    for e in entries:
        (enc, din), axis = _checked(e, ("encoder_output", "decoder_input"), decoder, "memory")
        flows.append(MemoryFlow(enc, din, axis))
    return tuple(flows)


def config_state_flows(config: ModelConfig, decoder: GraphSpec) -> tuple[StateFlow, ...]:
    """The state flow a bundle exported from this config records (for backends built from a model)."""
    return state_flows(carried_entries(config)["state"], decoder)


def config_memory_flows(config: ModelConfig, decoder: GraphSpec) -> tuple[MemoryFlow, ...]:
    """The memory flow a bundle exported from this config records (empty without attention)."""
    return memory_flows(carried_entries(config)["memory"], decoder)
