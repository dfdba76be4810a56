"""Eager backend: the reference PyTorch model, driven by the shared greedy loop."""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
import torch

from ..checkpoint import load_checkpoint
from ..errors import BundleError, CheckpointError
from ..iospec import DECODER_STEP, ENCODER, graph_specs
from ..manifest import Bundle
from ..model import Seq2Seq, select_device
from .state import MemoryFlow, StateFlow, config_memory_flows, config_state_flows, memory_flows, state_flows
from .eager_torchscript import TorchGraphBackend


class EagerBackend(TorchGraphBackend):
    """Runs `Seq2Seq.encode` / `Seq2Seq.decode_step` (the exported graphs' eager twins)."""

    def __init__(
        self,
        model: Seq2Seq,
        device: torch.device | str | None = None,
        flows: tuple[StateFlow, ...] | None = None,
        memory: tuple[MemoryFlow, ...] | None = None,
    ):
        """flows / memory: from a bundle's manifest; None = what a bundle exported from the model records."""
        device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(device).eval()
        graphs = graph_specs(model.config)
        flows = config_state_flows(model.config, graphs[DECODER_STEP]) if flows is None else flows
        memory = config_memory_flows(model.config, graphs[DECODER_STEP]) if memory is None else memory
        functions: dict[str, Callable[..., Any]] = {ENCODER: self.model.encode, DECODER_STEP: self.model.decode_step}
        super().__init__(graphs, functions, flows, device, memory)

    @classmethod
    def from_bundle(cls, bundle: Bundle, device: torch.device | str | None = None) -> "EagerBackend":
        """The bundle's reference checkpoint, which must describe the same model as the manifest."""
        if bundle.reference is None:
            raise BundleError(f"{bundle.root}: bundle has no reference checkpoint; the eager backend needs one")
        try:
            ckpt = load_checkpoint(bundle.reference, data=bundle.read_checked("reference"))
        except CheckpointError as e:
            raise BundleError(str(e)) from None
        if ckpt.config != bundle.config or ckpt.text != bundle.text:
            raise BundleError(f"{bundle.reference}: reference checkpoint's model config or vocabularies differ from the manifest")
        device = select_device("auto" if device is None else str(device))
        decoder = bundle.graphs[DECODER_STEP]
        return cls(ckpt.build_model(device), device, state_flows(bundle.state, decoder), memory_flows(bundle.memory, decoder))


class Float64Backend(EagerBackend):
    """An eager backend's model copied to float64, float inputs widened: the exact values that both
    float32 implementations (eager and exported) approximate; the verifier's float64 budget."""

    def __init__(self, eager: EagerBackend):
        super().__init__(copy.deepcopy(eager.model).double(), eager.device, eager.flows, eager.memory)

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        t = super()._tensor(a)
        return t.double() if t.is_floating_point() else t
