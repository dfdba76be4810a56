"""How fast, and in how little memory, `s2s-translate` refuses hostile manifests.

    .venv/bin/python benchmarks/hostile_manifest.py [--mb 200] [--depth 100000]

Each case writes one manifest.json into a temporary bundle directory and runs
`python -m seq2seq_export translate --bundle DIR x` in a fresh process, then prints its exit code,
wall time, peak RSS (os.wait4's rusage of that child alone) and the one line it printed on stderr:

    huge         a --mb MB manifest (one long token list): refused by its size before it is read
    deep         --depth nested arrays: refused by the JSON parser
    many_errors  a manifest just under the size cap (MAX_MANIFEST_BYTES) of ~1.7M tokens that each
                 break the schema (a control character): one error is reported, not 1.7M collected
    largest_ok   a manifest just under the cap that passes the schema and every rule between fields,
                 with two ~750k-token vocabularies: the worst case that is parsed and validated in
                 full (it is then refused for its missing graph files)

The targets (issue #15) are under 2 s and under 200 MB for the 200 MB manifest.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seq2seq_export.config import ModelConfig
from seq2seq_export.constants import DEFAULT_MAX_SRC_TOKENS, MAX_MANIFEST_BYTES, SPECIAL_TOKENS
from seq2seq_export.manifest import build_manifest
from seq2seq_export.vocab import TextPipeline, Vocab

CHUNK = 1 << 20


def write_huge(path: Path, megabytes: int) -> None:
    """A format-2 manifest whose source token list makes it `megabytes` MB, streamed to disk."""
    token = b'"tok0123456",'
    with open(path, "wb") as f:
        f.write(b'{"format_version": 2, "text": {"source": {"tokenizer": "char", "tokens": [')
        block = token * (CHUNK // len(token))
        for _ in range(megabytes):
            f.write(block)
        f.write(b'"end"]}}}')


def write_deep(path: Path, depth: int) -> None:
    path.write_bytes(b'{"format_version": 2, "producer": ' + b"[" * depth + b"]" * depth + b"}")


def write_many_errors(path: Path) -> None:
    head, token = b'{"format_version": 2, "text": {"source": {"tokenizer": "char", "tokens": [', b'"\\u0001",'
    count = (MAX_MANIFEST_BYTES - len(head) - 64) // len(token)
    path.write_bytes(head + token * count + b'"end"]}}}')


def write_largest_ok(path: Path) -> None:
    """As many distinct tokens per vocabulary as fit under the cap, everything else valid."""
    small, large = len(_manifest_bytes(1000)), len(_manifest_bytes(2000))
    per_token = (large - small) / 1000
    n = int((MAX_MANIFEST_BYTES - small) / per_token * 0.98) + 1000
    path.write_bytes(_manifest_bytes(n))


def _manifest_bytes(n: int) -> bytes:
    tokens = SPECIAL_TOKENS + tuple(f"w{i:07d}" for i in range(n))  # fixed width: size grows linearly
    text = TextPipeline(Vocab(tokens, "space"), Vocab(tokens, "space"))
    config = ModelConfig(len(tokens), len(tokens), emb_dim=8, hidden_dim=8)
    files = {g: {"onnx": {"path": f"{g}.onnx", "sha256": "0" * 64, "size": 1}} for g in ("encoder", "decoder_step")}
    producer = {
        "package": "seq2seq-export",
        "version": "0",
        "torch": None,
        "onnx": None,
        "opset": 18,
        "exporter": "legacy",
    }
    manifest = build_manifest(config, text, 50, producer, files, None, DEFAULT_MAX_SRC_TOKENS)
    return json.dumps(manifest, separators=(",", ":")).encode()


def run_case(name: str, writer, *args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        bundle.mkdir()
        writer(bundle / "manifest.json", *args)
        size = (bundle / "manifest.json").stat().st_size
        result = measure(bundle)
    line = result["stderr"] if len(result["stderr"]) <= 150 else result["stderr"][:150] + "..."
    print(
        f"{name:<11} {size / 1e6:9.1f} MB  exit {result['exit']}  {result['wall_s']:5.2f} s  "
        f"peak RSS {result['peak_rss_mb']:6.1f} MB  | {line.replace(tmp, 'DIR')}"
    )


def measure(bundle: Path) -> dict:
    """Run s2s-translate on the bundle in a fresh process: exit code, wall s, the child's own peak RSS
    (os.wait4), and what it printed on stderr."""
    cmd = [sys.executable, "-m", "seq2seq_export", "translate", "--bundle", str(bundle), "x"]
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        err.seek(0)
        stderr = err.read().decode(errors="replace").strip()
    return {
        "exit": os.waitstatus_to_exitcode(status),
        "wall_s": wall,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "stderr": stderr,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the huge manifest in MB")
    parser.add_argument("--depth", type=int, default=100_000, help="nesting depth of the deep manifest")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}; size cap {MAX_MANIFEST_BYTES >> 20} MB")
    run_case("huge", write_huge, args.mb)
    run_case("deep", write_deep, args.depth)
    run_case("many_errors", write_many_errors)
    run_case("largest_ok", write_largest_ok)


if __name__ == "__main__":
    main()
