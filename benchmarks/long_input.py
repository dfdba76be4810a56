"""One huge input line against `s2s-translate`: refused (or truncated) fast and in bounded memory.

    PYTHONPATH=. .venv/bin/python benchmarks/long_input.py [--bundle DIR] [--mb 10]

Pipes a single line of --mb megabytes ("a b c ...": 5 million space-separated tokens at 10 MB,
10 million character tokens) into `python -m seq2seq_export translate --bundle B` in a fresh
process, once as is (expected: exit 2, one line) and once with --truncate (expected: exit 0, one
output line), and prints each run's exit code, wall time and the child's peak RSS (os.wait4).
A one-word run gives the start-up cost the others include. Target (issue #15): refused in under
2 s with under 200 MB peak memory.

Without --bundle it exports two tiny random models (legacy ONNX exporter, ONNX only) to a
temporary directory: one with a character tokenizer, one with a space tokenizer. This process
stays small (the export runs in a child, the input is written to a file and piped from it in 1 MB
pieces): a child's peak RSS counts its parent's pages until it execs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def tiny_bundle(out: Path, tokenizer: str) -> Path:
    """A random-weight model over letters (one per char, or words of one letter), exported for onnx."""
    import torch

    from seq2seq_export.bundle import export_bundle
    from seq2seq_export.checkpoint import Checkpoint, save_checkpoint
    from seq2seq_export.config import ModelConfig
    from seq2seq_export.model import Seq2Seq
    from seq2seq_export.vocab import TextPipeline, Vocab

    letters = " ".join("abcdefghijklmnopqrstuvwxyz")
    text = TextPipeline(Vocab.build([letters], tokenizer), Vocab.build([letters], "space"))
    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(len(text.src), len(text.tgt), emb_dim=16, hidden_dim=32))
    save_checkpoint(out / "checkpoint.pt", Checkpoint(model.config, text, model.state_dict()))
    return export_bundle(
        out / "checkpoint.pt", out / "bundle", formats=("onnx",), exporter="legacy", reference=False, max_len=8
    )


def export_in_child(out: Path, tokenizer: str) -> Path:
    code = (
        "import sys; from pathlib import Path; from long_input import tiny_bundle; "
        "tiny_bundle(Path(sys.argv[1]), sys.argv[2])"
    )
    out.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT), str(ROOT / "benchmarks")))}
    subprocess.run([sys.executable, "-c", code, str(out), tokenizer], check=True, env=env, capture_output=True)
    return out / "bundle"


PIECE = 1 << 20  # bytes written to or piped from the input file at a time


def run(bundle: Path, source: Path, *extra: str) -> dict:
    """One translate process fed the file `source` through a pipe -> exit code, wall s, peak RSS MB, stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "seq2seq_export", "translate", "--bundle", str(bundle), *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)

    def feed() -> None:
        try:
            with open(source, "rb") as f:
                while piece := f.read(PIECE):
                    proc.stdin.write(piece)
            proc.stdin.close()
        except BrokenPipeError:  # refused and gone before reading it all: what we hope for
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    writer.join(timeout=10)
    return {"exit": proc.returncode, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "stderr": err.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, help="Bundle to use [default: export tiny char and space bundles].")
    parser.add_argument("--mb", type=float, default=10.0, help="Size of the input line in megabytes (10^6 bytes).")
    args = parser.parse_args()
    pairs = int(args.mb * 1e6 / 2)  # "a " pairs: mb/2 million words, mb million characters
    with tempfile.TemporaryDirectory() as tmp:
        long_line, one_word = Path(tmp) / "long.txt", Path(tmp) / "word.txt"
        with open(long_line, "wb") as f:
            for start in range(0, pairs, PIECE // 2):
                f.write(b"a " * min(PIECE // 2, pairs - start))
            f.write(b"\n")
        one_word.write_bytes(b"a\n")
        bundles = (
            {"given": args.bundle}
            if args.bundle
            else {kind: export_in_child(Path(tmp) / kind, kind) for kind in ("char", "space")}
        )
        print(
            f"input: one line of {(2 * pairs + 1) / 1e6:.1f} MB ({pairs} space-separated tokens, "
            f"{2 * pairs} characters)"
        )
        print(f"{'bundle':<7} {'run':<22} {'exit':>4} {'wall s':>7} {'peak RSS MB':>11}  stderr")
        for name, bundle in bundles.items():
            for label, source, extra in (
                ("one word (start-up)", one_word, ()),
                ("long line", long_line, ()),
                ("long line --truncate", long_line, ("--truncate",)),
            ):
                r = run(bundle, source, *extra)
                tail = r["stderr"].splitlines()[-1] if r["stderr"] else ""
                print(
                    f"{name:<7} {label:<22} {r['exit']:>4} {r['wall_s']:>7.2f} {r['peak_rss_mb']:>11.1f}  {tail[:110]}"
                )


if __name__ == "__main__":
    main()
