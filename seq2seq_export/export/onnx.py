"""ONNX export of the two graphs, and the lint that every ONNX file in a bundle must pass.

Two exporters: "dynamo" (torch.export-based, the default) and "legacy" (TorchScript-based). Both
write the same graph signature, stamped from the IO spec after export, so nothing downstream can
tell them apart by names, dtypes or dims. The lint functions each return a list of problems
(empty = fine); the verifier reuses them on bundles it did not write.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any, Iterator

import onnx
import torch
import torch.nn as nn

from ..constants import EXPORTERS, MIN_OPSET
from ..errors import ExportError, first_line
from ..fsutil import write_bytes
from ..iospec import GraphSpec

_ONNX_DTYPES = {"int64": onnx.TensorProto.INT64, "float32": onnx.TensorProto.FLOAT}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Swallow the exporters' prints, warnings and log lines (s2s-export output stays readable)."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # e.g. "torchvision is not installed. Skipping torchvision::nms"
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def _dynamic_shapes(spec: GraphSpec) -> tuple[dict[int, torch.export.Dim], ...]:
    """torch.export dynamic_shapes in input order: one Dim per dim name, shared across inputs."""
    dims: dict[str, torch.export.Dim] = {}
    return tuple(
        {axis: dims.setdefault(name, torch.export.Dim(name)) for axis, name in t.dynamic_axes().items()}
        for t in spec.inputs
    )


def _trace(module: nn.Module, args: tuple[torch.Tensor, ...], spec: GraphSpec, opset: int, exporter: str) -> onnx.ModelProto:
    names: dict[str, Any] = dict(input_names=spec.input_names, output_names=spec.output_names, opset_version=opset, verbose=False)
    if exporter == "dynamo":
        program = torch.onnx.export(module, args, dynamo=True, dynamic_shapes=_dynamic_shapes(spec), **names)
        if program is None:  # only when given a file to write, which the dynamo path is not
            raise ExportError(f"{spec.name}: the dynamo exporter returned no program")
        return program.model_proto
    f = io.BytesIO()
    torch.onnx.export(module, args, f, dynamo=False, dynamic_axes=spec.dynamic_axes(), do_constant_folding=True,  # type: ignore[arg-type]  # writes to a file object too
                      **names)
    return onnx.load_from_string(f.getvalue())


def apply_io_spec(model: onnx.ModelProto, spec: GraphSpec) -> None:
    """Write the spec's dtypes and dims (symbolic names included) onto the graph inputs and outputs.

    The exporters disagree on output dims (dynamo may record an example size, legacy invents names
    like 'Concathidden_dim_2'), and intermediate value_info can carry example sizes; the spec is
    the contract, so it wins and the optional value_info hints are dropped.
    """
    graph = model.graph
    for kind, values, tensors in (("input", graph.input, spec.inputs), ("output", graph.output, spec.outputs)):
        got = [v.name for v in values]
        if got != [t.name for t in tensors]:
            raise ExportError(f"{spec.name}: exported graph {kind}s are {got}, expected {[t.name for t in tensors]}")
        for value, tensor in zip(values, tensors):
            ttype = value.type.tensor_type
            ttype.elem_type = _ONNX_DTYPES[tensor.dtype]
            ttype.ClearField("shape")
            for d in tensor.shape:
                dim = ttype.shape.dim.add()
                if isinstance(d, str):
                    dim.dim_param = d
                else:
                    dim.dim_value = d
    del graph.value_info[:]


def export_onnx(
    module: nn.Module, args: tuple[torch.Tensor, ...], spec: GraphSpec, path: Path, *, opset: int, exporter: str
) -> None:
    """Export one graph to a single self-contained .onnx file and check it; ExportError on any problem."""
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown ONNX exporter {exporter!r}: use one of {', '.join(EXPORTERS)}")
    if opset < MIN_OPSET:
        raise ExportError(f"opset {opset} is too old: recurrent graphs need opset >= {MIN_OPSET}")
    with _quiet():
        try:
            model = _trace(module.eval(), args, spec, opset, exporter)
        except Exception as e:  # the exporters raise many unrelated types; report one line
            root: BaseException = e
            while root.__cause__ is not None:  # dynamo wraps the real cause in a generic "step 1/3" error
                root = root.__cause__
            cause = "" if root is e else f" (cause: {first_line(root)})"
            raise ExportError(f"{spec.name}: {exporter} ONNX export failed: {first_line(e)}{cause}") from None
    apply_io_spec(model, spec)
    if model.ByteSize() >= 2**31 - 1:
        raise ExportError(f"{spec.name}: the graph is over 2 GB and cannot be a single ONNX file")
    write_bytes(path, model.SerializeToString())  # Python IO: a full disk is an OSError, not an abort
    problems = check_onnx_file(path, spec, opset)
    if problems:
        raise ExportError(f"{path.name}: " + "; ".join(problems))


# --- lint: each function returns a list of problems, empty when the graph is fine -----------------


# {ONNX op: (attribute, the value PyTorch's semantics need, the ONNX default)}
_RNN_ATTRIBUTES = {
    # PyTorch's GRU applies the reset gate after the recurrent matmul; the ONNX default (0) silently
    # computes something else.
    "GRU": ("linear_before_reset", 1, 0),
    # PyTorch's LSTM has separate input and forget gates (no coupling).
    "LSTM": ("input_forget", 0, 0),
}
_LSTM_PEEPHOLES = 7  # input index of the LSTM op's optional peephole weights, which PyTorch's LSTM lacks


def rnn_problems(model: onnx.ModelProto) -> list[str]:
    """Every GRU and LSTM node computes PyTorch's cell: GRU linear_before_reset=1; LSTM
    input_forget=0 and no peephole weights."""
    problems = []
    for node in model.graph.node:
        if node.op_type not in _RNN_ATTRIBUTES:
            continue
        name, need, default = _RNN_ATTRIBUTES[node.op_type]
        got = next((a.i for a in node.attribute if a.name == name), default)
        if got != need:
            problems.append(f"{node.op_type} node {node.name or '?'} has {name}={got}, PyTorch semantics need {need}")
        if node.op_type == "LSTM" and len(node.input) > _LSTM_PEEPHOLES and node.input[_LSTM_PEEPHOLES]:
            problems.append(f"LSTM node {node.name or '?'} has peephole weights, which PyTorch's LSTM does not")
    return problems


def opset_problems(model: onnx.ModelProto, expected: int | None = None) -> list[str]:
    """The default-domain opset is at least MIN_OPSET, and equals `expected` when given."""
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        return ["graph imports no default-domain (ai.onnx) opset"]
    v = versions[0]
    problems = []
    if v < MIN_OPSET:
        problems.append(f"opset {v} is below the minimum {MIN_OPSET}")
    if expected is not None and v != expected:
        problems.append(f"opset {v} differs from the recorded opset {expected}")
    return problems


def _constant_values(model: onnx.ModelProto) -> dict[str, object]:
    """{tensor name: numpy value} for initializers and Constant node outputs."""
    values: dict[str, object] = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    values[node.output[0]] = onnx.numpy_helper.to_array(a.t)
    return values


def training_op_problems(model: onnx.ModelProto) -> list[str]:
    """No training-only behaviour: a Dropout whose training_mode is not a constant false, or any
    op from the training domain."""
    consts = _constant_values(model)
    problems = []
    for node in model.graph.node:
        if node.domain.startswith("ai.onnx.preview.training"):
            problems.append(f"training-only op {node.domain}.{node.op_type} ({node.name or '?'})")
        if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
            mode = consts.get(node.input[2])
            if mode is None or bool(mode):
                problems.append(f"Dropout node {node.name or '?'} runs in training mode (exported from a model in train())")
    return problems


def _dims(value: onnx.ValueInfoProto) -> list[int | str | None]:
    """int for a fixed dim, str for a named one, None for unknown."""
    out: list[int | str | None] = []
    for d in value.type.tensor_type.shape.dim:
        out.append(d.dim_param if d.HasField("dim_param") else d.dim_value if d.HasField("dim_value") else None)
    return out


def dynamic_axes_problems(model: onnx.ModelProto, spec: GraphSpec) -> list[str]:
    """Graph inputs and outputs carry the spec's names, dtypes and dims (dynamic ones symbolic)."""
    problems = []
    values = {v.name: v for v in list(model.graph.input) + list(model.graph.output)}
    for t in spec.inputs + spec.outputs:
        value = values.get(t.name)
        if value is None:
            problems.append(f"graph has no input or output named {t.name!r}")
            continue
        if value.type.tensor_type.elem_type != _ONNX_DTYPES[t.dtype]:
            problems.append(f"{t.name}: dtype is not {t.dtype}")
        dims = _dims(value)
        if len(dims) != len(t.shape):
            problems.append(f"{t.name}: rank {len(dims)}, expected {len(t.shape)}")
            continue
        for axis, (got, want) in enumerate(zip(dims, t.shape)):
            if isinstance(want, str) and not isinstance(got, str):
                problems.append(f"{t.name}: axis {axis} ({want}) is fixed to {got}, expected a dynamic axis")
            elif not isinstance(want, str) and got != want:
                problems.append(f"{t.name}: axis {axis} is {got}, expected {want}")
    return problems


