"""Malformed manifests, one per way a manifest can be hostile or broken.

Shared by the Python tests and the Node, browser and C++ driver tests, so every reader is held to
the same cases. Each case turns a good manifest into a bad one: `edit` changes the parsed dict in
place, or `raw` returns the whole file's bytes. Every reader must refuse every case with a one-line
error (exit 2 for the command-line tools), before any graph is loaded.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Case:
    name: str
    edit: Callable[[dict], Any] | None = None  # change the manifest dict in place
    raw: Callable[[dict], bytes] | None = None  # or: the whole file's bytes, from the good manifest

    def apply(self, manifest: dict) -> bytes:
        """The bad manifest.json bytes."""
        if self.raw is not None:
            return self.raw(manifest)
        bad = json.loads(json.dumps(manifest))
        self.edit(bad)
        return json.dumps(bad, indent=1).encode("utf-8")


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """An edit that sets manifest[a][b]... (dot-separated; digits index lists) to value."""
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]

    def edit(m: dict) -> None:
        for p in parents:
            m = m[p]
        m[last] = value

    return edit


def _delete(path: str) -> Callable[[dict], None]:
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]

    def edit(m: dict) -> None:
        for p in parents:
            m = m[p]
        del m[last]

    return edit


def _deep(depth: int) -> Callable[[dict], bytes]:
    return lambda m: b'{"format_version": 2, "producer": ' + b"[" * depth + b"]" * depth + b"}"


def _duplicate_token(m: dict) -> None:
    tokens = m["text"]["source"]["tokens"]
    tokens[-1] = tokens[-2]


def _unknown_state_output(m: dict) -> None:
    m["state"][0]["encoder_output"] = "no_such_output"


def _unfed_decoder_input(m: dict) -> None:
    m["state"] = m["state"][1:] or [{"encoder_output": "hidden", "decoder_input": "hidden_x", "decoder_output": "hidden_out"}]


CASES: tuple[Case, ...] = (
    Case("not_json", raw=lambda m: b"{ this is not json"),
    Case("top_level_list", raw=lambda m: b"[1, 2, 3]"),
    Case("deep_nesting", raw=_deep(100_000)),
    Case("infinity", raw=lambda m: re.sub(r'"max_len": \d+', '"max_len": Infinity', json.dumps(m), count=1).encode()),
    Case("not_utf8", raw=lambda m: json.dumps(m).encode("utf-8").replace(b'"greedy"', b'"gr\xffedy"', 1)),
    Case("format_version_3", edit=_set("format_version", 3)),
    Case("format_version_string", edit=_set("format_version", "2")),
    Case("missing_files", edit=_delete("graphs.encoder.files")),
    Case("missing_decoding", edit=_delete("decoding")),
    Case("missing_memory_v2", edit=_delete("memory")),
    Case("unknown_top_level_key", edit=_set("surprise", 1)),
    Case("max_len_bool", edit=_set("decoding.max_len", True)),
    Case("max_len_zero", edit=_set("decoding.max_len", 0)),
    Case("max_len_huge", edit=_set("decoding.max_len", 10**12)),
    Case("max_src_tokens_negative", edit=_set("decoding.max_src_tokens", -1)),
    Case("end_id_fraction", edit=_set("decoding.end_id", 1.5)),
    Case("start_id_negative", edit=_set("decoding.start_id", -1)),
    Case("end_id_outside_vocab", edit=_set("decoding.end_id", 100_000)),
    Case("special_outside_vocab", edit=_set("text.source.specials.unk", 100_000)),
    Case("src_append_eos_string", edit=_set("text.src_append_eos", "false")),
    Case("token_not_string", edit=_set("text.source.tokens.5", 7)),
    Case("token_with_newline", edit=_set("text.target.tokens.5", "a\nb")),
    Case("token_with_carriage_return", edit=_set("text.source.tokens.5", "\r")),
    Case("token_empty", edit=_set("text.target.tokens.5", "")),
    Case("duplicate_tokens", edit=_duplicate_token),
    Case("tokenizer_unknown", edit=_set("text.source.tokenizer", "bpe")),
    Case("normalize_not_list", edit=_set("text.normalize", "lower")),
    Case("normalize_unknown_step", edit=_set("text.normalize", ["upper"])),
    Case("normalize_duplicate_step", edit=_set("text.normalize", ["lower", "lower"])),
    Case("vocab_size_mismatch", edit=_set("model_config.tgt_vocab_size", 3)),
    Case("hidden_dim_string", edit=_set("model_config.hidden_dim", "32")),
    Case("hidden_dim_absurd", edit=_set("model_config.hidden_dim", 200_000)),
    Case("rnn_unknown", edit=_set("model_config.rnn", "transformer")),
    Case("file_path_escape", edit=_set("graphs.encoder.files.onnx.path", "../encoder.onnx")),
    Case("file_path_absolute", edit=_set("graphs.decoder_step.files.onnx.path", "/etc/passwd")),
    Case("file_sha_not_hex", edit=_set("graphs.encoder.files.onnx.sha256", "z" * 64)),
    Case("file_size_string", edit=_set("graphs.encoder.files.onnx.size", "100")),
    Case("io_dtype_unknown", edit=_set("graphs.encoder.inputs.0.dtype", "float16")),
    Case("state_names_no_output", edit=_unknown_state_output),
    Case("decoder_input_unfed", edit=_unfed_decoder_input),
    Case("role_names_no_input", edit=_set("roles.prev_tokens", "no_such_input")),
)

CASE_NAMES = tuple(c.name for c in CASES)
assert len(set(CASE_NAMES)) == len(CASE_NAMES), "case names must be unique"


def write_cases(manifest_path: str, out_dir: str) -> dict[str, str]:
    """Write each case's manifest bytes to OUT_DIR/NAME.json; {name: path}. For driver tests."""
    from pathlib import Path

    good = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for case in CASES:
        p = out / f"{case.name}.json"
        p.write_bytes(case.apply(good))
        paths[case.name] = str(p)
    return paths
