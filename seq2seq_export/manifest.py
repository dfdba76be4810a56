"""The bundle contract: `manifest.json`, writing it, and loading a bundle without trusting it.

Pure Python (json, hashlib, jsonschema): the torch-free onnx runtime loads bundles through this module.

Format 2, written by this version; manifest.schema.json (in the package) is its normative form, and
manifest_check.py adds the rules between fields. Format 1 bundles still load (memory, roles and
decoding.max_src_tokens were optional there).

    format_version   int, 2
    producer         {package, version, torch, onnx, opset, exporter}
    model_config     ModelConfig fields
    text             {source: VOCAB, target: VOCAB, src_append_eos: bool, normalize?: [STEP]}
                     normalize (optional, absent = none): "nfc" | "lower" steps applied to each source
                     text in this order before it is tokenized (vocab.normalize_text)
                     VOCAB = {tokenizer: "char"|"space", tokens: [str], specials: {pad, unk, sos, eos: id|null}}
    decoding         {strategy: "greedy", max_len: int, max_src_tokens: int, start_id: int, end_id: int}
                     max_src_tokens: the longest source the model saw in training, as it sees it (an
                     appended <eos> included): the default cap on tokens per input
    state            [{encoder_output, decoder_input, decoder_output}]  how the recurrent state flows
    memory           [{encoder_output, decoder_input}]  encoder outputs fed unchanged to every decoder
                     step (attention models: encoder_outputs, src_mask, + attention_keys for Bahdanau)
    roles            {src_tokens, src_lengths, prev_tokens, logits, next_tokens, attention}: the graph
                     input or output playing each part (attention: null without attention)
    graphs           {encoder|decoder_step: {inputs: [IO], outputs: [IO], files: {onnx|torchscript: FILE}}}
                     IO = {name, dtype, shape: [int | dim name]}; an onnx FILE may add external_data: [FILE]
    reference        FILE or null   the eager checkpoint, for verification and the eager backend
    FILE = {path: relative path inside the bundle, sha256: hex, size: bytes}

The bundle digest, "sha256:" + the sha256 of manifest.json's exact bytes, stands for the whole
bundle: the manifest pins every file by its sha256, and loading checks every one of them.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ModelConfig
from .constants import DEFAULT_MAX_SRC_TOKENS, FORMATS, MANIFEST_FILE, MANIFEST_FORMAT_VERSION
from .errors import BundleError, ConfigError
from .fsutil import sha256_file
from .iospec import GRAPH_NAMES, GraphSpec, carried_entries, graph_specs, io_roles
from .manifest_check import check_manifest, parse_manifest, read_bounded, read_manifest
from .vocab import TextPipeline

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


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
    max_src_tokens: int = DEFAULT_MAX_SRC_TOKENS,
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
            **({"normalize": list(text.normalize)} if text.normalize else {}),
        },
        "decoding": {"strategy": "greedy", "max_len": max_len, "max_src_tokens": max_src_tokens,
                     "start_id": text.tgt.sos_id, "end_id": text.tgt.eos_id},
        **carried_entries(config),  # "state", then "memory"
        "roles": io_roles(config),
        "graphs": {
            name: {**specs[name].to_dict(), "files": graph_files.get(name, {})} for name in GRAPH_NAMES
        },
        "reference": reference,
    }


def write_manifest(root: Path, manifest: dict) -> None:
    (root / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def read_listed(root: Path, entry: dict, where: str, keep: bool = True) -> bytes:
    """A file the manifest lists, read once: inside the bundle, a regular file, with the recorded
    sha256 (and so size). Returns those bytes (b"" with keep=False: check only)."""
    full = root / entry["path"]
    try:
        resolved = full.resolve(strict=True)
    except (OSError, RuntimeError):
        raise BundleError(f"{full}: file listed in the manifest ({where}) is missing") from None
    if root.resolve() not in resolved.parents:
        raise BundleError(f"{full}: {where} resolves to {resolved}, outside the bundle directory")
    digest = hashlib.sha256()
    data = read_bounded(resolved, entry["size"], follow=False, digest=digest, keep=keep)
    if data is None or digest.hexdigest() != entry["sha256"]:
        raise BundleError(f"{full}: checksum mismatch ({where}): the file was changed or corrupted after export")
    return data


def file_records(manifest: dict) -> list[tuple[str, dict]]:
    """(where, FILE) for every file the manifest lists: graphs, their external data, the reference."""
    records = []
    for g in GRAPH_NAMES:
        for fmt, entry in manifest["graphs"][g]["files"].items():
            records.append((f"graphs.{g}.files.{fmt}", entry))
            records += [(f"graphs.{g}.files.{fmt}.external_data.{i}", e) for i, e in enumerate(entry.get("external_data", []))]
    if manifest.get("reference") is not None:
        records.append(("reference", manifest["reference"]))
    return records


@dataclass(frozen=True)
class Bundle:
    """A loaded, checked bundle. Its files are read through read_checked, which checks the very bytes
    it returns, so nothing changed on disk after load_bundle is ever parsed."""

    root: Path
    manifest: dict[str, Any]
    config: ModelConfig
    text: TextPipeline
    graphs: dict[str, GraphSpec]
    max_len: int
    digest: str  # "sha256:" + sha256 of manifest.json's bytes: pins the whole bundle

    @property
    def formats(self) -> tuple[str, ...]:
        """Formats present for every graph, e.g. ('onnx', 'torchscript')."""
        files = [set(self.manifest["graphs"][g]["files"]) for g in GRAPH_NAMES]
        return tuple(f for f in FORMATS if all(f in s for s in files))

    def record(self, what: str, fmt: str | None = None) -> tuple[str, dict]:
        """(where, FILE) of a graph's file in `fmt`, or of what="reference"."""
        if what == "reference":
            if self.manifest.get("reference") is None:
                raise BundleError(f"{self.root}: bundle has no reference checkpoint")
            return "reference", self.manifest["reference"]
        entry = self.manifest["graphs"][what]["files"].get(fmt)
        if entry is None:
            raise BundleError(f"{self.root}: bundle has no {fmt} file for the {what} graph (formats: {', '.join(self.formats) or 'none'})")
        return f"graphs.{what}.files.{fmt}", entry

    def graph_file(self, graph: str, fmt: str) -> Path:
        """Where a graph's file lies, for messages; read it with read_checked, never by this path."""
        return self.root / self.record(graph, fmt)[1]["path"]

    def read_checked(self, what: str, fmt: str | None = None) -> bytes:
        """A graph's file in `fmt` (or what="reference"), read once and checked: parse these bytes."""
        where, entry = self.record(what, fmt)
        return read_listed(self.root, entry, where)

    def read_listed(self, entry: dict, where: str) -> bytes:
        """Any FILE record of this manifest (e.g. an ONNX graph's external data), read once and checked."""
        return read_listed(self.root, entry, where)

    @property
    def reference(self) -> Path | None:
        ref = self.manifest.get("reference")
        return None if ref is None else self.root / ref["path"]

    @property
    def state(self) -> list[dict]:
        return self.manifest["state"]

    @property
    def memory(self) -> list[dict]:
        """The manifest's memory entries; [] for format-1 bundles written before the key existed."""
        return self.manifest.get("memory", [])

    @property
    def max_src_tokens(self) -> int:
        """Tokens per input the model saw at most in training; DEFAULT_MAX_SRC_TOKENS when not recorded."""
        return self.manifest["decoding"].get("max_src_tokens", DEFAULT_MAX_SRC_TOKENS)


