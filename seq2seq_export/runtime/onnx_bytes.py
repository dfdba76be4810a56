"""A bundle's ONNX graph as checked, self-contained bytes: what onnxruntime and the lint parse.

A graph may keep tensors in external data files. onnxruntime, loading a model from bytes, would
resolve those files against the current directory and read them unchecked; so every external
tensor must live in a file its FILE record lists under external_data, which is read and checked
like the graph, and its bytes are inlined before the model is handed on. Needs onnx, never torch.
"""

from __future__ import annotations

from collections.abc import Iterator

import onnx

from ..errors import BundleError, first_line
from ..manifest import Bundle


def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor of a graph: initializers, sparse ones, node attributes, and subgraphs' tensors."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        yield from _attribute_tensors(node)


def _attribute_tensors(node: onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    for a in node.attribute:
        if a.HasField("t"):
            yield a.t
        yield from a.tensors
        for sparse in ([a.sparse_tensor] if a.HasField("sparse_tensor") else []) + list(a.sparse_tensors):
            yield from (sparse.values, sparse.indices)
        for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            yield from _graph_tensors(sub)


def _model_tensors(model: onnx.ModelProto) -> Iterator[onnx.TensorProto]:
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _attribute_tensors(node)


def checked_onnx_bytes(bundle: Bundle, graph: str) -> bytes:
    """The graph's file, read once and checked; with any external data read (checked) from the files
    its record lists and inlined. A tensor whose data lies in an unlisted file is a BundleError."""
    data = bundle.read_checked(graph, "onnx")
    path = bundle.graph_file(graph, "onnx")
    try:
        model = onnx.load_model_from_string(data)  # from bytes: loads no external data
    except Exception as e:  # protobuf's DecodeError and friends
        raise BundleError(f"{path}: not a readable ONNX graph: {first_line(e)}") from None
    external = [t for t in _model_tensors(model) if t.data_location == onnx.TensorProto.EXTERNAL]
    if not external:
        return data  # the checked bytes themselves
    where, record = bundle.record(graph, "onnx")
    listed = {e["path"]: (e, f"{where}.external_data.{i}") for i, e in enumerate(record.get("external_data", []))}
    files: dict[str, bytes] = {}
    for tensor in external:
        info = {kv.key: kv.value for kv in tensor.external_data}
        location = info.get("location", "")
        if location not in listed:
            raise BundleError(
                f"{path}: tensor {tensor.name!r} keeps its data in {location!r}, a file the manifest "
                f"does not list ({where}.external_data); refusing unchecked weights"
            )
        if location not in files:
            files[location] = bundle.read_listed(*listed[location])
        tensor.raw_data = _slice(files[location], info, path, tensor.name)
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]
    try:
        return model.SerializeToString()
    except ValueError as e:  # protobuf cannot serialize a model over 2 GB
        raise BundleError(f"{path}: cannot inline its external data: {first_line(e)}") from None


def _slice(blob: bytes, info: dict[str, str], path: object, name: str) -> bytes:
    """The tensor's bytes in its external file, by the offset and length its record gives."""
    try:
        offset = int(info.get("offset", "0"))
        length = int(info.get("length", str(len(blob) - offset)))
    except ValueError:
        raise BundleError(f"{path}: tensor {name!r} has a malformed external data offset or length") from None
    if offset < 0 or length < 0 or offset + length > len(blob):
        raise BundleError(
            f"{path}: tensor {name!r} reads bytes {offset}..{offset + length} of a "
            f"{len(blob)}-byte external file {info.get('location')!r}"
        )
    return blob[offset : offset + length]
