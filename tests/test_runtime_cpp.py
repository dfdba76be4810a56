"""runtimes/cpp: the libtorch driver must print exactly what `s2s-translate --backend onnx` prints, and fail
like it (the same one line on stderr, exit 2) on a bundle it cannot trust or options it cannot use."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from js_drivers import (FLOW_EDITS, HOSTILE, REFUSAL_REASONS, REPO, S2S_TRANSLATE, Case, as_format, assert_refused,
                        assert_same_readings, bad_manifest_bundles, build_case, edit_flows, hostile_bundle,
                        rewrite_manifest)
from manifest_cases import CASE_NAMES

TRANSLATE_BIN = REPO / "runtimes" / "cpp" / "build" / "translate"
PREREQUISITES = {"cmake": shutil.which("cmake"), "g++": shutil.which("g++"),
                 "nlohmann/json.hpp": Path("/usr/include/nlohmann/json.hpp").is_file(),
                 "openssl/evp.h": Path("/usr/include/openssl/evp.h").is_file(),
                 "valijson/validator.hpp": Path("/usr/include/valijson/validator.hpp").is_file()}


@pytest.fixture(scope="module", autouse=True)
def _build() -> None:
    """`make runtimes-cpp` (incremental); missing build tools skip locally and fail in CI; a failed build fails."""
    missing = [name for name, ok in PREREQUISITES.items() if not ok]
    if missing:
        message = f"C++ driver prerequisites missing ({', '.join(missing)}): run `make runtimes-setup`"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(message)
        pytest.skip(message)
    proc = subprocess.run(["make", "-C", str(REPO), "runtimes-cpp", f"PY={sys.executable}"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"C++ build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module", params=["toy", "cmudict", "attention"])
def case(request) -> Case:
    """The bundles, inputs and expected outputs that every driver shares (tests/js_drivers.py)."""
    return build_case(request.param, request)


@pytest.fixture(scope="module")
def cmudict_bundle(request) -> Path:
    return build_case("cmudict", request).bundle


def cpp_translate(bundle: Path, data: list[str] | bytes, *args: str) -> subprocess.CompletedProcess:
    data = data if isinstance(data, bytes) else "".join(f"{line}\n" for line in data).encode()
    return subprocess.run([str(TRANSLATE_BIN), "--bundle", str(bundle), *args], input=data, capture_output=True, timeout=120)


def python_translate(bundle: Path, data: bytes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([S2S_TRANSLATE, "--bundle", str(bundle), *args], input=data, capture_output=True, timeout=120)


def test_same_output_as_python(case):
    proc = cpp_translate(case.bundle, case.inputs)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().split("\n")[:-1] == case.expected
    assert_same_readings(case.name, case.inputs, proc.stdout.decode().split("\n")[:-1])  # upper / mixed case, NFC
    assert len(case.inputs) >= 200 and "" in case.inputs
    assert len(set(case.expected)) >= 20  # outputs vary with the input: the comparison means something


def test_same_output_as_both_python_backends_with_options_crlf_and_no_final_newline(case):
    from seq2seq_export.runtime.translator import Translator

    inputs = case.inputs[:60]
    data = "\r\n".join(inputs).encode()  # s2s-translate reads text-mode stdin: \r\n ends a line too
    options = ("--batch-size", "3", "--max-len", "5")
    proc = cpp_translate(case.bundle, data, *options, "--threads", "2")
    assert proc.returncode == 0, proc.stderr.decode()
    expected = python_translate(case.bundle, data, "--backend", "onnx", *options)
    assert expected.returncode == 0, expected.stderr.decode()
    assert proc.stdout == expected.stdout
    torchscript = Translator.from_bundle(case.bundle, "torchscript", batch_size=3, max_len=5, device="cpu")
    assert proc.stdout.decode().split("\n")[:-1] == torchscript.translate(inputs)


def broken_copy(bundle: Path, tmp_path: Path, how: str) -> Path:
    root = Path(shutil.copytree(bundle, tmp_path / "bundle"))
    manifest = json.loads((root / "manifest.json").read_text())
    if how == "missing file":
        (root / "decoder_step.pt").unlink()
    elif how == "checksum mismatch":
        with open(root / "encoder.pt", "ab") as f:
            f.write(b"\0")
    elif how == "symlink outside":
        (tmp_path / "outside.pt").write_bytes((root / "encoder.pt").read_bytes())
        (root / "encoder.pt").unlink()
        (root / "encoder.pt").symlink_to(tmp_path / "outside.pt")
    elif how == "no manifest":
        (root / "manifest.json").unlink()
        return root
    elif how in FLOW_EDITS:
        edit_flows(manifest, how)
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def python_error(make_translator) -> bytes:
    """What s2s-translate prints for the library error that `make_translator()` raises."""
    from seq2seq_export.errors import Seq2SeqExportError

    with pytest.raises(Seq2SeqExportError) as e:
        make_translator()
    return f"Error: {e.value}\n".encode()


@pytest.mark.parametrize("how", ["missing file", "checksum mismatch", "symlink outside", "no manifest"])
def test_untrusted_bundle_fails_exactly_like_python(how, cmudict_bundle, tmp_path):
    from seq2seq_export.runtime.translator import Translator

    root = broken_copy(cmudict_bundle, tmp_path, how)
    proc = cpp_translate(root, ["abc"])
    assert (proc.returncode, proc.stdout) == (2, b"")
    assert proc.stderr == python_error(lambda: Translator.from_bundle(root, "onnx"))


@pytest.mark.parametrize("how, message", [
    ("state entry not graph IO", 'state entry {"decoder_input":"hidden","decoder_output":"hidden_next","encoder_output":"hidden"} '
                                 "does not match the encoder and decoder_step graphs"),
    ("memory entry not graph IO",
     'memory entry {"decoder_input":"context","encoder_output":"context"} does not match the encoder and decoder_step graphs'),
    ("no memory entries", "decoder_step input 'encoder_outputs' is fed by no state or memory entry"),
    ("memory not a list", "memory: Value type not permitted by 'type' constraint."),
])
def test_state_and_memory_entries_must_name_graph_io(how, message, request, tmp_path):
    root = broken_copy(build_case("attention", request).bundle, tmp_path, how)
    proc = cpp_translate(root, ["abc"])
    stderr = proc.stderr.decode()
    assert (proc.returncode, proc.stdout) == (2, b"")
    assert stderr.startswith(f"Error: {root / 'manifest.json'}: ") and message in stderr and stderr.count("\n") == 1, stderr


@pytest.mark.parametrize("name", ["cmudict", "attention"])
def test_format_1_bundle_gives_same_output(name, request, tmp_path):
    """Format 1 bundles (no roles, no max_src_tokens; written before "memory" existed, no memory key
    either when they have none) decode exactly as format 2 ones."""
    case = build_case(name, request)
    root = Path(shutil.copytree(case.bundle, tmp_path / "bundle"))
    rewrite_manifest(root, lambda m: {k: v for k, v in as_format(m, 1).items() if k != "memory" or v})
    proc = cpp_translate(root, case.inputs)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().split("\n")[:-1] == case.expected


@pytest.mark.parametrize("name", CASE_NAMES)
def test_malformed_manifest_is_one_line_and_exit_2(name, request):
    """Every case of tests/manifest_cases.py, as the Python runtime and the JS drivers refuse it."""
    root = bad_manifest_bundles(request) / name
    assert_refused(cpp_translate(root, ["abc"]), str(root / "manifest.json"), REFUSAL_REASONS[name])



@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_manifest_is_one_line_and_exit_2(name, request, tmp_path):
    root = hostile_bundle(build_case("cmudict", request).bundle, tmp_path / "bundle", name)
    assert_refused(cpp_translate(root, ["abc"]), str(root / "manifest.json"), HOSTILE[name][1])

def test_oversized_manifest_is_refused_before_it_is_read(cmudict_bundle, tmp_path):
    root = Path(shutil.copytree(cmudict_bundle, tmp_path / "bundle"))
    (root / "manifest.json").write_bytes(b"{" + b" " * (16 << 20) + b"}")
    proc = cpp_translate(root, ["abc"])
    assert_refused(proc, str(root / "manifest.json"))
    assert b"larger than the 16 MB a manifest may have" in proc.stderr


@pytest.mark.parametrize("version", [1, 2])
def test_input_longer_than_max_src_tokens_names_its_line(version, cmudict_bundle, tmp_path):
    """Format 2's decoding.max_src_tokens (format 1: 1024) counts the appended <eos>; the line number
    counts across stdin's rounds of 512 lines."""
    root = Path(shutil.copytree(cmudict_bundle, tmp_path / "bundle"))
    limit = 1024 if version == 1 else 7
    rewrite_manifest(root, lambda m: as_format({**m, "decoding": {**m["decoding"], "max_src_tokens": limit}}, version))
    ok = cpp_translate(root, ["a" * (limit - 1)])  # limit - 1 characters + <eos>: exactly the limit
    assert ok.returncode == 0 and ok.stdout.count(b"\n") == 1, ok.stderr.decode()
    proc = cpp_translate(root, ["abc"] * 600 + ["a" * limit, "abc"])
    assert proc.returncode == 2 and proc.stdout.count(b"\n") == 512
    assert proc.stderr.decode() == (f"Error: input line 601: {limit + 1} tokens, more than the {limit} this bundle accepts "
                                    "(decoding.max_src_tokens)\n")


