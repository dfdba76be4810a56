"""Reading manifest.json without trusting it: a size cap, strict JSON, the JSON Schema, then the rules
that relate fields to each other. Each problem is one BundleError line naming the manifest and field.

Pure Python (json + jsonschema): the torch-free onnx runtime loads bundles through this module.
"""
from __future__ import annotations

import functools
import itertools
import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

from .config import ModelConfig
from .constants import MANIFEST_SCHEMA_FILE, MAX_MANIFEST_BYTES, SUPPORTED_MANIFEST_VERSIONS
from .errors import BundleError, Seq2SeqExportError
from .iospec import DECODER_STEP, ENCODER, GRAPH_NAMES, PREV_TOKENS, ROLE_SIDES, GraphSpec, graph_specs, io_roles
from .vocab import TextPipeline

READ_CHUNK = 1 << 20
MESSAGE_CHARS = 200
# The best of the first few schema errors is reported: collecting every error of a hostile manifest
# (a million bad tokens) would take minutes; jsonschema finds errors lazily, so this bounds the time.
SCHEMA_ERRORS = 16  # a schema error quotes the offending value; longer quotes are cut here


def read_bounded(path: Path, limit: int, follow: bool = True, digest: Any = None, keep: bool = True) -> bytes | None:
    """A regular file's bytes, or None when it holds more than `limit` (by its size, or by what is
    read: never more than limit + 1 bytes). Never blocks on a FIFO; follow=False never follows a final
    symlink; `digest` (a hashlib object) sees every byte read; keep=False keeps none (returns b"")."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (0 if follow else getattr(os, "O_NOFOLLOW", 0))
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise BundleError(f"{path}: cannot be read ({e.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BundleError(f"{path}: not a regular file")
        if info.st_size > limit:
            return None
        if keep:  # one buffer the file's size (+1: a file that grew since fstat reads differently)
            data = f.read(info.st_size + 1)
            total = len(data)
            if digest is not None:
                digest.update(data)
        else:
            total, data = 0, b""
            while total <= limit and (block := f.read(min(READ_CHUNK, limit + 1 - total))):
                total += len(block)
                if digest is not None:
                    digest.update(block)
    return None if total > limit else data


def read_manifest(mpath: Path) -> bytes:
    """The manifest's exact bytes; refused above MAX_MANIFEST_BYTES before it is parsed."""
    data = read_bounded(mpath, MAX_MANIFEST_BYTES)
    if data is None:
        raise BundleError(f"{mpath}: larger than the {MAX_MANIFEST_BYTES >> 20} MB a manifest may have; "
                          "not a manifest written by s2s-export")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        dup = next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i]))
        raise ValueError(f"key {dup[:40]!r} appears twice in one object")
    return obj