def constant_batch_problems(model: onnx.ModelProto, spec: GraphSpec) -> list[str]:
    """No example size baked into the graph: with symbolic inputs, shape inference (with constant
    propagation) must not derive a fixed size for any dynamic axis (batch, src_len) of an output.
    Catches a graph traced at a fixed batch whose signature was later relabelled dynamic, and an
    exporter that froze the example source length into an internal shape."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for value in probe.graph.output:
        value.type.tensor_type.ClearField("shape")
    del probe.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, data_prop=True)
    except Exception as e:  # inference failures are reported, not raised, like every lint
        return [f"shape inference failed: {first_line(e)}"]
    outputs = {v.name: _dims(v) for v in inferred.graph.output}
    problems = []
    for t in spec.outputs:
        for axis, want in enumerate(t.shape):
            got = outputs.get(t.name, [])
            dim = got[axis] if axis < len(got) else None
            if isinstance(want, str) and isinstance(dim, int) and dim > 0:
                problems.append(f"{t.name}: {want} axis is a constant {dim} inside the graph")
    return problems


def check_onnx_model(model: onnx.ModelProto, spec: GraphSpec, opset: int | None = None) -> list[str]:
    """onnx.checker (full check) plus every lint above; an empty list means the graph is fine."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        return [f"onnx.checker: {first_line(e)}"]
    return (
        rnn_problems(model)
        + opset_problems(model, opset)
        + training_op_problems(model)
        + dynamic_axes_problems(model, spec)
        + constant_batch_problems(model, spec)
    )


def check_onnx_file(path: Path, spec: GraphSpec, opset: int | None = None) -> list[str]:
    """check_onnx_model on a file, which must be self-contained (no external data)."""
    return check_onnx_bytes(Path(path).read_bytes(), spec, opset)


def check_onnx_bytes(data: bytes, spec: GraphSpec, opset: int | None = None) -> list[str]:
    """check_onnx_model on a serialized model, which must be self-contained (no external data)."""
    model = onnx.load_model_from_string(data)
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        return [f"weights stored as external data ({len(external)} tensors); a bundle graph must be one file"]
    return check_onnx_model(model, spec, opset)
