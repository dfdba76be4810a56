"""Test helpers: break a copy of a bundle's ONNX graphs on purpose, then re-hash its manifest.

Re-hashing makes the bundle loader accept the edited files, so it is the verifier that must catch
the problem, not the checksum check.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from seq2seq_export.constants import DECODER_ONNX, MANIFEST_FILE
from seq2seq_export.manifest import GRAPH_NAMES, file_entry


def copy_bundle(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def rehash(root: Path) -> None:
    """Recompute sha256 and size of every file the manifest lists."""
    manifest = json.loads((root / MANIFEST_FILE).read_text())
    for graph in GRAPH_NAMES:
        files = manifest["graphs"][graph]["files"]
        for fmt, entry in files.items():
            files[fmt] = file_entry(root, entry["path"])
    if manifest.get("reference"):
        manifest["reference"] = file_entry(root, manifest["reference"]["path"])
    (root / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))


def as_format_1(root: Path, drop_memory: bool = False) -> None:
    """Rewrite a bundle's format-2 manifest as format 1 wrote it: no roles, no decoding.max_src_tokens
    (and, with drop_memory, no memory: bundles from before attention)."""
    manifest = json.loads((root / MANIFEST_FILE).read_text())
    assert manifest["format_version"] == 2
    manifest["format_version"] = 1
    del manifest["roles"], manifest["decoding"]["max_src_tokens"]
    if drop_memory:
        assert manifest["memory"] == []
        del manifest["memory"]
    (root / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))


def edit_onnx(root: Path, edit: Callable[[onnx.ModelProto], None], name: str = DECODER_ONNX) -> None:
    """Apply `edit` to one ONNX graph of the bundle in place and re-hash."""
    path = root / name
    model = onnx.load(str(path))
    edit(model)
    onnx.save(model, str(path))
    rehash(root)


def flip_linear_before_reset(model: onnx.ModelProto) -> None:
    """Set every GRU node's linear_before_reset to 0 (torch's GRU needs 1)."""
    grus = [n for n in model.graph.node if n.op_type == "GRU"]
    assert grus, "graph has no GRU node"
    for node in grus:
        kept = [a for a in node.attribute if a.name != "linear_before_reset"]
        del node.attribute[:]
        node.attribute.extend(kept + [onnx.helper.make_attribute("linear_before_reset", 0)])


def perturb_largest_weight(model: onnx.ModelProto, eps: float = 1e-3) -> str:
    """Add +-eps (random signs, seeded) to every element of the largest float initializer; returns its name."""
    floats = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    target = max(floats, key=lambda t: int(np.prod(t.dims)))
    w = numpy_helper.to_array(target)
    signs = np.random.default_rng(0).choice([-1.0, 1.0], w.shape).astype(np.float32)
    target.CopyFrom(numpy_helper.from_array(w + eps * signs, target.name))
    return target.name


class _EagerDecodeStep(torch.nn.Module):
    """Seq2Seq.decode_step as a module, embedding dropout included."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, prev_tokens, hidden):
        return self.model.decode_step(prev_tokens, hidden)


def reexport_decoder_step(root: Path, *, train_mode: bool = False, fixed_batch: bool = False) -> None:
    """Replace decoder_step.onnx by a direct legacy export of the reference model, done wrongly on purpose:
    train_mode keeps dropout active (TrainingMode.TRAINING); fixed_batch exports batch 1 with no dynamic axes."""
    from seq2seq_export.checkpoint import load_checkpoint
    from seq2seq_export.export.graphs import example_inputs, graph_modules
    from seq2seq_export.iospec import BATCH
    from seq2seq_export.manifest import load_bundle

    bundle = load_bundle(root)
    model = load_checkpoint(bundle.reference).build_model()
    # train_mode exports the eager decoder step: the graph wrapper folds the embedding into the GRU
    # and so has no Dropout to leave in training mode.
    module = _EagerDecodeStep(model) if train_mode else graph_modules(model)["decoder_step"]
    spec = bundle.graphs["decoder_step"]
    inputs = example_inputs(spec, bundle.config)
    if fixed_batch:
        inputs = tuple(x.narrow(t.shape.index(BATCH), 0, 1) for x, t in zip(inputs, spec.inputs))
    if train_mode:
        model.train()
    torch.onnx.export(
        module,
        inputs,
        str(root / DECODER_ONNX),
        input_names=spec.input_names,
        output_names=spec.output_names,
        dynamic_axes=None if fixed_batch else spec.dynamic_axes(),
        opset_version=int(bundle.manifest["producer"]["opset"]),
        training=torch.onnx.TrainingMode.TRAINING if train_mode else torch.onnx.TrainingMode.EVAL,
        do_constant_folding=not train_mode,
        dynamo=False,
    )
    rehash(root)