def parse_manifest(mpath: Path, data: bytes) -> dict:
    """Strict JSON (UTF-8, no NaN or Infinity, no repeated keys) whose top level is a supported version."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BundleError(f"{mpath}: not valid UTF-8 (byte {e.start})") from None
    try:
        manifest = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise BundleError(f"{mpath}: not valid JSON (nested too deeply)") from None
    except ValueError as e:  # JSONDecodeError, too many digits, and the hooks above
        raise BundleError(f"{mpath}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{mpath}: top level must be a JSON object")
    version = manifest.get("format_version")
    if type(version) is not int or version not in SUPPORTED_MANIFEST_VERSIONS:
        raise BundleError(
            f"{mpath}: manifest format_version {repr(version)[:40]} is not supported (supported: "
            f"{', '.join(map(str, SUPPORTED_MANIFEST_VERSIONS))}); upgrade seq2seq-export or re-export"
        )
    return manifest


@functools.lru_cache(maxsize=1)
def schema_validator() -> Any:
    """The package's manifest.schema.json, where "integer" excludes booleans and floats (1.0 too)."""
    import jsonschema

    schema = json.loads((Path(__file__).parent / MANIFEST_SCHEMA_FILE).read_text(encoding="utf-8"))
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine("integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
    keywords = {"items": functools.partial(_items, base.VALIDATORS["items"])}
    cls = jsonschema.validators.extend(base, validators=keywords, type_checker=checker)
    return cls(_inline_refs(schema, schema["$defs"]))


def _inline_refs(node: Any, defs: dict) -> Any:
    """The schema with every bare {"$ref": "#/$defs/X"} replaced by X itself (the schema is not
    recursive): the same rules, without a reference lookup for each of a million tokens."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if len(node) == 1 and ref.startswith("#/$defs/"):
            return _inline_refs(defs[ref[len("#/$defs/"):]], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items()}
    return [_inline_refs(v, defs) for v in node] if isinstance(node, list) else node


PLAIN_STRING = {"type", "minLength", "maxLength", "pattern", "description"}


def _items(exact: Any, validator: Any, items: Any, instance: Any, schema: dict) -> Any:
    """The "items" keyword, fast for long arrays of plain strings (vocabularies): one loop with the
    item schema's own length bounds and pattern; any miss falls back to the exact per-item errors."""
    plain = isinstance(items, dict) and items.get("type") == "string" and set(items) <= PLAIN_STRING
    if plain and isinstance(instance, list) and "prefixItems" not in schema:
        lo, hi, pattern = items.get("minLength", 0), items.get("maxLength", math.inf), re.compile(items.get("pattern", ""))
        if set(map(type, instance)) <= {str} and lo <= min(map(len, instance), default=lo) and \
                max(map(len, instance), default=0) <= hi and all(map(pattern.search, instance)):
            return  # (map: the loops run in C)
    yield from exact(validator, items, instance, schema)


def validate_schema(mpath: Path, manifest: dict) -> None:
    """The most relevant schema error, as one line with its JSON path."""
    from jsonschema.exceptions import best_match

    try:
        error = best_match(itertools.islice(schema_validator().iter_errors(manifest), SCHEMA_ERRORS))
    except RecursionError:
        raise BundleError(f"{mpath}: nested too deeply to be a manifest") from None
    if error is not None:
        where = ".".join(map(str, error.absolute_path)) or "top level"
        raise BundleError(f"{mpath}: {where}: {_describe(error)}".replace("\n", "\\n"))


def _describe(error: Any) -> str:
    """The schema error's message, its quotes cut short; a broken pattern quotes the rule's description."""
    if error.validator == "pattern" and "description" in error.schema:
        value = repr(error.instance)
        value = value if len(value) <= MESSAGE_CHARS else value[:MESSAGE_CHARS] + "..."
        return f"{value} breaks the rule: {error.schema['description']}"
    return error.message if len(error.message) <= MESSAGE_CHARS else error.message[:MESSAGE_CHARS] + "..."


# --- rules between fields (each on a manifest that passed the schema) -------------------------------


def _check_vocab(mpath: Path, side: str, vocab: dict) -> None:
    """Special ids inside the vocabulary; no token twice."""
    tokens = vocab["tokens"]
    for name, i in vocab["specials"].items():
        if i is not None and i >= len(tokens):
            raise BundleError(f"{mpath}: text.{side}.specials.{name}: id {i} is outside the vocabulary (size {len(tokens)})")
    if len(set(tokens)) != len(tokens):
        seen: dict[str, int] = {}
        for i, tok in enumerate(tokens):
            if tok in seen:
                raise BundleError(f"{mpath}: text.{side}.tokens: {tok!r} appears twice (ids {seen[tok]} and {i})")
            seen[tok] = i


def _check_decoding(mpath: Path, manifest: dict) -> None:
    """decoding.start_id / end_id are the target vocabulary's <sos> / <eos>."""
    dec, target = manifest["decoding"], manifest["text"]["target"]
    for key, special in (("start_id", "sos"), ("end_id", "eos")):
        if dec[key] >= len(target["tokens"]):
            raise BundleError(f"{mpath}: decoding.{key}: id {dec[key]} is outside the target vocabulary "
                              f"(size {len(target['tokens'])})")
        if dec[key] != target["specials"][special]:
            raise BundleError(f"{mpath}: decoding.{key}: id {dec[key]} is not the target vocabulary's {special} id "
                              f"({target['specials'][special]})")


def _check_sizes(mpath: Path, manifest: dict, config: ModelConfig) -> None:
    for side, key in (("source", "src_vocab_size"), ("target", "tgt_vocab_size")):
        size = len(manifest["text"][side]["tokens"])
        if size != getattr(config, key):
            raise BundleError(f"{mpath}: model_config.{key} {getattr(config, key)} differs from the {side} "
                              f"vocabulary's {size} tokens (wrong vocabulary?)")


def _check_io(mpath: Path, graphs: dict[str, GraphSpec], config: ModelConfig) -> None:
    """The graphs' IO (names, dtypes, shapes) is exactly what this version exports for model_config."""
    expected = graph_specs(config)
    for g in GRAPH_NAMES:
        for side in ("inputs", "outputs"):
            got, want = getattr(graphs[g], side), getattr(expected[g], side)
            if got != want:
                first = next((a.to_dict() for a, b in zip(got, want) if a != b), [t.name for t in got])
                raise BundleError(
                    f"{mpath}: graphs.{g}.{side} ({first}) differ from the ones this version of seq2seq-export "
                    "exports for its model_config (an older bundle?); re-export it with s2s-export"
                )


def _check_carried(mpath: Path, manifest: dict, graphs: dict[str, GraphSpec]) -> None:
    """The state and memory entries connect the two graphs: each takes an encoder output, and every
    decoder_step input but prev_tokens is fed by one of them (runtime/state.py checks the rest)."""
    entries = [(f"{key}.{i}", e) for key in ("state", "memory") for i, e in enumerate(manifest.get(key, []))]
    outputs = graphs[ENCODER].output_names
    for where, e in entries:
        if e["encoder_output"] not in outputs:
            raise BundleError(f"{mpath}: {where}.encoder_output: {e['encoder_output']!r} names no output of the "
                              f"encoder graph ({', '.join(outputs)})")
    fed = {e["decoder_input"] for _, e in entries}
    for name in graphs[DECODER_STEP].input_names:
        if name != PREV_TOKENS and name not in fed:
            raise BundleError(f"{mpath}: decoder_step input {name!r} is fed by no state or memory entry")


def _check_roles(mpath: Path, manifest: dict, config: ModelConfig) -> None:
    """Each role (format 2) names the graph input or output that plays it in this model."""
    roles, specs, want = manifest.get("roles"), graph_specs(config), io_roles(config)
    for role, (graph, side) in ROLE_SIDES.items() if roles is not None else ():
        if roles[role] != want[role]:
            names = [t.name for t in getattr(specs[graph], side)]
            found = roles[role] in names or roles[role] is None
            what = f"should be {want[role]!r}" if found else f"names no {side[:-1]} of the {graph} graph ({', '.join(names)})"
            raise BundleError(f"{mpath}: roles.{role}: {roles[role]!r} {what}")


def check_manifest(mpath: Path, manifest: dict) -> tuple[ModelConfig, TextPipeline, dict[str, GraphSpec]]:
    """Schema, then every rule between fields; returns the model config, text pipeline and graph specs."""
    validate_schema(mpath, manifest)
    try:
        config = ModelConfig.from_dict(manifest["model_config"])
        _check_sizes(mpath, manifest, config)
        t = manifest["text"]
        _check_vocab(mpath, "source", t["source"])
        _check_vocab(mpath, "target", t["target"])
        _check_decoding(mpath, manifest)
        text = TextPipeline.from_dict({"src": t["source"], "tgt": t["target"], "src_append_eos": t["src_append_eos"],
                                       "normalize": t.get("normalize", [])})
    except BundleError:
        raise
    except Seq2SeqExportError as e:  # the config's and vocabularies' own rules
        raise BundleError(f"{mpath}: {e}") from None
    graphs = {g: GraphSpec.from_dict(g, manifest["graphs"][g]) for g in GRAPH_NAMES}
    _check_io(mpath, graphs, config)
    _check_carried(mpath, manifest, graphs)
    _check_roles(mpath, manifest, config)
    return config, text, graphs
