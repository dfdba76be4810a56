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


def schema_problems(scripted: torch.jit.ScriptModule, spec: GraphSpec) -> list[str]:
    """The scripted forward takes the spec's inputs by name, in order, and returns as many outputs."""
    schema = scripted.forward.schema  # type: ignore[attr-defined]  # a ScriptMethod, typed Callable by torch
    names = [a.name for a in schema.arguments[1:]]  # [0] is self
    ret = schema.returns[0].type if len(schema.returns) == 1 else None
    count = len(ret.elements()) if isinstance(ret, torch.TupleType) else len(schema.returns)
    problems = []
    if names != spec.input_names:
        problems.append(f"forward takes {names}, the IO spec says {spec.input_names}")
    if count != len(spec.outputs):
        problems.append(
            f"forward returns {count} outputs, the IO spec says {len(spec.outputs)} ({', '.join(spec.output_names)})"
        )
    return problems


def export_torchscript(module: nn.Module, spec: GraphSpec, path: Path) -> None:
    """Script `module` (a graphs.WRAPPERS class, in eval mode), check its signature against `spec`
    (as the ONNX exporter does), and save it to `path`."""
    try:
        scripted = torch.jit.script(module.eval())
    except Exception as e:  # TorchScript frontend errors come in several types
        raise ExportError(f"{spec.name}: torch.jit.script failed: {first_line(e)}") from None
    problems = schema_problems(scripted, spec)
    if problems:
        raise ExportError(f"{spec.name}: scripted graph does not match its IO spec: " + "; ".join(problems))
    buffer = io.BytesIO()  # torch.jit.save to a path aborts in C++ on a full disk; Python IO raises OSError
    torch.jit.save(scripted, buffer)
    write_bytes(path, buffer.getvalue())
