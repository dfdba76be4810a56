"""Shared by tests/test_runtime_node.py, test_runtime_web.py and test_runtime_cpp.py (the drivers in runtimes/).

Three bundles (the trained toy model, a cmudict-shaped one that normalizes its source, and an attention +
LSTM + bidirectional variant that does not), 200+ inputs for each with empty lines, unknown symbols,
case and Unicode-composition variants and inputs longer than any training example, and what
`s2s-translate --backend onnx` prints for them: the drivers must print exactly that.
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ATTENTION_LSTM_BI, lively_checkpoint
from manifest_cases import CASE_NAMES, write_cases

from seq2seq_export.constants import MAX_SRC_TOKENS_CEILING

REPO = Path(__file__).resolve().parent.parent
NODE_DIR = REPO / "runtimes" / "node"
NODE_PACKAGES = ("onnxruntime-node", "onnxruntime-web", "playwright-core")
CHROMIUM = Path("/usr/bin/chromium")
S2S_TRANSLATE = str(Path(sys.executable).parent / "s2s-translate")
N_DATA = 190  # inputs taken from the dataset's test split, before the hand-written edge cases

TOY_EDGE = [
    "", "   ", "0", "1 0 2", "a b c", "x", "3 1 4", "3 1 4", " 3 1 4 ", "1\t2  3", "1\u30002\u30003",
    "1\x1c2\x1d3", "1\ufeff2 3", "1\u00a02", "１２３", "😀 1 2", "1 2 3\u2028 4", "\x85 1 2",
    " ".join("123456789" * 3), " ".join("9" * 40), " ".join("12" * 8),
]
CMUDICT_EDGE = [
    "", " ", "héllo", "naïve", "日本語", "😀", "abc!?", "UPPER", "MiXeD", "a b", "tab\tword", "don't", "x-ray",
    "'", "\u2028", "\x1c", "\ufeffbom", "lone\rcr", "a\u0301", "supercalifragilisticexpialidocious" * 2, "a" * 60,
    "pneumonoultramicroscopicsilicovolcanoconiosis", "zz" * 20,
]

# The cmudict case's source normalization (the cmudict presets record ["lower"]; this adds NFC, first).
NORMALIZE = ("nfc", "lower")
# Inputs each group of which the normalization makes one: case variants, and composed / decomposed
# accents (NFC, then ASCII lower-casing: "E\u0301" -> "\u00c9", which "lower" leaves alone; KELVIN SIGN -> K -> k).
SAME_READING = (
    ("hello", "HELLO", "Hello", "hElLo"), ("cat's", "CAT'S"), ("e\u0301", "\u00e9"), ("E\u0301", "\u00c9"),
    ("\u212a", "K", "k"), ("cafe\u0301", "CAFE\u0301", "caf\u00e9", "CAF\u00e9"),
)
# Where the steps' order and Unicode tables matter: no precomposed W WITH RING ABOVE exists, so NFC keeps
# "W\u030a" and lower-casing makes "w\u030a" (not the precomposed U+1E98); Hangul jamo compose; a
# non-ASCII capital stays (ASCII lower-casing only); a combining mark sequence is reordered.
NORMALIZE_EDGE = [w for group in SAME_READING for w in group] + [
    "W\u030a", "\u1e98", "\u1100\u1161", "\u00c9COLE", "a\u0323\u0302", "a\u0302\u0323", "\u0130stanbul", "\u03a3\u039f\u03a3",
]


def assert_same_readings(case_name: str, inputs: list[str], outputs: list[str]) -> None:
    """In the normalizing cmudict case, the inputs of each SAME_READING group give one output."""
    if case_name == "cmudict":
        got = dict(zip(inputs, outputs))
        assert all(len({got[w] for w in group}) == 1 for group in SAME_READING), [[got[w] for w in g] for g in SAME_READING]


@dataclass(frozen=True)
class Case:
    """A bundle, the inputs to feed every driver, and the Python runtime's outputs for them."""

    name: str
    bundle: Path
    inputs: list[str]
    expected: list[str]


