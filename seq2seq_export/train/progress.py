"""The training progress bar: how far the run is through the budget that ends it (time or steps)."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:
    from .config import TrainConfig
    from .state import Cursor, Run

BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar:20}| [{elapsed}<{remaining}{postfix}]"  # tqdm puts ", " before a postfix


def budget_progress(cfg: TrainConfig, steps_per_epoch: int, step: int, elapsed_s: float) -> tuple[float, str]:
    """The run's progress as a fraction of the limit that ends it first, and that limit in its own units.

    The limits are the time budget and the steps (--max-steps, or the epochs' steps); the one
    furthest along is the one that ends the run: '12.3/45 CPU-min' or 'steps 120/500'."""
    total_steps = cfg.epochs * steps_per_epoch
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    steps = min(1.0, step / total_steps)
    if cfg.max_minutes and elapsed_s / 60 / cfg.max_minutes >= steps:
        return min(1.0, elapsed_s / 60 / cfg.max_minutes), f"{elapsed_s / 60:.1f}/{cfg.max_minutes:g} {cfg.minutes}"
    return steps, f"steps {step}/{total_steps}"


class BudgetBar:
    """One epoch's bar on stderr (cleared when it ends, so the epoch's validation line follows cleanly),
    measured in the whole run's budget; the epoch, running loss and learning rate follow it."""

    def __init__(self, run: Run, cursor: Cursor, enabled: bool) -> None:
        self.run, self.cursor = run, cursor
        fraction, text = self._progress()
        self.bar = tqdm(total=1.0, initial=fraction, desc=text, postfix=self._epoch(), bar_format=BAR_FORMAT,
                        file=sys.stderr, disable=not enabled, mininterval=1.0, leave=False)

    def _progress(self) -> tuple[float, str]:
        return budget_progress(self.run.cfg, self.run.steps_per_epoch, self.cursor.step, self.cursor.elapsed_s)

    def _epoch(self) -> str:
        return f"epoch {self.cursor.epoch + 1}/{self.run.cfg.epochs}"

    def update(self, loss: float, lr: float) -> None:
        """After a step: the budget's progress, the epoch, the running loss and the learning rate."""
        if self.bar.disable:
            return
        fraction, text = self._progress()
        self.bar.set_description_str(text, refresh=False)
        self.bar.set_postfix_str(f"{self._epoch()}, loss {loss:.4f}, lr {lr:.2e}", refresh=False)
        self.bar.update(fraction - self.bar.n)

    def close(self) -> None:
        self.bar.close()
