"""runtimes/node: real node + onnxruntime-node must print exactly what `s2s-translate --backend onnx` prints,
and fail like it (one line on stderr, exit 2) on a bundle it cannot trust."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from js_drivers import FLOW_EDITS, REPO, Case, build_case, edit_flows, python_outputs, require_setup

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
    elif how == "format_version 2":
        manifest["format_version"] = 2
    elif how.startswith("path "):
        manifest["graphs"]["encoder"]["files"]["onnx"]["path"] = how[len("path "):]
    elif how in FLOW_EDITS:
        edit_flows(manifest, how)
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.mark.parametrize(
    "how, message",
    [
        ("missing file", "decoder_step.onnx: file listed in the manifest (graphs.decoder_step.files.onnx) is missing"),
        ("checksum mismatch", "encoder.onnx: checksum mismatch (graphs.encoder.files.onnx)"),
        ("symlink out of the bundle", "encoder.onnx: graphs.encoder.files.onnx resolves to"),
        ("format_version 2", "manifest format_version 2 is not supported (supported: 1)"),
        ("path ../encoder.onnx", 'path "../encoder.onnx" must be a relative path inside the bundle'),
        ("path /etc/passwd", 'path "/etc/passwd" must be a relative path inside the bundle'),
        ("path http://127.0.0.1:9/encoder.onnx", "must be a relative path inside the bundle"),
        ("state entry not graph IO", '"decoder_output":"hidden_next"} does not match the encoder and decoder_step graphs'),
        ("memory entry not graph IO",
         'memory entry {"encoder_output":"context","decoder_input":"context"} does not match the encoder and decoder_step graphs'),
        ("no memory entries", 'decoder_step input "encoder_outputs" is fed by no state or memory entry'),
        ("memory not a list", "manifest.json: state and memory must be lists of entries"),
    ],
)
def test_untrusted_bundle_is_one_line_and_exit_2(how, message, tmp_path, request):
    root = broken_copy(build_case("attention" if "memory" in how else "cmudict", request).bundle, tmp_path, how)
    proc = node_translate(root, ["abc"])
    stderr = proc.stderr.decode()
    assert (proc.returncode, proc.stdout) == (2, b"")
    assert stderr.startswith("Error: ") and message in stderr and stderr.count("\n") == 1, stderr


def test_bundle_without_memory_key_gives_same_output(request, tmp_path):
    """Bundles written before "memory" existed lack the key: they decode as before."""
    case = build_case("cmudict", request)
    proc = node_translate(broken_copy(case.bundle, tmp_path, "no memory entries"), case.inputs)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().split("\n")[:-1] == case.expected


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
