"""s2s-bulk lines/s: the local engine against the Ray engine on one generated file.

    .venv/bin/python benchmarks/bulk_speed.py [--bundle DIR] [--lines 20000] [--workers 1,2] [--threads 1]

Writes a file of --lines cmudict test words (drawn with replacement, seed 0), then runs
`s2s-bulk --engine local` and `s2s-bulk --engine ray --num-workers N` for each N on it, each in a
fresh process (so Ray's start-up, on a local Ray started for the run, is part of the Ray figures),
and prints lines/s end to end (process start to exit) and as s2s-bulk reports it (its own run,
Ray start included), the machine's load average, and whether every output equals the local one.
Without --bundle it uses translate_speed.py's bundle: the trained one in artifacts/ or a random
model of the cmudict preset's dims (every word then runs --max-len 8 steps).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from translate_speed import TRAINED_BUNDLE, random_bundle


def words_file(path: Path, n: int) -> Path:
    from seq2seq_export.data import load_dataset

    words = [s for s, _ in load_dataset("cmudict").test]
    rng = random.Random(0)
    path.write_text("".join(rng.choice(words) + "\n" for _ in range(n)), encoding="utf-8")
    return path


def run(bundle: Path, source: Path, out: Path, *args: str) -> tuple[float, float]:
    """(lines/s end to end, lines/s as s2s-bulk reports it) of one s2s-bulk process."""
    cmd = [
        sys.executable,
        "-m",
        "seq2seq_export",
        "bulk",
        "--bundle",
        str(bundle),
        "--output",
        str(out),
        *args,
        str(source),
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {proc.stderr.strip().splitlines()[-1]}")
    reported = re.search(r"\(([\d.]+) lines/s", proc.stderr)
    lines = sum(1 for _ in source.open(encoding="utf-8"))
    return lines / wall, float(reported[1]) if reported else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--workers", default="1,2", help="Ray actor counts, comma-separated")
    parser.add_argument("--threads", default="1", help="compute threads per worker (local: the one process)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = args.bundle or (TRAINED_BUNDLE if TRAINED_BUNDLE.is_dir() else random_bundle(root))
        source = words_file(root / "words.txt", args.lines)
        print(f"{args.lines} lines, bundle {bundle}, --threads {args.threads}, load average {os.getloadavg()[0]:.1f}")
        print(f"{'engine':<22} {'lines/s end to end':>19} {'lines/s reported':>17}  same as local")
        rows = [("local", ("--engine", "local"))]
        rows += [(f"ray --num-workers {n}", ("--engine", "ray", "--num-workers", n)) for n in args.workers.split(",")]
        first = None
        for i, (name, flags) in enumerate(rows):
            out = root / f"out{i}"
            wall, reported = run(bundle, source, out, "--threads", args.threads, *flags)
            got = (out / source.name).read_bytes()
            first = first if first is not None else got
            print(f"{name:<22} {wall:>19.0f} {reported:>17.0f}  {got == first}")
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