def _check_digest(mpath: Path, digest: str, expected: str) -> None:
    if not isinstance(expected, str) or not DIGEST_RE.fullmatch(expected.lower()):
        raise ConfigError(f"expected bundle digest {expected!r} is not of the form sha256:<64 hex digits>")
    if digest != expected.lower():
        raise BundleError(f"{mpath}: bundle digest {digest} differs from the expected {expected.lower()}")


def load_bundle(path: str | os.PathLike, expect_digest: str | None = None) -> Bundle:
    """Check the manifest (size, JSON, schema, rules between fields; its digest if one is expected)
    and every listed file (location, size, sha256), before any graph is parsed."""
    root = Path(path)
    mpath = root / MANIFEST_FILE
    if not root.is_dir():
        raise BundleError(f"{root}: not a bundle directory")
    if not mpath.is_file():
        raise BundleError(f"{mpath}: missing; is {root} a bundle written by s2s-export?")
    data = read_manifest(mpath)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if expect_digest is not None:
        _check_digest(mpath, digest, expect_digest)
    manifest = parse_manifest(mpath, data)
    config, text, graphs = check_manifest(mpath, manifest)
    for where, entry in file_records(manifest):
        read_listed(root, entry, where, keep=False)  # early errors; readers check again what they read
    max_len = manifest["decoding"]["max_len"]
    return Bundle(root=root, manifest=manifest, config=config, text=text, graphs=graphs, max_len=max_len, digest=digest)


def bundle_digest(path: str | os.PathLike) -> str:
    """The digest of a bundle whose every file has been checked: "sha256:" + 64 hex digits."""
    return load_bundle(path).digest
