"""The bundle contract: `manifest.json` schema, writing it, and loading a bundle without trusting it.

Pure Python (json + hashlib): the torch-free onnx runtime loads bundles through this module.

Schema (format_version 1), documented for driver authors in the README:

    format_version   int, 1
    producer         {package, version, torch, onnx, opset, exporter}
    model_config     ModelConfig fields
    text             {source: VOCAB, target: VOCAB, src_append_eos: bool}
                     VOCAB = {tokenizer: "char"|"space", tokens: [str], specials: {pad, unk, sos, eos: id|null}}
    decoding         {strategy: "greedy", max_len: int, start_id: int, end_id: int}
    state            [{encoder_output, decoder_input, decoder_output}]  how the recurrent state flows
    memory           [{encoder_output, decoder_input}]  encoder outputs fed unchanged to every decoder
                     step (attention models: encoder_outputs, src_mask, + attention_keys for
                     Bahdanau); [] or absent when none
    graphs           {encoder|decoder_step: {inputs: [IO], outputs: [IO], files: {onnx|torchscript: FILE}}}
                     IO = {name, dtype, shape: [int | dim name]}
    reference        FILE or null   the eager checkpoint, for verification and the eager backend
    FILE = {path: relative path inside the bundle, sha256: hex, size: bytes}
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ModelConfig
from .constants import MANIFEST_FILE, MANIFEST_FORMAT_VERSION, SUPPORTED_MANIFEST_VERSIONS
from .errors import BundleError, Seq2SeqExportError
from .fsutil import sha256_file
from .iospec import PREV_TOKENS, STATE_OUT_SUFFIX, GraphSpec, graph_specs
from .vocab import TextPipeline

GRAPH_NAMES = ("encoder", "decoder_step")
FORMATS = ("onnx", "torchscript")


def file_entry(root: Path, relpath: str) -> dict:
    """A FILE record for a file already written inside the bundle directory `root`."""
    full = root / relpath
    return {"path": relpath, "sha256": sha256_file(full), "size": full.stat().st_size}


def build_manifest(
    config: ModelConfig,
    text: TextPipeline,
    max_len: int,
    producer: dict,
    graph_files: dict[str, dict[str, dict]],
    reference: dict | None,
) -> dict:
    """Assemble the manifest dict; graph_files is {graph name: {format: FILE}}."""
    specs = graph_specs(config)
    return {
        "format_version": MANIFEST_FORMAT_VERSION,
        "producer": producer,
        "model_config": config.to_dict(),
        "text": {
            "source": text.src.to_dict(),
            "target": text.tgt.to_dict(),
            "src_append_eos": text.src_append_eos,
        },
        "decoding": {"strategy": "greedy", "max_len": max_len, "start_id": text.tgt.sos_id, "end_id": text.tgt.eos_id},
        "state": [
            {"encoder_output": s, "decoder_input": s, "decoder_output": s + STATE_OUT_SUFFIX} for s in config.state_names
        ],
        "memory": [{"encoder_output": m, "decoder_input": m} for m in config.memory_names],
        "graphs": {
            name: {**specs[name].to_dict(), "files": graph_files.get(name, {})} for name in GRAPH_NAMES
        },
        "reference": reference,
    }


def write_manifest(root: Path, manifest: dict) -> None:
    (root / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class Bundle:
    """A loaded, checked bundle: every file it lists exists inside `root` with the recorded sha256."""

    root: Path
    manifest: dict[str, Any]
    config: ModelConfig
    text: TextPipeline
    graphs: dict[str, GraphSpec]
    max_len: int

    @property
    def formats(self) -> tuple[str, ...]:
        """Formats present for every graph, e.g. ('onnx', 'torchscript')."""
        files = [set(self.manifest["graphs"][g]["files"]) for g in GRAPH_NAMES]
        return tuple(f for f in FORMATS if all(f in s for s in files))

    def graph_file(self, graph: str, fmt: str) -> Path:
        entry = self.manifest["graphs"][graph]["files"].get(fmt)
        if entry is None:
            raise BundleError(f"{self.root}: bundle has no {fmt} file for the {graph} graph (formats: {', '.join(self.formats) or 'none'})")
        return self.root / entry["path"]

    @property
    def reference(self) -> Path | None:
        ref = self.manifest.get("reference")
        return None if ref is None else self.root / ref["path"]

    @property
    def state(self) -> list[dict]:
        return self.manifest["state"]

    @property
    def memory(self) -> list[dict]:
        """The manifest's memory entries; [] for bundles written before the key existed."""
        return self.manifest.get("memory", [])


