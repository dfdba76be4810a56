"""runtimes/web: the demo page in real headless Chromium (onnxruntime-web, WASM) shows exactly what
`s2s-translate --backend onnx` prints, for inputs typed into the page; a bad bundle shows its error."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from js_drivers import (HOSTILE, REFUSAL_REASONS, REPO, Case, as_format, assert_one_line, assert_same_readings,
                        bad_manifest_bundles, build_case, hostile_bundle, require_setup, rewrite_manifest)
from manifest_cases import CASE_NAMES

SERVE_PY = REPO / "runtimes" / "web" / "serve.py"
DRIVE_MJS = REPO / "runtimes" / "web" / "drive.mjs"


@pytest.fixture(scope="module", autouse=True)
def _setup() -> None:
    require_setup(browser=True)


@contextmanager
def serve(bundle: Path) -> Iterator[str]:
    """runtimes/web/serve.py for one bundle on a free port of 127.0.0.1; yields the page's URL."""
    proc = subprocess.Popen([sys.executable, str(SERVE_PY), "--bundle", str(bundle), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # "serving http://127.0.0.1:PORT/runtimes/web/ (Ctrl-C stops)"
        assert line.startswith("serving http://127.0.0.1:"), line + proc.stderr.read()
        yield line.split()[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def drive(page_url: str, inputs: list[str]) -> subprocess.CompletedProcess:
    """Type `inputs` into the page in headless Chromium, press Translate, read the outputs shown."""
    data = "".join(f"{line}\n" for line in inputs).encode()
    return subprocess.run(["node", str(DRIVE_MJS), page_url], input=data, capture_output=True, timeout=180)


@pytest.fixture(scope="module", params=["toy", "cmudict", "attention"])
def case(request) -> Case:
    return build_case(request.param, request)


def typeable(case: Case) -> tuple[list[str], list[str]]:
    """The case's inputs a person can type into the page, and their expected outputs: a textarea's value
    turns a lone \\r into a line end, so inputs holding one are left to the other drivers' tests."""
    kept = [i for i, line in enumerate(case.inputs) if "\r" not in line]
    return [case.inputs[i] for i in kept], [case.expected[i] for i in kept]


def test_page_shows_same_output_as_python(case):
    inputs, expected = typeable(case)
    with serve(case.bundle) as page:
        proc = drive(page + "?bundle=/bundle/", inputs)
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout.decode().split("\n")[:-1] == expected
        assert_same_readings(case.name, inputs, proc.stdout.decode().split("\n")[:-1])  # upper / mixed case, NFC
    assert len(inputs) >= 200 and "" in inputs and len(set(expected)) >= 20


@pytest.mark.parametrize(
    "how, message",
    [
        ("checksum mismatch", "encoder.onnx: checksum mismatch (graphs.encoder.files.onnx)"),
        ("missing file", "encoder.onnx: file listed in the manifest (graphs.encoder.files.onnx) is missing (HTTP 404)"),
    ],
)
def test_page_reports_an_untrusted_bundle(how, message, tmp_path, request):
    root = Path(shutil.copytree(build_case("cmudict", request).bundle, tmp_path / "bundle"))
    if how == "checksum mismatch":
        with open(root / "encoder.onnx", "ab") as f:
            f.write(b"\0")
    else:
        (root / "encoder.onnx").unlink()
    with serve(root) as page:
        proc = drive(page, ["abc"])  # no ?bundle=: the page's default, /bundle/
    stderr = proc.stderr.decode()
    assert proc.returncode == 2 and message in stderr, stderr


# What the page must say for the manifests beyond tests/manifest_cases.py (HOSTILE, and one over 16 MB).
MORE_REASONS = {**{name: reason for name, (_, reason) in HOSTILE.items()}, "oversized": "larger than the 16 MB"}


@pytest.fixture(scope="module")
def opened_bad_manifests(request) -> dict[str, dict]:
    """One page load that opens every malformed-manifest bundle with the page's loader: {case: result}."""
    root, good = bad_manifest_bundles(request), build_case("cmudict", request).bundle
    for name in HOSTILE:  # served next to the shared cases
        hostile_bundle(good, root / name, name)
    (Path(shutil.copytree(good, root / "oversized")) / "manifest.json").write_bytes(b"{" + b" " * (16 << 20) + b"}")
    with serve(root) as page:
        urls = ["/bundle/"] + [f"/bundle/{name}/" for name in (*CASE_NAMES, *MORE_REASONS)]
        proc = subprocess.run(["node", str(DRIVE_MJS), "--open", page], input="\n".join(urls).encode(),
                              capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    results = {r["bundle"]: r for r in map(json.loads, proc.stdout.decode().splitlines())}
    assert results.pop("/bundle/")["error"] is None  # the good bundle next to them opens: the loader works
    opened = {name: results[f"/bundle/{name}/"] for name in (*CASE_NAMES, *MORE_REASONS)}
    return opened | {"base": page.removesuffix("runtimes/web/")}


@pytest.mark.parametrize("name", CASE_NAMES + tuple(MORE_REASONS))
def test_page_refuses_a_malformed_manifest(name, opened_bad_manifests):
    """Every case of tests/manifest_cases.py, and more: the page's loader rejects, one line naming the manifest."""
    error = opened_bad_manifests[name]["error"]
    assert error is not None and error["name"] == "BundleError", error
    reason = REFUSAL_REASONS.get(name) or MORE_REASONS[name]
    assert_one_line(error["message"], f"{opened_bad_manifests['base']}bundle/{name}/manifest.json", reason)


@pytest.mark.parametrize("version", [1, 2])
def test_page_translates_format_1_and_2_alike_and_bounds_inputs(version, request, tmp_path):
    """A format 1 bundle (no roles, no max_src_tokens) shows the same outputs; an input longer than
    decoding.max_src_tokens (format 1: 1024) is an error naming its line."""
    case = build_case("attention", request)
    root = Path(shutil.copytree(case.bundle, tmp_path / "bundle"))
    # format 2 at format 1's cap (the shared case lifts it to the ceiling for its long edge inputs)
    rewrite_manifest(root, lambda m: as_format({**m, "decoding": {**m["decoding"], "max_src_tokens": 1024}}, version))
    inputs, expected = typeable(case)
    with serve(root) as page:
        proc = drive(page, inputs)
        assert proc.returncode == 0, proc.stderr.decode()
        assert proc.stdout.decode().split("\n")[:-1] == expected
        proc = drive(page, ["abc", "a" * 1024])
    assert proc.returncode == 2
    assert "input line 2: 1025 tokens, more than the 1024 this bundle accepts (decoding.max_src_tokens)" in proc.stderr.decode()


def test_server_listens_on_loopback_and_serves_only_the_demo(request):
    with serve(build_case("cmudict", request).bundle) as page:
        base = page.removesuffix("runtimes/web/")
        assert base.startswith("http://127.0.0.1:")
        for path in ("runtimes/web/", "runtimes/js/seq2seq.mjs", "bundle/manifest.json", "seq2seq_export/manifest.schema.json",
                     "runtimes/node/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs",
                     "runtimes/node/node_modules/@cfworker/json-schema/dist/esm/index.js"):
            with urllib.request.urlopen(base + path, timeout=10) as response:
                assert response.status == 200
        for path in ("pyproject.toml", "runtimes/node/package.json", "runtimes/web/../../Makefile", "bundle/../../pyproject.toml",
                     "seq2seq_export/manifest.py", "seq2seq_export/", "seq2seq_export/manifest.schema.json/x"):
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(base + path, timeout=10)
