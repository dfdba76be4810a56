"""TorchScript backend: `torch.jit.load` of the bundle's encoder.pt and decoder_step.pt."""

from __future__ import annotations

import io

import torch

from ..errors import BundleError, first_line
from ..iospec import DECODER_STEP, GRAPH_NAMES
from ..manifest import Bundle
from ..model import select_device
from .eager_torchscript import TorchGraphBackend
from .state import memory_flows, state_flows


class TorchScriptBackend(TorchGraphBackend):
    """The bundle's two TorchScript modules; implements runtime.greedy.Backend."""

    def __init__(self, bundle: Bundle, device: torch.device | str | None = None):
        device = select_device("auto" if device is None else str(device))
        modules = {}
        for name in GRAPH_NAMES:
            path = bundle.graph_file(name, "torchscript")
            data = bundle.read_checked(name, "torchscript")  # never the path: the file may have changed since
            try:
                modules[name] = torch.jit.load(io.BytesIO(data), map_location=device).eval()
            except (RuntimeError, ValueError) as e:
                raise BundleError(f"{path}: torch.jit.load cannot read this module: {first_line(e)}") from None
        self.modules = modules
        decoder = bundle.graphs[DECODER_STEP]
        flows, memory = state_flows(bundle.state, decoder), memory_flows(bundle.memory, decoder)
        super().__init__(bundle.graphs, modules, flows, device, memory)
