"""An exponential moving average of a model's weights, for validation, checkpoints and the test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from ..errors import CheckpointError


class WeightAverage:
    """shadow <- d * shadow + (1 - d) * weights after every optimizer step, d = min(decay, (1+n)/(10+n)).

    The ramp on d (n = updates so far) keeps the first steps' random weights from dominating a
    short run. `applied()` swaps the average into the model for a `with` block and restores the
    trained weights after it, so training goes on from the raw weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float, state: dict[str, Any] | None = None):
        self.decay = decay
        self.named = [(name, p) for name, p in model.named_parameters()]
        if state is None:
            self.updates = 0
            self.shadow = [p.detach().clone() for _, p in self.named]
        else:
            missing = sorted({name for name, _ in self.named} - set(state.get("shadow", {})))
            if missing or "updates" not in state:
                raise CheckpointError(f"the stored weight average lacks {', '.join(missing) or 'its update count'}")
            self.updates = int(state["updates"])
            self.shadow = [state["shadow"][name].to(p.device, p.dtype).clone() for name, p in self.named]

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        weight = 1.0 - min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for s, (_, p) in zip(self.shadow, self.named):
            s.lerp_(p, weight)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        raw = [p.detach().clone() for _, p in self.named]
        with torch.no_grad():
            for s, (_, p) in zip(self.shadow, self.named):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for r, (_, p) in zip(raw, self.named):
                    p.copy_(r)

    def state(self) -> dict[str, Any]:
        """What resuming needs (tensors on the CPU, keyed by parameter name)."""
        return {
            "updates": self.updates,
            "shadow": {name: s.detach().cpu() for s, (name, _) in zip(self.shadow, self.named)},
        }
