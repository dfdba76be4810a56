"""A run's fixed setup (`Run`) and its changing state (`TrainState`): started afresh or resumed from last.pt."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..checkpoint import Checkpoint, save_checkpoint
from ..config import ModelConfig
from ..constants import MAX_LEN_MARGIN
from ..data import Dataset, load_dataset
from ..errors import ConfigError
from ..model import Seq2Seq, select_device
from ..vocab import TextPipeline, Vocab, normalize_text
from ..weights import check_model_size
from .averaging import WeightAverage
from .batching import EncodedPairs, epoch_batches
from .config import TrainConfig
from .metrics import MetricNames
from .resume import check_average, load_resumable, restore, rng_state
from .rundir import LAST_FILE, check_run_dir, clear_run

if TYPE_CHECKING:
    from .distributed import Group


@dataclass
class Cursor:
    """Where the run is; stored in last.pt as a plain dict."""

    epoch: int = 0  # epochs completed
    batch: int = 0  # batches of the current epoch done
    step: int = 0  # optimizer steps in total
    elapsed_s: float = 0.0  # the budget's clock, all sessions of the run
    train_s: float = 0.0  # the same clock, inside optimizer steps only
    words: int = 0  # training pairs stepped on


@dataclass
class Clock:
    """The budget's clock: wall time, or this process's CPU time (all threads), which other jobs on a
    shared machine do not eat into. Both count validation too."""

    now: Callable[[], float]
    start: float  # now() at this session's start, minus the time earlier sessions spent

    @classmethod
    def resumed(cls, kind: str, elapsed_s: float) -> Clock:
        now = time.process_time if kind == "cpu" else time.monotonic
        return cls(now, now() - elapsed_s)

    def elapsed(self) -> float:
        return self.now() - self.start


@dataclass(frozen=True)
class Run:
    """What stays fixed for a whole run: settings, data, vocabularies and the limits they imply."""

    cfg: TrainConfig
    device: torch.device
    data: Dataset  # the text pairs of every split
    text: TextPipeline
    model_config: ModelConfig
    train: EncodedPairs
    valid: EncodedPairs
    max_len: int  # decoding limit: longest train target + MAX_LEN_MARGIN
    max_src_tokens: int  # longest train source in tokens as the model sees them (with <eos> if appended)
    steps_per_epoch: int
    log: Callable[[str], None]  # progress lines
    warn: Callable[[str], None]  # warnings

    @property
    def tgt_pad_id(self) -> int:
        """The target padding id (TextPipeline refuses vocabularies without one)."""
        pad = self.text.tgt.pad_id
        assert pad is not None
        return pad

    @property
    def out(self) -> Path:
        return self.cfg.out_dir

    @property
    def names(self) -> MetricNames:
        """The metrics' names for this dataset: WER/PER for cmudict."""
        return MetricNames.of(self.cfg.dataset)

    @property
    def budget_s(self) -> float:
        """The time budget in seconds of the budget's clock; 0 = none."""
        return self.cfg.max_minutes * 60.0

    def limits(self) -> dict[str, Any]:
        """The fields every checkpoint of the run carries beside its weights."""
        return {"train_config": self.cfg.to_dict(), "max_len": self.max_len, "max_src_tokens": self.max_src_tokens}


