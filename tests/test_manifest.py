"""manifest.json read without trust: size cap, strict JSON, the JSON Schema, rules between fields, the digest.

Every malformed case of manifest_cases.py is refused as one line naming the manifest, through the
Python API and through every command that reads a bundle (exit 2, no traceback, nothing written).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from manifest_cases import CASE_NAMES, CASES

from seq2seq_export.cli import bench_cmd, translate_cmd, verify_cmd
from seq2seq_export.constants import (
    MANIFEST_SCHEMA_FILE,
    MAX_LAYERS,
    MAX_LEN_CEILING,
    MAX_MANIFEST_BYTES,
    MAX_MODEL_DIM,
    MAX_SRC_TOKENS_CEILING,
    MAX_VOCAB_SIZE,
)
from seq2seq_export.errors import BundleError, ConfigError
from seq2seq_export.manifest import bundle_digest, load_bundle
from seq2seq_export.manifest_check import schema_validator

CASE = {c.name: c for c in CASES}


@pytest.fixture(scope="module")
def bad_bundles(tiny_bundle, tmp_path_factory) -> dict[str, Path]:
    """One copy of the tiny (format 2) bundle per malformed case, its manifest.json replaced."""
    good = json.loads((tiny_bundle / "manifest.json").read_text())
    base = tmp_path_factory.mktemp("bad")
    roots = {}
    for case in CASES:
        root = base / case.name
        shutil.copytree(tiny_bundle, root)
        (root / "manifest.json").write_bytes(case.apply(good))
        roots[case.name] = root
    return roots


def _one_line(message: str, root: Path) -> None:
    assert "\n" not in message.rstrip("\n") and str(root / "manifest.json") in message, message


@pytest.mark.parametrize("name", CASE_NAMES)
def test_every_malformed_manifest_is_one_bundle_error(name, bad_bundles):
    root = bad_bundles[name]
    with pytest.raises(BundleError) as e:
        load_bundle(root)
    _one_line(str(e.value), root)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_every_malformed_manifest_is_exit_2_for_every_command(name, bad_bundles, tmp_path):
    root = bad_bundles[name]
    report = tmp_path / "report.json"
    runs = {
        "translate": (translate_cmd, ["--bundle", str(root), "--json", "abc"]),
        "verify": (verify_cmd, ["--bundle", str(root), "--samples", "2", "--report", str(report)]),
        "bench": (
            bench_cmd,
            [
                "--bundle",
                str(root),
                "--samples",
                "2",
                "--repeat",
                "1",
                "--backends",
                "onnx",
                "--no-load-probe",
                "--report",
                str(report),
            ],
        ),
    }
    for command, (cmd, args) in runs.items():
        result = CliRunner().invoke(cmd, args)
        assert result.exit_code == 2, (command, result.output)
        assert result.stdout == "" and "Traceback" not in result.output, command
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, (command, result.stderr)
        _one_line(result.stderr, root)
        assert not report.exists(), command


@pytest.mark.parametrize(
    "name, message",
    [
        ("not_json", "not valid JSON (Expecting property name"),
        ("top_level_list", "top level must be a JSON object"),
        ("deep_nesting", "not valid JSON (nested too deeply)"),
        ("infinity", "not valid JSON (Infinity is not a JSON number)"),
        ("not_utf8", "not valid UTF-8 (byte "),
        ("format_version_3", "manifest format_version 3 is not supported (supported: 1, 2); upgrade"),
        ("format_version_string", "manifest format_version '2' is not supported"),
        ("missing_files", "graphs.encoder: 'files' is a required property"),
        ("missing_memory_v2", "top level: 'memory' is a required property"),
        ("unknown_top_level_key", "top level: Additional properties are not allowed ('surprise' was unexpected)"),
        ("max_len_bool", "decoding.max_len: True is not of type 'integer'"),
        ("max_len_huge", "decoding.max_len: 1000000000000 is greater than the maximum of 4096"),
        ("end_id_fraction", "decoding.end_id: 1.5 is not of type 'integer'"),
        ("end_id_outside_vocab", "decoding.end_id: id 100000 is outside the target vocabulary (size 12)"),
        ("special_outside_vocab", "text.source.specials.unk: id 100000 is outside the vocabulary (size 12)"),
        ("src_append_eos_string", "text.src_append_eos: 'false' is not of type 'boolean'"),
        ("token_with_newline", r"text.target.tokens.5: 'a\nb' breaks the rule: One vocabulary entry: no control"),
        ("duplicate_tokens", "text.source.tokens: 'g' appears twice (ids 10 and 11)"),
        ("vocab_size_mismatch", "model_config.tgt_vocab_size 3 differs from the target vocabulary's 12 tokens"),
        ("file_path_escape", "graphs.encoder.files.onnx.path: '../encoder.onnx' breaks the rule: A relative"),
        (
            "state_names_no_output",
            "state.0.encoder_output: 'no_such_output' names no output of the encoder graph (hidden)",
        ),
        ("decoder_input_unfed", "decoder_step input 'hidden' is fed by no state or memory entry"),
        ("role_names_no_input", "roles.prev_tokens: 'no_such_input' names no input of the decoder_step graph"),
    ],
)
def test_messages_name_the_field_and_the_problem(name, message, bad_bundles):
    with pytest.raises(BundleError) as e:
        load_bundle(bad_bundles[name])
    assert f"manifest.json: {message}" in str(e.value)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m["decoding"].update(max_len=1.0), "decoding.max_len: 1.0 is not of type 'integer'"),
        (
            lambda m: m["decoding"].update(start_id=3),
            "decoding.start_id: id 3 is not the target vocabulary's sos id (2)",
        ),
        (lambda m: m["roles"].update(logits="next_tokens"), "roles.logits: 'next_tokens' should be 'logits'"),
        (lambda m: m["roles"].update(attention="logits"), "roles.attention: 'logits' should be None"),
        (
            lambda m: m["graphs"]["encoder"]["inputs"][0].update(shape=["batch", 7]),
            "graphs.encoder.inputs ({'name': "
            "'src_tokens', 'dtype': 'int64', 'shape': ['batch', 7]}) differ from the ones this version",
        ),
        (
            lambda m: m["model_config"].update(attention_score="dot"),
            "attention_score 'dot' applies to luong attention only",
        ),
        (lambda m: m["text"]["target"]["specials"].update(sos=None), "decoding.start_id: id 2 is not the target"),
    ],
)
def test_rules_beyond_the_cases(edit, message, tiny_bundle, tmp_path):
    root = tmp_path / "b"
    shutil.copytree(tiny_bundle, root)
    manifest = json.loads((root / "manifest.json").read_text())
    edit(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="manifest.json: ") as e:
        load_bundle(root)
    assert message in str(e.value)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b'{"format_version": 2, "a": 1, "a": 2}', "key 'a' appears twice in one object"),
        (b'{"format_version": 2, "x": 1e999}', "number 1e999 is out of range"),
        (b'{"format_version": true}', "format_version True is not supported"),
        (b'{"format_version": 2.0}', "format_version 2.0 is not supported"),
        (b"\xef\xbb\xbf{}", "not valid JSON (Unexpected UTF-8 BOM"),
    ],
)
def test_strict_json(raw, message, tmp_path):
    (tmp_path / "manifest.json").write_bytes(raw)
    with pytest.raises(BundleError, match="manifest.json: ") as e:
        load_bundle(tmp_path)
    assert message in str(e.value)


def test_size_cap_refuses_before_reading(tmp_path):
    mpath = tmp_path / "manifest.json"
    with open(mpath, "wb") as f:  # sparse: 1 byte over the cap, never parsed
        f.truncate(MAX_MANIFEST_BYTES + 1)
    with pytest.raises(BundleError, match=r"manifest.json: larger than the 16 MB a manifest may have"):
        load_bundle(tmp_path)
    with open(mpath, "wb") as f:
        f.truncate(MAX_MANIFEST_BYTES)
    with pytest.raises(BundleError, match="not valid JSON"):  # at the cap: read and parsed
        load_bundle(tmp_path)


def test_a_manifest_full_of_schema_errors_is_refused_without_collecting_them(tmp_path):
    """1.2M bad tokens and 1M bad state entries, under the size cap: collecting every error took
    minutes; the loader reports the best of the first few (about 1 s; the bound only catches that)."""
    head = b'{"format_version": 2, "text": {"source": {"tokenizer": "char", "tokens": ['
    data = head + b'"\\u0001",' * 1_200_000 + b'"x"]}}, "state": [' + b"{}," * 1_000_000 + b"{}]}"
    assert len(data) < MAX_MANIFEST_BYTES
    (tmp_path / "manifest.json").write_bytes(data)
    start = time.monotonic()
    with pytest.raises(BundleError, match="manifest.json: top level: '.*' is a required property"):
        load_bundle(tmp_path)
    assert time.monotonic() - start < 30


def test_schema_is_valid_and_repeats_the_ceilings():
    validator = schema_validator()
    type(validator).check_schema(validator.schema)
    defs = validator.schema["$defs"]
    assert defs["decoding"]["properties"]["max_len"]["maximum"] == MAX_LEN_CEILING
    assert defs["decoding"]["properties"]["max_src_tokens"]["maximum"] == MAX_SRC_TOKENS_CEILING
    cfg = defs["model_config"]["properties"]
    assert cfg["src_vocab_size"]["maximum"] == cfg["tgt_vocab_size"]["maximum"] == MAX_VOCAB_SIZE
    assert defs["vocab"]["properties"]["tokens"]["maxItems"] == MAX_VOCAB_SIZE
    assert cfg["emb_dim"]["maximum"] == cfg["hidden_dim"]["maximum"] == MAX_MODEL_DIM
    assert cfg["num_layers"]["maximum"] == MAX_LAYERS
    assert (Path(__file__).parents[1] / "seq2seq_export" / MANIFEST_SCHEMA_FILE).is_file()


def test_integers_exclude_booleans_and_floats():
    validator = schema_validator()
    assert validator.is_type(3, "integer") and not validator.is_type(True, "integer")
    assert not validator.is_type(1.0, "integer") and validator.is_type(1.0, "number")


# --- the bundle digest ------------------------------------------------------------------------------


def test_digest_is_the_manifest_sha256_and_can_be_pinned(tiny_bundle, tmp_path):
    digest = "sha256:" + hashlib.sha256((tiny_bundle / "manifest.json").read_bytes()).hexdigest()
    assert bundle_digest(tiny_bundle) == load_bundle(tiny_bundle).digest == digest
    assert load_bundle(tiny_bundle, expect_digest=digest.upper().replace("SHA256", "sha256")).digest == digest
    other = tmp_path / "other"
    shutil.copytree(tiny_bundle, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["decoding"]["max_len"] = 7  # a valid bundle, decoding differently
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        BundleError,
        match=rf"other/manifest.json: bundle digest sha256:[0-9a-f]{{64}} differs from the expected {digest}",
    ):
        load_bundle(other, expect_digest=digest)
    with pytest.raises(ConfigError, match="expected bundle digest 'abc' is not of the form sha256:<64 hex digits>"):
        load_bundle(tiny_bundle, expect_digest="abc")


def test_digest_options_of_every_command(tiny_bundle, tmp_path):
    digest = load_bundle(tiny_bundle).digest
    wrong = "sha256:" + "0" * 64
    result = CliRunner().invoke(verify_cmd, ["--bundle", str(tiny_bundle), "--digest"])
    assert result.exit_code == 0 and result.stdout == digest + "\n", result.output
    result = CliRunner().invoke(verify_cmd, ["--bundle", str(tiny_bundle), "--digest", "--expect-digest", wrong])
    assert result.exit_code == 2 and f"differs from the expected {wrong}" in result.stderr
    result = CliRunner().invoke(translate_cmd, ["--bundle", str(tiny_bundle), "--expect-digest", digest, "abc"])
    assert result.exit_code == 0 and result.stdout.count("\n") == 1, result.output
    report = tmp_path / "r.json"
    for cmd, args in (
        (translate_cmd, ["abc"]),
        (verify_cmd, ["--samples", "2", "--report", str(report)]),
        (bench_cmd, ["--samples", "2", "--repeat", "1", "--no-load-probe", "--report", str(report)]),
    ):
        result = CliRunner().invoke(cmd, ["--bundle", str(tiny_bundle), "--expect-digest", wrong, *args])
        assert result.exit_code == 2 and result.stdout == "" and not report.exists(), result.output
        assert (
            result.stderr
            == f"Error: {tiny_bundle / 'manifest.json'}: bundle digest {digest} differs from the expected {wrong}\n"
        )
    result = CliRunner().invoke(
        bench_cmd,
        [
            "--bundle",
            str(tiny_bundle),
            "--expect-digest",
            digest,
            "--samples",
            "4",
            "--repeat",
            "1",
            "--batch-sizes",
            "2",
            "--backends",
            "onnx,torchscript",
        ],
    )
    assert result.exit_code == 0, result.output
