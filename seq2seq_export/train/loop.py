"""train(cfg): the training loop, best/last checkpoints, resumption, and the final test metrics.

One run is start_or_resume (state.py), then run_epoch and end_epoch (validate_and_keep_best when due)
until the epochs end or should_stop names a limit, then finish (the test split, metrics.json).
Under torchrun every rank runs this loop on its share of each batch (distributed.py).
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ..errors import ConfigError
from ..fsutil import Log, atomic_file
from ..model import sequence_loss
from .batching import collate, epoch_batches
from .config import TrainConfig
from .distributed import Group, Ranks, from_main, joined, settle
from .hints import first_judged, nothing_right, unseen_targets
from .metrics import evaluate, validation_loss
from .progress import BudgetBar
from .rundir import BEST_FILE, METRICS_FILE
from .state import Run, TrainState, save_last, start_or_resume

SAVE_EVERY_S = 300.0  # also write last.pt this often mid-epoch, so a killed run loses little


@dataclass(frozen=True)
class TrainResult:
    out_dir: Path  # where the files below live
    checkpoint: Path  # best checkpoint by validation exact match, then token error rate
    epochs: float  # passes over the train split, fractional if a budget stopped mid-epoch
    steps: int  # optimizer steps in total
    elapsed_s: float  # seconds of the whole run on the budget's clock (wall or CPU), resumptions included
    pairs_per_s: float  # training pairs per second of optimizer-step time (same clock)
    stopped_by: str  # "epochs", "time", "steps" or "interrupt"
    max_len: int  # decoding limit: longest train target + MAX_LEN_MARGIN
    max_src_tokens: int  # longest train source in tokens as the model sees them (with <eos> if appended)
    valid: dict[str, Any]  # the best checkpoint's validation metrics
    test: dict[str, Any]  # test-split metrics of the best checkpoint
    warnings: list[str]  # what the run warned about (e.g. nothing exactly right after the first epoch)
    history: list[dict[str, Any]]  # every validation in order: epoch, step, valid_loss, exact_match, token_error_rate


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


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: tuple[torch.Tensor, ...],
    cfg: TrainConfig,
    tf_gen: torch.Generator,
    pad: int,
    weight: float | None = None,
) -> torch.Tensor:
    """One optimizer step on a collated batch; returns the detached mean loss.

    With `weight` (a torchrun rank's share, distributed.py) the summed loss times it is what backward takes."""
    src, lengths, tgt_in, tgt_out = batch
    logits = model(src, lengths, tgt_in, cfg.teacher_forcing, generator=tf_gen)  # (B, T, V)
    loss = sequence_loss(logits, tgt_out, pad, cfg.label_smoothing, "mean" if weight is None else "sum")
    optimizer.zero_grad(set_to_none=True)
    (loss if weight is None else loss * weight).backward()
    if weight is not None:
        loss = loss / (tgt_out != pad).sum()
    if cfg.clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
    optimizer.step()
    return loss.detach()


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    warn: Callable[[str], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train per `cfg`, writing OUT/checkpoint.pt (best), OUT/last.pt (resumable) and OUT/metrics.json.

    `log` gets the progress lines (data, each validation), `warn` the warnings (default: `log`); the
    progress bar goes to stderr when `progress`. An OUT that already holds a run is refused unless
    `resume` (continue it) or `force` (replace it). Under torchrun each rank trains its share of every batch
    with DDP; rank 0 alone logs, warns, draws the bar and writes, and every rank returns rank 0's result.
    """
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    def quiet(_msg: str) -> None:
        return None

    try:
        with joined(cfg.device) as ranks:
            if ranks is None or ranks.main:
                return _train(cfg, resume, force, log or quiet, warn or log or quiet, progress, ranks)
            return _train(cfg, resume, force, quiet, quiet, False, ranks)
    finally:
        torch.set_num_threads(threads)


def _train(
    cfg: TrainConfig, resume: bool, force: bool, log: Log, warn: Log, progress: bool, ranks: Ranks | None
) -> TrainResult:
    writer = ranks is None or ranks.main
    run, state = settle(ranks, lambda: start_or_resume(cfg, resume, force, log, warn, writer))
    if ranks is not None:
        state.group = Group(ranks, state.model, run.device, cfg.seed)
        log(ranks.describe(cfg.batch_size))
    if warning := unseen_targets(run):
        warn(warning)
    with _stop_on_sigint() as interrupted:
        while state.cursor.epoch < cfg.epochs and state.stopped_by == "epochs":
            stepped = run_epoch(run, state, interrupted, progress)
            end_epoch(run, state, stepped)
    return from_main(ranks, lambda: finish(run, state))


def should_stop(run: Run, state: TrainState, interrupted: list[bool]) -> str | None:
    """The limit that ends the run before its next step: "time", "steps" or "interrupt"; None to go on."""
    if run.budget_s and state.cursor.elapsed_s >= run.budget_s:
        return "time"
    if run.cfg.max_steps and state.cursor.step >= run.cfg.max_steps:
        return "steps"
    if interrupted[0]:
        return "interrupt"
    return None


def run_epoch(run: Run, state: TrainState, interrupted: list[bool], progress: bool) -> bool:
    """Step through the current epoch's remaining batches until it ends or a limit stops the run.

    Returns whether it took a step; a finished epoch moves the cursor to the next one."""
    cfg, cur = run.cfg, state.cursor
    batches = epoch_batches(run.train, cfg.batch_size, cfg.seed, cur.epoch)
    bar = BudgetBar(run, cur, progress)
    stepped, running = False, None
    while cur.batch < len(batches):
        cur.elapsed_s = state.clock.elapsed()
        stop = should_stop(run, state, interrupted)
        if state.group is not None:
            stop, cur.elapsed_s = state.group.stop(stop, cur.elapsed_s)
        if stop is not None:
            state.stopped_by = stop
            break
        loss, lr = take_step(run, state, batches[cur.batch])
        stepped = True
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        bar.update(running, lr)
        if state.writer and time.monotonic() - state.last_save > SAVE_EVERY_S:
            save_last(run, state)
    bar.close()
    if cur.batch >= len(batches):
        cur.epoch, cur.batch = cur.epoch + 1, 0
    return stepped


def take_step(run: Run, state: TrainState, rows: list[int]) -> tuple[torch.Tensor, float]:
    """One optimizer step on the train pairs `rows` at the scheduled learning rate, counted on the cursor.

    Returns the detached loss and the learning rate."""
    cfg, cur, pad = run.cfg, state.cursor, run.tgt_pad_id
    t0 = state.clock.now()
    lr = lr_at(cfg, cur.step, cfg.epochs * run.steps_per_epoch, cur.elapsed_s / run.budget_s if run.budget_s else 0.0)
    for group in state.optimizer.param_groups:
        group["lr"] = lr
    model: torch.nn.Module = state.model
    weight: float | None = None
    batch: tuple[torch.Tensor, ...]
    if state.group is None:
        batch = collate(run.train, rows, pad, run.device)
    else:  # torchrun: this rank's share of the batch, through DDP
        model, (batch, weight) = state.group.model, state.group.shard(run.train, rows, pad, cur.step)
    loss = train_step(model, state.optimizer, batch, cfg, state.tf_gen, pad, weight)
    if state.average is not None:
        state.average.update()
    cur.step, cur.batch, cur.words = cur.step + 1, cur.batch + 1, cur.words + len(rows)
    cur.train_s += state.clock.now() - t0
    return loss, lr


def end_epoch(run: Run, state: TrainState, stepped: bool) -> None:
    """After an epoch, or a stop inside one: validate when due, then save last.pt (rank 0 alone)."""
    if not state.writer:
        return
    cur = state.cursor
    cur.elapsed_s = state.clock.elapsed()
    # Validation costs budget time too: every validate_every epochs, and always at the end.
    last_epoch = state.stopped_by != "epochs" or cur.epoch >= run.cfg.epochs
    if stepped and (last_epoch or cur.epoch % run.cfg.validate_every == 0):
        validate_and_keep_best(run, state)
    save_last(run, state)


def validate_and_keep_best(run: Run, state: TrainState) -> None:
    """Score the validation split, add the row to the history, and save checkpoint.pt when it is the best.

    With ema_decay, the average is what gets validated, kept as the best checkpoint and tested."""
    cfg, cur, model = run.cfg, state.cursor, state.model
    with state.average.applied() if state.average is not None else contextlib.nullcontext():
        vloss = validation_loss(model, run.valid, run.tgt_pad_id, cfg.eval_batch_size, run.device)
        m = evaluate(
            model, run.text, run.data.valid, max_len=run.max_len, batch_size=cfg.eval_batch_size, device=run.device
        )
        epoch = cur.epoch + cur.batch / run.steps_per_epoch
        row = {"epoch": round(epoch, 4), "step": cur.step, "valid_loss": vloss, **m.to_dict()}
        state.history.append(row)
        if state.best is None or _rank(row) > _rank(state.best):
            state.best = row
            save_checkpoint(
                run.out / BEST_FILE,
                Checkpoint(run.model_config, run.text, model.state_dict(), {**run.limits(), "valid": row}),
            )
    run.log(
        f"epoch {epoch:.2f} step {cur.step}: valid loss {vloss:.4f}, {run.names.describe(row)}, "
        f"{cur.elapsed_s / 60:.1f} {cfg.minutes}" + (" (best)" if state.best is row else "")
    )
    warning = nothing_right(run, state.history)
    if warning and state.history[-1] is first_judged(run, state.history):  # once: at that row
        run.warn(warning)


def _rank(row: dict[str, Any]) -> tuple[float, float, float]:
    """Best first: exact match, then token error rate, then validation loss."""
    return row["exact_match"], -row["token_error_rate"], -row["valid_loss"]


def finish(run: Run, state: TrainState) -> TrainResult:
    """Score the best checkpoint on the test split; store the figures in it and in metrics.json.

    The limits are stored again: a best checkpoint from before a resumption may lack them."""
    if state.best is None:
        raise ConfigError("training stopped before its first validation; raise --max-minutes or --max-steps")
    cfg, cur, out = run.cfg, state.cursor, run.out
    ckpt = load_checkpoint(out / BEST_FILE)
    model = ckpt.build_model(run.device)
    test = evaluate(
        model, ckpt.text, run.data.test, max_len=run.max_len, batch_size=cfg.eval_batch_size, device=run.device
    ).to_dict()
    training = {**(ckpt.training or {}), "max_len": run.max_len, "max_src_tokens": run.max_src_tokens, "test": test}
    save_checkpoint(out / BEST_FILE, Checkpoint(ckpt.config, ckpt.text, ckpt.state_dict, training))
    result = TrainResult(
        out_dir=out,
        checkpoint=out / BEST_FILE,
        epochs=round(cur.epoch + cur.batch / run.steps_per_epoch, 4),
        steps=cur.step,
        elapsed_s=cur.elapsed_s,
        pairs_per_s=cur.words / max(cur.train_s, 1e-9),
        stopped_by=state.stopped_by,
        max_len=run.max_len,
        max_src_tokens=run.max_src_tokens,
        valid=state.best,
        test=test,
        warnings=[w for w in (unseen_targets(run), nothing_right(run, state.history)) if w],
        history=list(state.history),
    )
    with atomic_file(out / METRICS_FILE) as tmp:
        tmp.write_text(
            json.dumps({**result.__dict__, "out_dir": str(out), "checkpoint": str(out / BEST_FILE)}, indent=2)
        )
    return result
