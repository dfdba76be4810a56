"""train(cfg): the training loop, best/last checkpoints, resumption, and the final test metrics."""
from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from tqdm import tqdm

from ..checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ..constants import MAX_LEN_MARGIN
from ..data import load_dataset
from ..errors import ConfigError
from ..fsutil import atomic_file
from ..model import Seq2Seq, select_device, sequence_loss
from ..vocab import TextPipeline, Vocab
from ..weights import check_model_size
from .averaging import WeightAverage
from .batching import EncodedPairs, collate, epoch_batches
from .config import TrainConfig
from .metrics import evaluate, validation_loss
from .resume import check_average, load_resumable, restore, rng_state
from .rundir import BEST_FILE, LAST_FILE, METRICS_FILE, check_run_dir, clear_run

SAVE_EVERY_S = 300.0  # also write last.pt this often mid-epoch, so a killed run loses little


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path  # where the files below live
    checkpoint: Path  # best checkpoint by validation exact match, then token error rate
    epochs: float  # passes over the train split, fractional if a budget stopped mid-epoch
    steps: int  # optimizer steps in total
    elapsed_s: float  # seconds of the whole run on the budget's clock (wall or CPU), resumptions included
    words_per_s: float  # training pairs per second of optimizer-step time (same clock)
    stopped_by: str  # "epochs", "time", "steps" or "interrupt"
    max_len: int  # decoding limit: longest train target + MAX_LEN_MARGIN
    max_src_tokens: int  # longest train source in tokens as the model sees them (with <eos> if appended)
    valid: dict[str, Any]  # the best checkpoint's validation metrics
    test: dict[str, Any]  # test-split metrics of the best checkpoint