def test_unusable_options_fail_exactly_like_python(cmudict_bundle):
    from seq2seq_export.runtime.translator import Translator

    for args, kwargs in [(["--max-len", "0"], {"max_len": 0}), (["--batch-size", "0"], {"batch_size": 0}),
                         (["--bundle", "/nonexistent"], {"path": "/nonexistent"})]:
        proc = cpp_translate(cmudict_bundle, ["abc"], *args)
        kwargs = {"path": cmudict_bundle, **kwargs}
        assert (proc.returncode, proc.stdout) == (2, b"")
        assert proc.stderr == python_error(lambda: Translator.from_bundle(backend="onnx", **kwargs)), args


def test_python_cli_prints_library_errors_the_same_way(cmudict_bundle, tmp_path):
    """The in-process comparisons above stand for `s2s-translate`: check that once, for real."""
    root = broken_copy(cmudict_bundle, tmp_path, "checksum mismatch")
    expected = python_translate(root, b"abc\n", "--backend", "onnx")
    assert (expected.returncode, expected.stderr) == (2, cpp_translate(root, ["abc"]).stderr)


@pytest.mark.parametrize("args, message", [([], "missing option --bundle"), (["--beam", "4"], "no such option: --beam"),
                                           (["--max-len", "x"], "'x' is not a valid integer")])
