"""Load time and peak memory of one backend, each measured in a fresh Python process.

A fresh process per backend keeps one backend's imports (torch is ~400 MB) out of another's
figures. `probe_load` starts `python -m seq2seq_export.bench.probe`, which loads the bundle,
opens the backend, decodes one batch and prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import Seq2SeqExportError

PROBE_TIMEOUT_S = 300


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def probe_load(
    bundle: Path, backend: str, options: dict, batch: Sequence[Sequence[int]], digest: str | None = None
) -> dict:
    """{load_s, rss_loaded_mb, peak_rss_mb, torch_imported} of open_backend(bundle, backend, **options) in a fresh
    process; with digest, the process refuses a bundle that is not the one measured elsewhere."""
    cmd = [sys.executable, "-m", "seq2seq_export.bench.probe", str(bundle), backend]
    feed = json.dumps({"options": options, "batch": [list(s) for s in batch], "digest": digest})
    try:
        proc = subprocess.run(cmd, input=feed, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise Seq2SeqExportError(f"load probe for {backend} did not finish in {PROBE_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise Seq2SeqExportError(f"load probe for {backend} failed (exit {proc.returncode}): {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _main(bundle_dir: str, name: str) -> dict:
    feed = json.loads(sys.stdin.read())
    t0 = time.perf_counter()
    from ..manifest import load_bundle
    from ..runtime import DecodeOptions, decode_in_batches, greedy_decode, open_backend

    bundle = load_bundle(bundle_dir, expect_digest=feed.get("digest"))
    backend = open_backend(bundle, name, **feed["options"])
    load_s = time.perf_counter() - t0
    rss_loaded = _maxrss_mb()
    batch = feed["batch"]
    decode_in_batches(
        backend, batch, DecodeOptions.from_bundle(bundle), batch_size=max(1, len(batch)), strategy=greedy_decode
    )
    return {
        "load_s": load_s,
        "rss_loaded_mb": rss_loaded,
        "peak_rss_mb": _maxrss_mb(),
        "torch_imported": "torch" in sys.modules,
    }


if __name__ == "__main__":
    print(json.dumps(_main(sys.argv[1], sys.argv[2])))
