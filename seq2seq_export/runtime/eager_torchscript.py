"""What the TorchScript and eager backends share: calling the two graphs as torch callables.

The callables take their inputs positionally in the IO spec's order and return their outputs in
the spec's order (a bare tensor when there is one output), exactly like the exported graphs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..errors import ConfigError
from ..iospec import DECODER_STEP, ENCODER, LOGITS, NEXT_TOKENS, SRC_LENGTHS, SRC_TOKENS, GraphSpec
from .core import Carry
from .state import MemoryFlow, StateFlow


def set_torch_threads(threads: int | None) -> None:
    """torch's intra-op threads; process-wide, since torch has no per-module setting (None: leave)."""
    if threads is not None:
        torch.set_num_threads(threads)


def _as_tuple(out: torch.Tensor | tuple) -> tuple[torch.Tensor, ...]:
    return (out,) if isinstance(out, torch.Tensor) else tuple(out)


class TorchGraphBackend:
    """Implements runtime.core.Backend on two torch callables.

    The carried tensors (core.Carry) are device tensors; `select` keeps rows of all of them.
    """

    def __init__(
        self,
        graphs: dict[str, GraphSpec],
        functions: dict[str, Callable[..., torch.Tensor | tuple]],
        flows: tuple[StateFlow, ...],
        device: torch.device,
        memory: tuple[MemoryFlow, ...] = (),
    ):
        self.graphs, self.functions, self.flows, self.memory, self.device = graphs, functions, flows, memory, device
        self.carry = Carry(flows, memory)
        self._io = {
            name: (spec.input_names, spec.output_names) for name, spec in graphs.items()
        }  # the step loop's hot path

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(self.device)

    def _call(self, name: str, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One graph on tensors by IO name: the callable takes and returns them in the spec's order."""
        inputs, outputs = self._io[name]
        return dict(zip(outputs, _as_tuple(self.functions[name](*(feeds[n] for n in inputs)))))

    @torch.inference_mode()
    def encode(self, src: np.ndarray, lengths: np.ndarray) -> tuple[torch.Tensor, ...]:
        return self.carry.first(
            self._call(ENCODER, {SRC_TOKENS: self._tensor(src), SRC_LENGTHS: self._tensor(lengths)})
        )

    def step(self, prev_tokens: np.ndarray, state: tuple) -> tuple[np.ndarray, tuple]:
        return self._step(prev_tokens, state, NEXT_TOKENS)

    def step_logits(self, prev_tokens: np.ndarray, state: tuple) -> tuple[np.ndarray, tuple]:
        return self._step(prev_tokens, state, LOGITS)

    @torch.inference_mode()
    def _step(self, prev_tokens: np.ndarray, state: tuple, fetch: str) -> tuple[np.ndarray, tuple]:
        """One decoder step: output `fetch` on the host, the new state left on the device."""
        out = self._call(DECODER_STEP, self.carry.feeds(self._tensor(prev_tokens), state))
        return out[fetch].cpu().numpy(), self.carry.stepped(state, out)

    def select(self, state: tuple, rows: np.ndarray) -> tuple:
        return self.carry.select(state, self._tensor(rows), lambda t, idx, axis: t.index_select(axis, idx))

    @torch.inference_mode()
    def run_graph(self, name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raw call of one graph by its IO names, numpy in and out (every output)."""
        if name not in self.functions:
            raise ConfigError(f"unknown graph {name!r}: use one of {', '.join(self.functions)}")
        out = self._call(name, {n: self._tensor(feeds[n]) for n in self._io[name][0]})
        return {n: t.cpu().numpy() for n, t in out.items()}