def lr_at(cfg: TrainConfig, step: int, total_steps: int, time_fraction: float) -> float:
    """Warm-up, then constant or cosine decay over whichever runs out first: steps or wall-clock."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return cfg.lr
    progress = min(1.0, max(step / max(1, total_steps), time_fraction))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


@contextlib.contextmanager
def _stop_on_sigint() -> Iterator[list[bool]]:
    """First Ctrl-C asks the loop to stop at the next batch boundary and save; a second one aborts."""
    flag = [False]
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        flag[0] = True
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def train_step(model: Seq2Seq, optimizer: torch.optim.Optimizer, batch: tuple[torch.Tensor, ...],
                cfg: TrainConfig, tf_gen: torch.Generator, pad: int) -> torch.Tensor:
    """One optimizer step on a collated batch; returns the detached loss."""
    src, lengths, tgt_in, tgt_out = batch
    logits = model(src, lengths, tgt_in, cfg.teacher_forcing, generator=tf_gen)  # (B, T, V)
    loss = sequence_loss(logits, tgt_out, pad, cfg.label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
    optimizer.step()
    return loss.detach()


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam; AdamW with cfg.weight_decay on weight matrices and embeddings (never biases) when it is set."""
    if not cfg.weight_decay:
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def train(
    cfg: TrainConfig, *, resume: bool = False, force: bool = False, log: Callable[[str], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train per `cfg`, writing OUT/checkpoint.pt (best), OUT/last.pt (resumable) and OUT/metrics.json.

    An OUT that already holds a run is refused unless `resume` (continue it) or `force` (replace it).
    """
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, resume, force, log or (lambda _msg: None), progress)
    finally:
        torch.set_num_threads(threads)


def _train(cfg: TrainConfig, resume: bool, force: bool, log: Callable[[str], None], progress: bool) -> TrainResult:
    out = cfg.out_dir
    check_run_dir(out, resume, force)
    device = select_device(cfg.device)
    data = load_dataset(
        cfg.dataset, cfg.seed, src_tokenizer=cfg.src_tokenizer or None, tgt_tokenizer=cfg.tgt_tokenizer or None,
        max_tokens=cfg.max_tokens or None,
    )
    torch.manual_seed(cfg.seed)
    tf_gen = torch.Generator().manual_seed(cfg.seed + 1)
    if resume:
        last = load_resumable(out / LAST_FILE, cfg)
        text, mcfg, state = last.text, last.config, last.training
    else:
        text = TextPipeline(
            Vocab.build((s for s, _ in data.train), data.src_tokenizer),
            Vocab.build((t for _, t in data.train), data.tgt_tokenizer),
        )
        mcfg = cfg.model_config(len(text.src), len(text.tgt))
        check_model_size(mcfg, "train options", ConfigError)
        state = {"cursor": {"epoch": 0, "batch": 0, "step": 0, "elapsed_s": 0.0, "train_s": 0.0, "words": 0},
                 "best": None, "history": []}
    model = Seq2Seq(mcfg)
    if resume:
        model.load_state_dict(last.state_dict)
    model.to(device).train()
    optimizer = make_optimizer(model, cfg)
    average = None
    if cfg.ema_decay:
        average = WeightAverage(model, cfg.ema_decay, check_average(out / LAST_FILE, state, model) if resume else None)

    train_enc = EncodedPairs.from_text(text, data.train)
    valid_enc = EncodedPairs.from_text(text, data.valid)
    max_len = max(len(t) for t in train_enc.tgt) - 2 + MAX_LEN_MARGIN  # minus <sos>, <eos>
    max_src_tokens = max(1, *(len(s) for s in train_enc.src))  # as the model sees them: with <eos> if appended
    steps_per_epoch = len(epoch_batches(train_enc, cfg.batch_size, cfg.seed, 0))
    if resume:
        restore(out / LAST_FILE, state, model, optimizer, tf_gen, device, steps_per_epoch)
    else:
        clear_run(out, force)
    total_steps = cfg.epochs * steps_per_epoch
    budget_s = cfg.max_minutes * 60.0
    cur = dict(state["cursor"])
    best, history = state["best"], list(state["history"])
    pad = text.tgt.pad_id
    log(f"{cfg.dataset}: {len(data.train)} train / {len(data.valid)} valid / {len(data.test)} test pairs; "
        f"vocab {len(text.src)}/{len(text.tgt)}; {sum(p.numel() for p in model.parameters())} parameters; "
        f"device {device}; {steps_per_epoch} steps/epoch" + (f"; resuming at step {cur['step']}" if resume else ""))

    def save_last() -> None:
        training = {"train_config": cfg.to_dict(), "max_len": max_len, "max_src_tokens": max_src_tokens,
                    "cursor": dict(cur), "best": best, "history": history, "optimizer": optimizer.state_dict(),
                    "rng": rng_state(tf_gen, device)}
        if average is not None:
            training["average"] = average.state()
        save_checkpoint(out / LAST_FILE, Checkpoint(mcfg, text, model.state_dict(), training))

    def validate() -> None:
        # With ema_decay, the average is what gets validated, kept as the best checkpoint and tested.
        with average.applied() if average is not None else contextlib.nullcontext():
            _validate()

    def _validate() -> None:
        nonlocal best
        vloss = validation_loss(model, valid_enc, pad, cfg.eval_batch_size, device)
        m = evaluate(model, text, data.valid, max_len=max_len, batch_size=cfg.eval_batch_size, device=device)
        epoch = cur["epoch"] + cur["batch"] / steps_per_epoch
        row = {"epoch": round(epoch, 4), "step": cur["step"], "valid_loss": vloss, **m.to_dict()}
        history.append(row)
        key = (m.exact_match, -m.token_error_rate, -vloss)
        if best is None or key > (best["exact_match"], -best["token_error_rate"], -best["valid_loss"]):
            best = row
            training = {"train_config": cfg.to_dict(), "max_len": max_len, "max_src_tokens": max_src_tokens,
                        "valid": row}
            save_checkpoint(out / BEST_FILE, Checkpoint(mcfg, text, model.state_dict(), training))
        log(f"epoch {epoch:.2f} step {cur['step']}: valid loss {vloss:.4f}, exact match {m.exact_match:.2%}, "
            f"token error rate {m.token_error_rate:.2%}, {cur['elapsed_s'] / 60:.1f} min"
            + (" CPU" if cfg.clock == "cpu" else "")
            + (" (best)" if best is row else ""))

    stopped_by = "epochs"
    # The budget's clock: wall time, or this process's CPU time (all threads), which other jobs on a
    # shared machine do not eat into. Both count validation too.
    now = time.process_time if cfg.clock == "cpu" else time.monotonic
    session_start = now() - cur["elapsed_s"]
    last_save = time.monotonic()
    with _stop_on_sigint() as interrupted:
        while cur["epoch"] < cfg.epochs:
            batches = epoch_batches(train_enc, cfg.batch_size, cfg.seed, cur["epoch"])
            bar = tqdm(total=len(batches), initial=cur["batch"], desc=f"epoch {cur['epoch'] + 1}/{cfg.epochs}",
                       file=sys.stderr, disable=not progress, mininterval=1.0, leave=False)
            stepped, running = False, None
            while cur["batch"] < len(batches):
                cur["elapsed_s"] = now() - session_start
                if budget_s and cur["elapsed_s"] >= budget_s:
                    stopped_by = "time"
                elif cfg.max_steps and cur["step"] >= cfg.max_steps:
                    stopped_by = "steps"
                elif interrupted[0]:
                    stopped_by = "interrupt"
                if stopped_by != "epochs":
                    break
                t0 = now()
                lr = lr_at(cfg, cur["step"], total_steps, cur["elapsed_s"] / budget_s if budget_s else 0.0)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                rows = batches[cur["batch"]]
                loss = train_step(model, optimizer, collate(train_enc, rows, pad, device), cfg, tf_gen, pad)
                if average is not None:
                    average.update()
                cur["step"], cur["batch"], cur["words"] = cur["step"] + 1, cur["batch"] + 1, cur["words"] + len(rows)
                cur["train_s"] += now() - t0
                stepped = True
                running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
                bar.update(1)
                bar.set_postfix(loss=f"{running:.4f}", lr=f"{lr:.2e}", refresh=False)
                if time.monotonic() - last_save > SAVE_EVERY_S:
                    save_last()
                    last_save = time.monotonic()
            bar.close()
            if cur["batch"] >= len(batches):
                cur["epoch"], cur["batch"] = cur["epoch"] + 1, 0
            cur["elapsed_s"] = now() - session_start
            # Validation costs budget time too: every validate_every epochs, and always at the end.
            last_epoch = stopped_by != "epochs" or cur["epoch"] >= cfg.epochs
            if stepped and (last_epoch or cur["epoch"] % cfg.validate_every == 0):
                validate()
            save_last()
            last_save = time.monotonic()
            if stopped_by != "epochs":
                break
    if best is None:
        raise ConfigError("training stopped before its first validation; raise --max-minutes or --max-steps")
    epochs = round(cur["epoch"] + cur["batch"] / steps_per_epoch, 4)
    return _finish(cfg, out, device, data.test, cur, epochs, stopped_by, (max_len, max_src_tokens), best)


def _finish(cfg: TrainConfig, out: Path, device: torch.device, test_pairs: list, cur: dict, epochs: float,
            stopped_by: str, limits: tuple[int, int], best: dict) -> TrainResult:
    """Score the best checkpoint on the test split; store the figures in it and in metrics.json.

    limits = (max_len, max_src_tokens), stored again: a best checkpoint from before a resumption may lack them."""
    max_len, max_src_tokens = limits
    ckpt = load_checkpoint(out / BEST_FILE)
    model = ckpt.build_model(device)
    test = evaluate(model, ckpt.text, test_pairs, max_len=max_len, batch_size=cfg.eval_batch_size, device=device)
    training = {**ckpt.training, "max_len": max_len, "max_src_tokens": max_src_tokens, "test": test.to_dict()}
    save_checkpoint(out / BEST_FILE, Checkpoint(ckpt.config, ckpt.text, ckpt.state_dict, training))
    result = TrainResult(
        out_dir=out, checkpoint=out / BEST_FILE, epochs=epochs,
        steps=cur["step"], elapsed_s=cur["elapsed_s"], words_per_s=cur["words"] / max(cur["train_s"], 1e-9),
        stopped_by=stopped_by, max_len=max_len, max_src_tokens=max_src_tokens, valid=best,
        test=test.to_dict(),
    )
    with atomic_file(out / METRICS_FILE) as tmp:
        tmp.write_text(json.dumps({**result.__dict__, "out_dir": str(out), "checkpoint": str(out / BEST_FILE)}, indent=2))
    return result
