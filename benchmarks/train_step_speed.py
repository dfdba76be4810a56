"""Training cost per pair of each model variant on real cmudict batches, one torch thread.

    .venv/bin/python benchmarks/train_step_speed.py [--batches 40] [--batch-size 64] [--repeat 3]

Runs training's own optimizer step (forward, loss, backward, clipping, Adam) on the same length-bucketed
cmudict batches for each variant, variants interleaved per repeat so machine noise hits all alike,
and prints training pairs per CPU-second (median of --repeat) and per wall second. The variants
have the `cmudict` / `cmudict-attention` dims (emb 64, hidden 256) unless their name says otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from seq2seq_export.data import load_dataset
from seq2seq_export.model import Seq2Seq
from seq2seq_export.train import load_config
from seq2seq_export.train.batching import EncodedPairs, collate, epoch_batches
from seq2seq_export.train.loop import train_step
from seq2seq_export.vocab import TextPipeline, Vocab

VARIANTS = {
    "GRU 256 (1 layer)": dict(),
    "GRU 256, 2 layers": dict(num_layers=2),
    "bidirectional GRU + Luong": dict(bidirectional_encoder=True, attention="luong"),
    "bidirectional GRU + Bahdanau": dict(bidirectional_encoder=True, attention="bahdanau"),
    "  ... with 2 layers": dict(bidirectional_encoder=True, attention="bahdanau", num_layers=2),
    "  ... with hidden 384": dict(bidirectional_encoder=True, attention="bahdanau", hidden_dim=384),
    "  ... encoder 128 per direction": dict(bidirectional_encoder=True, attention="bahdanau", encoder_hidden_dim=128),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=40, help="optimizer steps per variant and repeat [default: 40]")
    ap.add_argument("--batch-size", type=int, default=64, help="pairs per step [default: 64]")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved repeats; the median is printed [default: 3]")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load_dataset("cmudict")
    text = TextPipeline(
        Vocab.build((s for s, _ in data.train), "char"), Vocab.build((t for _, t in data.train), "space")
    )
    enc = EncodedPairs.from_text(text, data.train)
    rows = epoch_batches(enc, args.batch_size, seed=0, epoch=0)[: args.batches]
    batches = [collate(enc, r, text.tgt.pad_id, torch.device("cpu")) for r in rows]
    pairs = sum(len(r) for r in rows)
    train_cfg = load_config("cmudict-attention")  # its teacher forcing, clipping and label smoothing
    base = dataclasses.replace(
        train_cfg.model_config(len(text.src), len(text.tgt)), bidirectional_encoder=False, attention="none"
    )
    tf_gen = torch.Generator().manual_seed(0)
    models = {}
    for name, options in VARIANTS.items():
        cfg = dataclasses.replace(base, **options)
        torch.manual_seed(0)
        model = Seq2Seq(cfg).train()
        models[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-3))
    cpu: dict[str, list[float]] = {n: [] for n in models}
    wall: dict[str, list[float]] = {n: [] for n in models}
    for _ in range(args.repeat):
        for name, (model, opt) in models.items():
            c0, w0 = time.process_time(), time.perf_counter()
            for batch in batches:
                train_step(model, opt, batch, train_cfg, tf_gen, text.tgt.pad_id)
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    print(
        f"{pairs} cmudict pairs in {len(batches)} steps of batch {args.batch_size}, one thread, median of {args.repeat}"
    )
    print(f"{'variant':<32}{'pairs/CPU-s':>12}{'pairs/wall-s':>13}")
    for name in models:
        print(f"{name:<32}{pairs / statistics.median(cpu[name]):>12.0f}{pairs / statistics.median(wall[name]):>13.0f}")


if __name__ == "__main__":
    main()
