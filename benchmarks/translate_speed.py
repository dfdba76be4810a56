"""Greedy translation speed of every backend on a cmudict-preset-sized bundle, on 1 thread.

    .venv/bin/python benchmarks/translate_speed.py [--bundle DIR] [--words 300] [--repeat 3]

Prints words/s at batch 1 and batch 64 for onnx, torchscript and eager, per wall second and per
CPU second (median of --repeat runs, backends interleaved so machine noise hits all alike, load
time excluded), checks that all backends produced identical tokens, and measures the cold start of `s2s-translate --backend onnx`
on one word in fresh processes (wall time and peak RSS from os.wait4 in a small spawner).

Without --bundle it uses artifacts/cmudict/bundle when present, else it exports a random-weight
model with the cmudict preset's dims and vocabularies to a temporary directory. A random model
rarely emits <eos>, so there every word runs exactly --max-len steps (default 8, about a
cmudict pronunciation plus <eos>); the table reports the mean generated tokens per word.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seq2seq_export.errors import ConfigError
from seq2seq_export.manifest import load_bundle
from seq2seq_export.runtime import Translator, open_backend

ROOT = Path(__file__).resolve().parent.parent
TRAINED_BUNDLE = ROOT / "artifacts" / "cmudict" / "bundle"
BACKENDS = ("onnx", "torchscript", "eager")
BATCH_SIZES = (1, 64)
RANDOM_MAX_LEN = 8


def preset_dims() -> dict:
    """emb/hidden/layers of the cmudict training preset (the issue's dims if the preset is absent)."""
    try:
        from seq2seq_export.train.config import load_config

        cfg = load_config("cmudict")
        return dict(emb_dim=cfg.emb_dim, hidden_dim=cfg.hidden_dim, num_layers=cfg.num_layers)
    except (ImportError, ConfigError):
        return dict(emb_dim=256, hidden_dim=512, num_layers=1)


def random_bundle(out: Path) -> Path:
    """Export a random-weight model with cmudict's vocabularies and the preset's dims."""
    import torch

    from seq2seq_export.bundle import export_bundle
    from seq2seq_export.checkpoint import Checkpoint, save_checkpoint
    from seq2seq_export.config import ModelConfig
    from seq2seq_export.data import load_dataset
    from seq2seq_export.model import Seq2Seq
    from seq2seq_export.vocab import TextPipeline, Vocab

    data = load_dataset("cmudict")
    text = TextPipeline(
        Vocab.build([s for s, _ in data.train], "char"), Vocab.build([t for _, t in data.train], "space")
    )
    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(len(text.src), len(text.tgt), **preset_dims()))
    save_checkpoint(out / "random.pt", Checkpoint(model.config, text, model.state_dict()))
    return export_bundle(out / "random.pt", out / "bundle", max_len=RANDOM_MAX_LEN)


def sample_words(n: int) -> list[str]:
    from seq2seq_export.data import load_dataset

    words = [s for s, _ in load_dataset("cmudict").test]
    return random.Random(0).sample(words, n)


def time_backends(bundle_dir: Path, words: list[str], repeat: int, max_len: int | None) -> dict:
    """{(backend, batch): (words/s wall, words per CPU-second, tokens/word, token ids)}, medians, 1 thread.

    CPU seconds (time.process_time) are reported beside wall time because this machine is shared:
    other processes stretch wall time, while the CPU time a backend needs stays put.
    """
    import torch

    torch.set_num_threads(1)
    bundle = load_bundle(bundle_dir)
    translators = {}
    for name in BACKENDS:
        backend = open_backend(bundle, name, threads=1, **({"inter_op_threads": 1} if name == "onnx" else {}))
        for bs in BATCH_SIZES:
            translators[name, bs] = Translator(backend, bundle.text, max_len or bundle.max_len, bs)
    seqs = [bundle.text.encode_source(w) for w in words]
    for tr in translators.values():
        tr.translate_ids(seqs[:16])  # warm-up: first-run allocations, lazy initialisation
    wall: dict = {key: [] for key in translators}
    cpu: dict = {key: [] for key in translators}
    ids: dict = {}
    for _ in range(repeat):
        for key, tr in translators.items():
            t0, c0 = time.perf_counter(), time.process_time()
            ids[key] = tr.translate_ids(seqs)
            wall[key].append(time.perf_counter() - t0)
            cpu[key].append(time.process_time() - c0)
    n = len(seqs)
    return {
        key: (n / statistics.median(wall[key]), n / statistics.median(cpu[key]), sum(map(len, ids[key])) / n, ids[key])
        for key in translators
    }