def require_setup(*, browser: bool) -> None:
    """Skip (locally) or fail (CI=true) with the fix when `make runtimes-setup` has not run."""
    missing = [] if shutil.which("node") else ["node"]
    missing += [f"runtimes/node/node_modules/{p}" for p in NODE_PACKAGES if not (NODE_DIR / "node_modules" / p).is_dir()]
    if browser and not CHROMIUM.is_file():
        missing.append(str(CHROMIUM))
    if missing:
        message = f"JavaScript drivers not set up ({', '.join(missing)} missing): run `make runtimes-setup`"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(message)
        pytest.skip(message)


def python_outputs(bundle: Path, inputs: list[str], *args: str) -> list[str]:
    """What `s2s-translate --backend onnx` prints for `inputs`, one line each."""
    proc = subprocess.run(
        [S2S_TRANSLATE, "--bundle", str(bundle), "--backend", "onnx", *args],
        input="".join(f"{line}\n" for line in inputs).encode(), capture_output=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    outputs = proc.stdout.decode().split("\n")
    assert outputs.pop() == "" and len(outputs) == len(inputs)
    return outputs


# How the random cmudict-shaped models are made (see cmudict_checkpoint): weight scale and <eos> logit
# boost, tuned per variant so that outputs vary with the input (~80+ distinct) and rows finish at many
# different steps (0 to max_len), leaving their batch.
CMUDICT_MODELS = {
    "cmudict": dict(scale=4.0, eos_boost=2.0),  # the baseline: 1-layer GRU, no attention
    "attention": dict(scale=3.0, eos_boost=0.7, **ATTENTION_LSTM_BI),
}


def cmudict_checkpoint(path: Path, name: str) -> Path:
    """conftest's lively_checkpoint on cmudict's real vocabularies (char source with <eos> appended,
    space-separated ARPAbet target), as CMUDICT_MODELS[name] says."""
    from seq2seq_export.vocab import TextPipeline, Vocab

    data = _dataset("cmudict")
    text = TextPipeline(
        Vocab.build((s for s, _ in data.train), "char"), Vocab.build((t for _, t in data.train), "space"), src_append_eos=True,
        normalize=NORMALIZE if name == "cmudict" else (),
    )
    return lively_checkpoint(path, text=text, **CMUDICT_MODELS[name])


@functools.cache
def _dataset(name: str):
    from seq2seq_export.data import load_dataset

    return load_dataset(name)


def _inputs(dataset: str, edge: list[str]) -> list[str]:
    return [s for s, _ in _dataset(dataset).test][:N_DATA] + edge


_CASES: dict[str, Case] = {}  # one build per test session, shared by both test files


def build_case(name: str, request: pytest.FixtureRequest) -> Case:
    """The 'toy', 'cmudict' or 'attention' case, built once per session; its bundle has ONNX and
    TorchScript graphs, so every driver (Node, browser, C++) can share it. 'attention' (conftest's
    ATTENTION_LSTM_BI: 2-layer LSTM state, bidirectional encoder, Bahdanau attention memory) reuses
    the cmudict inputs."""
    if name not in _CASES:
        from seq2seq_export.bundle import export_bundle

        root = request.getfixturevalue("tmp_path_factory").mktemp(f"js-{name}")
        if name == "toy":
            checkpoint, inputs = request.getfixturevalue("toy_checkpoint"), _inputs("toy", TOY_EDGE)
        else:
            checkpoint, inputs = cmudict_checkpoint(root / "checkpoint.pt", name), _inputs("cmudict", CMUDICT_EDGE + NORMALIZE_EDGE)
        bundle = export_bundle(checkpoint, root / "bundle", formats=("onnx", "torchscript"), exporter="legacy", verify=None)
        rewrite_manifest(bundle, _identity_case_manifest)
        _CASES[name] = Case(name, bundle, inputs, python_outputs(bundle, inputs))
        assert_same_readings(name, inputs, _CASES[name].expected)
    return _CASES[name]


def _identity_case_manifest(manifest: dict) -> dict:
    """Format 2, with the input cap at its ceiling: the edge inputs are longer than the toy training
    data's longest source on purpose (the cap itself has tests of its own)."""
    m = as_format(manifest, 2)
    m["decoding"]["max_src_tokens"] = MAX_SRC_TOKENS_CEILING
    return m


# Roles by graph IO name, as format 2 writes them (seq2seq_export.iospec.io_roles); attention only
# when the decoder_step graph has that output.
FIXED_ROLES = ("src_tokens", "src_lengths", "prev_tokens", "logits", "next_tokens")
DEFAULT_MAX_SRC_TOKENS = 1024  # seq2seq_export.constants.DEFAULT_MAX_SRC_TOKENS: format 1's limit


def as_format(manifest: dict, version: int) -> dict:
    """A copy of `manifest` in format `version` (1 or 2), whichever it is in (or whether it is complete):
    format 2 has memory, roles and decoding.max_src_tokens; format 1 has neither roles nor max_src_tokens."""
    m = json.loads(json.dumps(manifest))
    m["format_version"] = version
    if version == 1:
        m.pop("roles", None)
        m["decoding"].pop("max_src_tokens", None)
        return m
    m.setdefault("memory", [])
    outputs = {t["name"] for t in m["graphs"]["decoder_step"]["outputs"]}
    m.setdefault("roles", {**{r: r for r in FIXED_ROLES}, "attention": "attention" if "attention" in outputs else None})
    m["decoding"].setdefault("max_src_tokens", DEFAULT_MAX_SRC_TOKENS)
    return m


def rewrite_manifest(bundle: Path, edit) -> None:
    """Replace bundle/manifest.json by edit(its dict) (the manifest is not covered by the checksums)."""
    path = bundle / "manifest.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text(encoding="utf-8"))), indent=2), encoding="utf-8")


# Edits of a manifest's state / memory entries that every driver must refuse (or, for "no memory
# entries", accept), shared by the Node and C++ bad-bundle tests.
FLOW_EDITS = ("state entry not graph IO", "memory entry not graph IO", "no memory entries", "memory not a list")


def edit_flows(manifest: dict, how: str) -> None:
    """Apply the FLOW_EDITS case `how` to a loaded manifest dict."""
    if how == "state entry not graph IO":
        manifest["state"][0]["decoder_output"] = "hidden_next"
    elif how == "memory entry not graph IO":
        manifest["memory"] = [{"encoder_output": "context", "decoder_input": "context"}]
    elif how == "no memory entries":
        manifest["memory"] = []
    elif how == "memory not a list":
        manifest["memory"] = {"encoder_output": "src_mask", "decoder_input": "src_mask"}


# What each driver's one line must say for each case of tests/manifest_cases.py (a regex): the field,
# so that a refusal for another reason (a bug, an unsupported version) does not pass.
REFUSAL_REASONS = {
    "not_json": "not valid JSON", "top_level_list": "top level must be a JSON object",
    "deep_nesting": r"producer: |nested more than 64 levels",  # JS parses it all; C++ stops at depth 64
    "infinity": "not valid JSON", "not_utf8": "not valid UTF-8",
    "format_version_3": "format_version 3 is not supported", "format_version_string": 'format_version "2" is not supported',
    "missing_files": "graphs.encoder: .*files", "missing_decoding": "top level: .*decoding",
    "missing_memory_v2": "top level: .*memory", "unknown_top_level_key": "surprise",
    "max_len_bool": "decoding.max_len: ", "max_len_zero": "decoding.max_len: ", "max_len_huge": "decoding.max_len: ",
    "max_src_tokens_negative": "decoding.max_src_tokens: ", "end_id_fraction": "decoding.end_id: ",
    "start_id_negative": "decoding.start_id: ", "end_id_outside_vocab": "decoding.end_id: id 100000 is outside",
    "special_outside_vocab": "text.source.specials.unk: id 100000 is outside", "src_append_eos_string": "text.src_append_eos: ",
    "token_not_string": r"text\.source\.tokens\.5: ", "token_with_newline": r"text\.target\.tokens\.5: ",
    "token_with_carriage_return": r"text\.source\.tokens\.5: ", "token_empty": r"text\.target\.tokens\.5: ",
    "duplicate_tokens": "text.source.tokens: .* appears twice", "tokenizer_unknown": "text.source.tokenizer: ",
    "normalize_not_list": r"text\.normalize: ", "normalize_unknown_step": r"text\.normalize(\.0)?: ",
    "normalize_duplicate_step": r"text\.normalize: ",
    "vocab_size_mismatch": "model_config.tgt_vocab_size 3 differs", "hidden_dim_string": "model_config.hidden_dim: ",
    "hidden_dim_absurd": "model_config.hidden_dim: ", "rnn_unknown": "model_config.rnn: ",
    "file_path_escape": "graphs.encoder.files.onnx.path: ", "file_path_absolute": "graphs.decoder_step.files.onnx.path: ",
    "file_sha_not_hex": "graphs.encoder.files.onnx.sha256: ", "file_size_string": "graphs.encoder.files.onnx.size: ",
    "io_dtype_unknown": r"graphs\.encoder\.inputs\.0\.dtype: ", "state_names_no_output": "state entry .*no_such_output",
    "decoder_input_unfed": "state entry .*hidden_x|fed by no state", "role_names_no_input": "roles.prev_tokens: ",
}
assert set(REFUSAL_REASONS) == set(CASE_NAMES), "every shared case needs the reason drivers must give"

_BAD: dict[str, Path] = {}  # built once per test session


def bad_manifest_bundles(request: pytest.FixtureRequest) -> Path:
    """A copy of the cmudict bundle (format 2) holding, in a folder per case of tests/manifest_cases.py,
    another copy whose manifest.json is that case's malformed manifest, made from the good one."""
    if "root" not in _BAD:
        good = build_case("cmudict", request).bundle
        root = request.getfixturevalue("tmp_path_factory").mktemp("bad-manifests") / "bundle"
        shutil.copytree(good, root)
        for name, path in write_cases(str(good / "manifest.json"), str(root.parent / "cases")).items():
            shutil.copytree(good, root / name)  # real copies: a symlinked graph would be refused for another reason
            shutil.copyfile(path, root / name / "manifest.json")
        _BAD["root"] = root
    return _BAD["root"]


def assert_refused(proc: subprocess.CompletedProcess, manifest: str, reason: str = "") -> None:
    """Exit 2, nothing on stdout, one line on stderr naming the manifest and matching `reason`, no stack trace."""
    stderr = proc.stderr.decode("utf-8", errors="replace")
    assert (proc.returncode, proc.stdout) == (2, b""), stderr
    assert_one_line(stderr.removeprefix("Error: ").removesuffix("\n"), manifest, reason)
    assert stderr.startswith("Error: ") and stderr.endswith("\n"), stderr


def assert_one_line(message: str, manifest: str, reason: str = "") -> None:
    """An error message: one line, naming the manifest first, saying `reason` (a regex), no stack trace."""
    assert message.startswith(f"{manifest}: ") and "\n" not in message and re.search(reason, message), message
    assert "Traceback" not in message and "    at " not in message, message


# More hostile manifests, beyond tests/manifest_cases.py, that once crashed or fooled a driver:
# {name: (the manifest bytes from the good manifest, the reason drivers give)}.
HOSTILE = {
    "byte_order_mark": (lambda m: b"\xef\xbb\xbf" + json.dumps(m).encode(), "not valid JSON"),
    "deep_format_version": (lambda m: b'{"format_version": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                            r"format_version \[\.\.\.\] is not supported|nested more than 64"),
    "path_of_megabytes": (lambda m: json.dumps(m).replace('"encoder.onnx"', json.dumps("a/" * 2_000_000 + "x"), 1).encode(),
                          r"graphs\.encoder\.files\.onnx\.path: "),
}


def hostile_bundle(bundle: Path, dest: Path, name: str) -> Path:
    """A copy of `bundle` at `dest` whose manifest.json is HOSTILE[name]'s."""
    root = Path(shutil.copytree(bundle, dest))
    (root / "manifest.json").write_bytes(HOSTILE[name][0](json.loads((bundle / "manifest.json").read_text())))
    return root
