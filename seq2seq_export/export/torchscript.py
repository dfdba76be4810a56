"""TorchScript export of the two graphs: torch.jit.script of the same wrappers the ONNX path uses.

Scripting (not tracing) keeps the encoder's length handling exact for every batch and length, and
the files load with torch.jit.load in Python or torch::jit::load in C++.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import ExportError, first_line
from ..fsutil import write_bytes
from ..iospec import GraphSpec


def export_torchscript(module: nn.Module, spec: GraphSpec, path: Path) -> None:
    """Script `module` (one of graphs.GRAPH_CLASSES, in eval mode) and save it to `path`."""
    try:
        scripted = torch.jit.script(module.eval())
    except Exception as e:  # TorchScript frontend errors come in several types
        raise ExportError(f"{spec.name}: torch.jit.script failed: {first_line(e)}") from None
    buffer = io.BytesIO()  # torch.jit.save to a path aborts in C++ on a full disk; Python IO raises OSError
    torch.jit.save(scripted, buffer)
    write_bytes(path, buffer.getvalue())