# Runs argv[1:] and prints its exit code, wall seconds, CPU seconds and peak RSS (KiB). A separate small interpreter does
# the spawning because Linux counts the memory a child shared with its parent before exec in the
# child's peak RSS: spawned from this torch-laden process, every child would look 500 MiB big.
MEASURE = """
import os, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(p.pid, 0)
p.returncode = os.waitstatus_to_exitcode(status)
print(p.returncode, time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
"""


def cold_start(bundle_dir: Path, runs: int) -> tuple[float, float, float, bool]:
    """`s2s-translate --backend onnx` on one word: median wall s, median CPU s, max peak RSS MiB, torch imported?"""
    exe = Path(sys.executable).parent / "s2s-translate"
    cmd = [str(exe), "--bundle", str(bundle_dir), "--backend", "onnx", "--threads", "1", "hello"]
    walls, cpus, rss = [], [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-I", "-S", "-c", MEASURE, *cmd], capture_output=True, text=True)
        code, wall, cpu, kib = out.stdout.split()
        if out.returncode != 0 or code != "0":
            raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
        walls.append(float(wall))
        cpus.append(float(cpu))
        rss.append(int(kib) / 1024)
    trace = subprocess.run([sys.executable, "-X", "importtime", *cmd], capture_output=True, text=True, check=True)
    torch_imported = any(line.split("|")[-1].strip() == "torch" for line in trace.stderr.splitlines())
    return statistics.median(walls), statistics.median(cpus), max(rss), torch_imported


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, help="bundle directory (default: trained cmudict bundle or a random one)")
    ap.add_argument("--words", type=int, default=300, help="cmudict test words translated per timed run")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per backend and batch size (median)")
    ap.add_argument(
        "--max-len", type=int, help=f"decoding steps (default: the bundle's; {RANDOM_MAX_LEN} for a random bundle)"
    )
    ap.add_argument("--cold-runs", type=int, default=5, help="fresh s2s-translate processes for the cold start")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle_dir = args.bundle or (TRAINED_BUNDLE if TRAINED_BUNDLE.is_dir() else random_bundle(Path(tmp)))
        cfg = load_bundle(bundle_dir).config
        print(
            f"bundle {bundle_dir}: emb {cfg.emb_dim}, hidden {cfg.hidden_dim}, layers {cfg.num_layers}, "
            f"vocab {cfg.src_vocab_size}/{cfg.tgt_vocab_size}; {args.words} words, 1 thread, median of {args.repeat}"
        )
        res = time_backends(bundle_dir, sample_words(args.words), args.repeat, args.max_len)
        print(
            f"{'backend':<12}{'batch':>6}{'words/s':>10}{'vs eager@1':>12}{'words/cpu-s':>13}{'vs eager@1':>12}{'tokens/word':>13}"
        )
        base, cbase = res["eager", 1][:2]
        for (name, bs), (wps, cps, tpw, _) in res.items():
            print(f"{name:<12}{bs:>6}{wps:>10.1f}{wps / base:>11.2f}x{cps:>13.1f}{cps / cbase:>11.2f}x{tpw:>13.2f}")
        same = all(r[3] == res["eager", 1][3] for r in res.values())
        print(f"identical tokens across backends and batch sizes: {'yes' if same else 'NO'}")
        for label, i in (("wall", 0), ("cpu", 1)):
            print(
                f"{label}: onnx@1 / eager@1 = {res['onnx', 1][i] / res['eager', 1][i]:.2f}x (target >= 3); "
                f"onnx@64 / onnx@1 = {res['onnx', 64][i] / res['onnx', 1][i]:.2f}x (target >= 2)"
            )
        wall, cpu, rss, torch_imported = cold_start(bundle_dir, args.cold_runs)
        print(
            f"cold start s2s-translate --backend onnx, one word (median of {args.cold_runs}): {wall:.3f} s wall, "
            f"{cpu:.3f} s CPU, {rss:.1f} MiB peak RSS (targets <= 0.6 s, <= 120 MiB); "
            f"torch imported: {'yes' if torch_imported else 'no'}"
        )
        if not same:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