def test_bad_arguments_are_one_line_and_exit_2(args, message):
    proc = subprocess.run([str(TRANSLATE_BIN), *args], input=b"abc\n", capture_output=True, timeout=60)
    stderr = proc.stderr.decode()
    assert proc.returncode == 2 and message in stderr and stderr.count("\n") == 1, stderr


def test_bundle_without_torchscript_is_one_line_and_exit_2(cmudict_bundle, tmp_path):
    root = Path(shutil.copytree(cmudict_bundle, tmp_path / "bundle"))
    manifest = json.loads((root / "manifest.json").read_text())
    for graph in manifest["graphs"].values():
        del graph["files"]["torchscript"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    proc = cpp_translate(root, ["abc"])
    assert (proc.returncode, proc.stderr.decode()) == (
        2, f"Error: {root}: bundle has no torchscript file for the encoder graph (formats: onnx)\n")


def test_invalid_utf8_input_is_one_line_and_exit_2(cmudict_bundle):
    proc = cpp_translate(cmudict_bundle, b"ab\xffc\n")
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, b"", b"Error: standard input is not valid UTF-8\n")


def test_repeated_key_is_one_line_and_exit_2(cmudict_bundle, tmp_path):
    """JSON allows a key twice in one object; which value counts would be a guess (Python refuses it too;
    JavaScript's JSON.parse cannot tell, so the JS drivers take the last one)."""
    root = Path(shutil.copytree(cmudict_bundle, tmp_path / "bundle"))
    text = (root / "manifest.json").read_text()
    (root / "manifest.json").write_text(text.replace('"max_len": ', '"max_len": 60, "max_len": ', 1))
    proc = cpp_translate(root, ["abc"])
    assert_refused(proc, str(root / "manifest.json"), 'key "max_len" appears twice in one object')