@dataclass
class TrainState:
    """What changes as the run goes; last.pt stores all of it."""

    model: Seq2Seq
    optimizer: torch.optim.Optimizer
    average: WeightAverage | None  # with ema_decay: validated, kept as the best and tested
    tf_gen: torch.Generator  # teacher-forcing draws
    cursor: Cursor
    history: list[dict[str, Any]]  # one row per validation
    best: dict[str, Any] | None  # the best validation row so far
    clock: Clock
    last_save: float  # time.monotonic() of the latest last.pt
    stopped_by: str = "epochs"  # or "time", "steps", "interrupt" once a limit ends the run
    group: Group | None = None  # under torchrun: the ranks and the DDP-wrapped model

    @property
    def writer(self) -> bool:
        """Whether this process validates and writes the run directory: rank 0 of a torchrun run."""
        return self.group is None or self.group.ranks.main


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam; AdamW with cfg.weight_decay on weight matrices and embeddings (never biases) when it is set."""
    if not cfg.weight_decay:
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr)


def start_or_resume(
    cfg: TrainConfig,
    resume: bool,
    force: bool,
    log: Callable[[str], None],
    warn: Callable[[str], None],
    writer: bool = True,
) -> tuple[Run, TrainState]:
    """A fresh run in cfg.out_dir, or the interrupted one continued from its last.pt (checked field by field).

    The order of the steps is the order the RNG streams are drawn in: it keeps a resumed run bit-identical.
    Only a `writer` (not a torchrun rank above 0) clears the run directory."""
    if not cfg.dataset:
        raise ConfigError(
            f"preset {cfg.preset!r} needs a dataset: pass --dataset tsv:FILE (source<TAB>target per "
            "line; --src-tokenizer/--tgt-tokenizer char for character-level tasks)"
        )
    out = cfg.out_dir
    check_run_dir(out, resume, force)  # reading only: every rank fails as early as rank 0
    device = select_device(cfg.device)
    data = load_dataset(
        cfg.dataset,
        cfg.seed,
        src_tokenizer=cfg.src_tokenizer or None,
        tgt_tokenizer=cfg.tgt_tokenizer or None,
        max_tokens=cfg.max_tokens or None,
    )
    torch.manual_seed(cfg.seed)
    tf_gen = torch.Generator().manual_seed(cfg.seed + 1)
    last = load_resumable(out / LAST_FILE, cfg) if resume else None
    text, mcfg, saved = _fresh(cfg, data) if last is None else _from_last(last)
    model = Seq2Seq(mcfg)
    if last is not None:
        model.load_state_dict(last.state_dict)
    model.to(device).train()
    optimizer = make_optimizer(model, cfg)
    average = None
    if cfg.ema_decay:
        average = WeightAverage(model, cfg.ema_decay, check_average(out / LAST_FILE, saved, model) if resume else None)
    run = _setup(cfg, device, data, text, mcfg, log, warn)
    if resume:
        restore(out / LAST_FILE, saved, model, optimizer, tf_gen, device, run.steps_per_epoch)
    elif writer:
        clear_run(out, force)
    cursor = Cursor(**{f.name: saved["cursor"][f.name] for f in fields(Cursor)})
    log(
        f"{cfg.dataset}: {len(data.train)} train / {len(data.valid)} valid / {len(data.test)} test pairs; "
        f"vocab {len(text.src)}/{len(text.tgt)}; {sum(p.numel() for p in model.parameters())} parameters; "
        f"device {device}; {run.steps_per_epoch} steps/epoch" + (f"; resuming at step {cursor.step}" if resume else "")
    )
    clock = Clock.resumed(cfg.clock, cursor.elapsed_s)
    return run, TrainState(
        model,
        optimizer,
        average,
        tf_gen,
        cursor,
        list(saved["history"]),
        saved["best"],
        clock,
        last_save=time.monotonic(),
    )


def _fresh(cfg: TrainConfig, data: Dataset) -> tuple[TextPipeline, ModelConfig, dict[str, Any]]:
    """Vocabularies from the train split, the model they size, and the state of a run at its start."""
    steps = cfg.normalize_steps  # the vocabulary holds the sources as the model will read them
    text = TextPipeline(
        Vocab.build((normalize_text(s, steps) for s, _ in data.train), data.src_tokenizer),
        Vocab.build((t for _, t in data.train), data.tgt_tokenizer),
        normalize=steps,
    )
    mcfg = cfg.model_config(len(text.src), len(text.tgt))
    check_model_size(mcfg, "train options", ConfigError)
    return text, mcfg, {"cursor": asdict(Cursor()), "best": None, "history": []}


def _from_last(last: Checkpoint) -> tuple[TextPipeline, ModelConfig, dict[str, Any]]:
    """The interrupted run's vocabularies, model and state (cursor, best, history, optimizer, RNG, average)."""
    assert last.training is not None  # load_resumable checked it holds a cursor
    return last.text, last.config, last.training


def _setup(
    cfg: TrainConfig,
    device: torch.device,
    data: Dataset,
    text: TextPipeline,
    mcfg: ModelConfig,
    log: Callable[[str], None],
    warn: Callable[[str], None],
) -> Run:
    """The encoded splits and the limits read from the train split."""
    train_enc = EncodedPairs.from_text(text, data.train)
    max_len = max(len(t) for t in train_enc.tgt) - 2 + MAX_LEN_MARGIN  # minus <sos>, <eos>
    max_src_tokens = max(1, *(len(s) for s in train_enc.src))  # as the model sees them: with <eos> if appended
    steps_per_epoch = len(epoch_batches(train_enc, cfg.batch_size, cfg.seed, 0))
    return Run(
        cfg,
        device,
        data,
        text,
        mcfg,
        train_enc,
        EncodedPairs.from_text(text, data.valid),
        max_len,
        max_src_tokens,
        steps_per_epoch,
        log,
        warn,
    )


def save_last(run: Run, state: TrainState) -> None:
    """Write last.pt: the weights and everything --resume needs to continue bit for bit."""
    training = {
        **run.limits(),
        "cursor": asdict(state.cursor),
        "best": state.best,
        "history": state.history,
        "optimizer": state.optimizer.state_dict(),
        "rng": rng_state(state.tf_gen, run.device),
    }
    if state.average is not None:
        training["average"] = state.average.state()
    save_checkpoint(run.out / LAST_FILE, Checkpoint(run.model_config, run.text, state.model.state_dict(), training))
    state.last_save = time.monotonic()
