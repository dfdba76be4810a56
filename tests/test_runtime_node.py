"""runtimes/node: real node + onnxruntime-node must print exactly what `s2s-translate --backend onnx` prints,
and fail like it (one line on stderr, exit 2) on a bundle it cannot trust."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from js_drivers import (FLOW_EDITS, HOSTILE, REFUSAL_REASONS, REPO, Case, as_format, assert_refused,
                        assert_same_readings, bad_manifest_bundles, build_case, edit_flows, hostile_bundle,
                        python_outputs, require_setup, rewrite_manifest)
from manifest_cases import CASE_NAMES

TRANSLATE_MJS = REPO / "runtimes" / "node" / "translate.mjs"


@pytest.fixture(scope="module", autouse=True)
def _setup() -> None:
    require_setup(browser=False)


@pytest.fixture(scope="module", params=["toy", "cmudict", "attention"])
def case(request) -> Case:
    return build_case(request.param, request)


def node_translate(bundle: Path, inputs: list[str] | bytes, *args: str) -> subprocess.CompletedProcess:
    data = inputs if isinstance(inputs, bytes) else "".join(f"{line}\n" for line in inputs).encode()
    return subprocess.run(["node", str(TRANSLATE_MJS), "--bundle", str(bundle), *args], input=data, capture_output=True, timeout=120)


def test_same_output_as_python(case):
    proc = node_translate(case.bundle, case.inputs)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().split("\n")[:-1] == case.expected
    assert_same_readings(case.name, case.inputs, proc.stdout.decode().split("\n")[:-1])  # upper / mixed case, NFC
    assert len(case.inputs) >= 200 and "" in case.inputs
    assert len(set(case.expected)) >= 20  # outputs vary with the input: the comparison means something


def test_same_output_with_options_and_without_final_newline(case):
    inputs = case.inputs[:40]
    proc = node_translate(case.bundle, "\r\n".join(inputs).encode(), "--batch-size", "3", "--max-len", "5")
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().split("\n")[:-1] == python_outputs(case.bundle, inputs, "--batch-size", "3", "--max-len", "5")


def broken_copy(bundle: Path, tmp_path: Path, how: str) -> Path:
    root = Path(shutil.copytree(bundle, tmp_path / "bundle"))
    manifest = json.loads((root / "manifest.json").read_text())
    if how == "missing file":
        (root / "decoder_step.onnx").unlink()
    elif how == "checksum mismatch":
        with open(root / "encoder.onnx", "ab") as f:
            f.write(b"\0")
    elif how == "symlink out of the bundle":
        (root / "encoder.onnx").rename(tmp_path / "encoder.onnx")
        (root / "encoder.onnx").symlink_to(tmp_path / "encoder.onnx")
    elif how.startswith("path "):
        manifest["graphs"]["encoder"]["files"]["onnx"]["path"] = how[len("path "):]
    elif how in FLOW_EDITS:
        edit_flows(manifest, how)
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


PATH_REFUSED = "manifest.json: graphs.encoder.files.onnx.path: String does not match pattern."


@pytest.mark.parametrize(
    "how, message",
    [
        ("missing file", "decoder_step.onnx: file listed in the manifest (graphs.decoder_step.files.onnx) is missing"),
        ("checksum mismatch", "encoder.onnx: checksum mismatch (graphs.encoder.files.onnx)"),
        ("symlink out of the bundle", "encoder.onnx: graphs.encoder.files.onnx resolves to"),
        ("path ../encoder.onnx", PATH_REFUSED),
        ("path /etc/passwd", PATH_REFUSED),
        ("path http://127.0.0.1:9/encoder.onnx", PATH_REFUSED),
        ("state entry not graph IO", '"decoder_output":"hidden_next"} does not match the encoder and decoder_step graphs'),
        ("memory entry not graph IO",
         'memory entry {"encoder_output":"context","decoder_input":"context"} does not match the encoder and decoder_step graphs'),
        ("no memory entries", 'decoder_step input "encoder_outputs" is fed by no state or memory entry'),
        ("memory not a list", 'manifest.json: memory: Instance type "object" is invalid. Expected "array".'),
    ],
)
def test_untrusted_bundle_is_one_line_and_exit_2(how, message, tmp_path, request):
    root = broken_copy(build_case("attention" if "memory" in how else "cmudict", request).bundle, tmp_path, how)
    proc = node_translate(root, ["abc"])
    stderr = proc.stderr.decode()
    assert (proc.returncode, proc.stdout) == (2, b"")
    assert stderr.startswith("Error: ") and message in stderr and stderr.count("\n") == 1, stderr


@pytest.mark.parametrize("name", ["cmudict", "attention"])
def test_format_1_bundle_gives_same_output(name, request, tmp_path):
    """Format 1 bundles (no roles, no max_src_tokens; written before "memory" existed, no memory key
    either when they have none) decode exactly as format 2 ones."""
    case = build_case(name, request)
    root = Path(shutil.copytree(case.bundle, tmp_path / "bundle"))
    rewrite_manifest(root, lambda m: {k: v for k, v in as_format(m, 1).items() if k != "memory" or v})
    assert json.loads((root / "manifest.json").read_text())["format_version"] == 1
    proc = node_translate(root, case.inputs)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().split("\n")[:-1] == case.expected


@pytest.mark.parametrize("name", CASE_NAMES)
def test_malformed_manifest_is_one_line_and_exit_2(name, request):
    """Every case of tests/manifest_cases.py, as the Python runtime and the C++ driver refuse it."""
    root = bad_manifest_bundles(request) / name
    assert_refused(node_translate(root, ["abc"]), f"{root}/manifest.json", REFUSAL_REASONS[name])



@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_manifest_is_one_line_and_exit_2(name, request, tmp_path):
    root = hostile_bundle(build_case("cmudict", request).bundle, tmp_path / "bundle", name)
    assert_refused(node_translate(root, ["abc"]), f"{root}/manifest.json", HOSTILE[name][1])

def test_oversized_manifest_is_refused_before_it_is_read(request, tmp_path):
    root = Path(shutil.copytree(build_case("cmudict", request).bundle, tmp_path / "bundle"))
    (root / "manifest.json").write_bytes(b"{" + b" " * (16 << 20) + b"}")
    proc = node_translate(root, ["abc"])
    assert_refused(proc, f"{root}/manifest.json")
    assert b"larger than the 16 MB a manifest may have" in proc.stderr


@pytest.mark.parametrize("version", [1, 2])
def test_input_longer_than_max_src_tokens_names_its_line(version, request, tmp_path):
    """Format 2's decoding.max_src_tokens (format 1: 1024) counts the appended <eos>; the line number
    counts across stdin's rounds of 512 lines."""
    root = Path(shutil.copytree(build_case("cmudict", request).bundle, tmp_path / "bundle"))
    limit = 1024 if version == 1 else 7
    rewrite_manifest(root, lambda m: as_format({**m, "decoding": {**m["decoding"], "max_src_tokens": limit}}, version))
    ok = node_translate(root, ["a" * (limit - 1)])  # limit - 1 characters + <eos>: exactly the limit
    assert ok.returncode == 0 and ok.stdout.count(b"\n") == 1, ok.stderr.decode()
    proc = node_translate(root, ["abc"] * 600 + ["a" * limit, "abc"])
    assert proc.returncode == 2 and proc.stdout.count(b"\n") == 512
    assert proc.stderr.decode() == (f"Error: input line 601: {limit + 1} tokens, more than the {limit} this bundle accepts "
                                    "(decoding.max_src_tokens)\n")


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "missing option --bundle"),
        (["--bundle", "BUNDLE", "--max-len", "0"], "--max-len must be a positive integer"),
        (["--bundle", "BUNDLE", "--batch-size", "x"], "--batch-size must be a positive integer"),
        (["--bundle", "BUNDLE", "--beam", "4"], "Unknown option '--beam'"),
        (["--bundle", "/nonexistent"], "/nonexistent: not a bundle directory"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args, message, request):
    bundle = str(build_case("cmudict", request).bundle)
    proc = subprocess.run(["node", str(TRANSLATE_MJS), *[bundle if a == "BUNDLE" else a for a in args]],
                          input=b"abc\n", capture_output=True, timeout=60)
    stderr = proc.stderr.decode()
    assert proc.returncode == 2 and message in stderr and stderr.count("\n") == 1, stderr


def test_invalid_utf8_input_is_one_line_and_exit_2(request):
    proc = node_translate(build_case("cmudict", request).bundle, b"ab\xffc\n")
    assert (proc.returncode, proc.stderr) == (2, b"Error: standard input is not valid UTF-8\n")