def _check_file(root: Path, entry: Any, where: str) -> None:
    if not isinstance(entry, dict) or not all(k in entry for k in ("path", "sha256", "size")):
        raise BundleError(f"{root / MANIFEST_FILE}: {where} is not a file record with path, sha256 and size")
    rel = entry["path"]
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or ".." in Path(rel).parts or "\\" in rel:
        raise BundleError(f"{root / MANIFEST_FILE}: {where} path {rel!r} must be a relative path inside the bundle")
    full = root / rel
    try:
        resolved = full.resolve(strict=True)
    except (FileNotFoundError, RuntimeError):
        raise BundleError(f"{full}: file listed in the manifest ({where}) is missing") from None
    if root.resolve() not in resolved.parents:
        raise BundleError(f"{full}: {where} resolves to {resolved}, outside the bundle directory")
    if not resolved.is_file():
        raise BundleError(f"{full}: {where} is not a regular file")
    if resolved.stat().st_size != entry["size"] or sha256_file(resolved) != entry["sha256"]:
        raise BundleError(f"{full}: checksum mismatch ({where}): the file was changed or corrupted after export")


def _file_records(manifest: dict) -> list[tuple[str, Any]]:
    records = []
    for g in GRAPH_NAMES:
        for fmt, entry in manifest["graphs"][g].get("files", {}).items():
            if fmt not in FORMATS:
                raise BundleError(f"graph {g}: unknown format {fmt!r} (known: {', '.join(FORMATS)})")
            records.append((f"graphs.{g}.files.{fmt}", entry))
    if manifest.get("reference") is not None:
        records.append(("reference", manifest["reference"]))
    return records


def _check_carried(mpath: Path, manifest: dict, graphs: dict[str, GraphSpec]) -> None:
    """The state and memory entries connect the two graphs: each takes an encoder output, and every
    decoder_step input but prev_tokens is fed by one of them (runtime/state.py checks the rest)."""
    memory = manifest.get("memory", [])
    if not isinstance(manifest["state"], list) or not isinstance(memory, list):
        raise BundleError(f"{mpath}: manifest state and memory must be lists of entries")
    entries = manifest["state"] + memory
    outputs = graphs["encoder"].output_names
    for e in entries:
        if e.get("encoder_output") not in outputs:
            raise BundleError(f"{mpath}: manifest entry {e!r} names no output of the encoder graph ({', '.join(outputs)})")
    fed = {e.get("decoder_input") for e in entries}
    for name in graphs["decoder_step"].input_names:
        if name != PREV_TOKENS and name not in fed:
            raise BundleError(f"{mpath}: decoder_step input {name!r} is fed by no state or memory entry")


def load_bundle(path: str | os.PathLike) -> Bundle:
    """Check the manifest version and every listed file (location, size, sha256) before parsing more."""
    root = Path(path)
    mpath = root / MANIFEST_FILE
    if not root.is_dir():
        raise BundleError(f"{root}: not a bundle directory")
    if not mpath.is_file():
        raise BundleError(f"{mpath}: missing; is {root} a bundle written by s2s-export?")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{mpath}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{mpath}: top level must be a JSON object")
    version = manifest.get("format_version")
    if version not in SUPPORTED_MANIFEST_VERSIONS:
        raise BundleError(
            f"{mpath}: manifest format_version {version!r} is not supported (supported: "
            f"{', '.join(map(str, SUPPORTED_MANIFEST_VERSIONS))}); upgrade seq2seq-export or re-export"
        )
    try:
        for where, entry in _file_records(manifest):
            _check_file(root, entry, where)
        config = ModelConfig.from_dict(manifest["model_config"])
        t = manifest["text"]
        text = TextPipeline.from_dict({"src": t["source"], "tgt": t["target"], "src_append_eos": t["src_append_eos"]})
        graphs = {g: GraphSpec.from_dict(g, manifest["graphs"][g]) for g in GRAPH_NAMES}
        max_len = int(manifest["decoding"]["max_len"])
        _check_carried(mpath, manifest, graphs)
    except BundleError:
        raise
    except Seq2SeqExportError as e:
        raise BundleError(f"{mpath}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BundleError(f"{mpath}: malformed manifest: missing or bad field {e}") from None
    if len(text.src) != config.src_vocab_size or len(text.tgt) != config.tgt_vocab_size:
        raise BundleError(f"{mpath}: vocabulary sizes do not match model_config (wrong vocabulary?)")
    return Bundle(root=root, manifest=manifest, config=config, text=text, graphs=graphs, max_len=max_len)
