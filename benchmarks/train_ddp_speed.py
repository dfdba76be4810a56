"""Training speed of one process against torchrun with N ranks (gloo, CPU), same preset and global batch.

    .venv/bin/python benchmarks/train_ddp_speed.py [--ranks 2] [--steps 600] [--batch-size 32] [-- TRAIN OPTIONS]

Runs `s2s-train --preset toy --clock wall --max-minutes 0 --max-steps STEPS` once in one process and
once under `torchrun --nproc-per-node N` for each N, each with one torch thread per process, and
prints training pairs per wall second of optimizer steps (metrics.json's pairs_per_s on the wall
clock), the whole command's wall time and CPU time (all its processes, start-up included), the
machine's load average, and the largest difference of any final weight from the one-process run
(the ranks take the same steps, up to float rounding that training amplifies: docs/scaling.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seq2seq_export.checkpoint import load_checkpoint


def run(name: str, command: list[str], out: Path) -> dict:
    """Run one training command into `out`, print its figures and return its metrics."""

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    start, cpu_start = time.monotonic(), cpu()
    subprocess.run([*command, "--out", str(out)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall, cpu_s = time.monotonic() - start, cpu() - cpu_start
    metrics = json.loads((out / "metrics.json").read_text())
    print(
        f"{name:10}: {metrics['pairs_per_s']:6.0f} pairs/s; whole command {wall:5.1f} s wall, {cpu_s:5.1f} s CPU",
        end="",
    )
    return metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", default="2", help="comma-separated rank counts to compare with one process [default: 2]")
    ap.add_argument("--steps", type=int, default=600, help="optimizer steps per run [default: 600]")
    ap.add_argument("--batch-size", type=int, default=32, help="the global batch [default: 32, the toy preset's]")
    ap.add_argument("train_options", nargs="*", help="more s2s-train options, after --")
    args = ap.parse_args()
    train = ["-m", "seq2seq_export", "train", "--preset", "toy", "--clock", "wall", "--max-minutes", "0"]
    train += ["--max-steps", str(args.steps), "--batch-size", str(args.batch_size), "--threads", "1", "--quiet"]
    train += args.train_options
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "1"
        run("1 process", [sys.executable, *train], one)
        print()
        reference = load_checkpoint(one / "last.pt").state_dict
        for n in map(int, args.ranks.split(",")):
            out = Path(tmp) / str(n)
            launch = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n), "--standalone"]
            run(f"{n} ranks", [*launch, *train], out)
            weights = load_checkpoint(out / "last.pt").state_dict
            print(f"; weights differ by {max(float((weights[k] - v).abs().max()) for k, v in reference.items()):.1e}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
