"""What the TorchScript and eager backends share: calling the two graphs as torch callables.

The callables take their inputs positionally in the IO spec's order and return their outputs in
the spec's order (a bare tensor when there is one output), exactly like the exported graphs.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..errors import ConfigError
from ..iospec import NEXT_TOKENS, PREV_TOKENS, GraphSpec
from .state import MemoryFlow, StateFlow


def set_torch_threads(threads: int | None) -> None:
    """torch's intra-op threads; process-wide, since torch has no per-module setting (None: leave)."""
    if threads is not None:
        torch.set_num_threads(threads)


def _as_tuple(out: torch.Tensor | tuple) -> tuple[torch.Tensor, ...]:
    return (out,) if isinstance(out, torch.Tensor) else tuple(out)


class TorchGraphBackend:
    """Implements runtime.greedy.Backend on two torch callables.

    The carried state is a tuple of device tensors: the recurrent states (replaced by every step),
    then the attention memory (fed unchanged to every step); `select` keeps rows of all of them.
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
        enc_out, dec = graphs["encoder"].output_names, graphs["decoder_step"]
        carried = flows + memory
        self._encoder_pick = [enc_out.index(f.encoder_output) for f in carried]
        self._step_pick = [dec.output_names.index(n) for n in [NEXT_TOKENS] + [f.decoder_output for f in flows]]
        # decoder_step's positional inputs: None for prev_tokens, else the index of a carried tensor
        carried_inputs = [f.decoder_input for f in carried]
        self._step_args = [None if n == PREV_TOKENS else carried_inputs.index(n) for n in dec.input_names]
        self._batch_axes = [f.batch_axis for f in carried]

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(self.device)

    @torch.inference_mode()
    def encode(self, src: np.ndarray, lengths: np.ndarray) -> tuple[torch.Tensor, ...]:
        out = _as_tuple(self.functions["encoder"](self._tensor(src), self._tensor(lengths)))
        return tuple(out[i] for i in self._encoder_pick)

    @torch.inference_mode()
    def step(self, prev_tokens: np.ndarray, state: tuple) -> tuple[np.ndarray, tuple]:
        prev = self._tensor(prev_tokens)
        out = _as_tuple(self.functions["decoder_step"](*(prev if i is None else state[i] for i in self._step_args)))
        nxt, *new = (out[i] for i in self._step_pick)
        return nxt.cpu().numpy(), tuple(new) + state[len(self.flows) :]  # memory passes through unchanged

    def select(self, state: tuple, rows: np.ndarray) -> tuple:
        idx = self._tensor(rows)
        return tuple(s.index_select(axis, idx) for s, axis in zip(state, self._batch_axes))

    @torch.inference_mode()
    def run_graph(self, name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raw call of one graph by its IO names, numpy in and out (every output)."""
        if name not in self.functions:
            raise ConfigError(f"unknown graph {name!r}: use one of {', '.join(self.functions)}")
        spec = self.graphs[name]
        out = _as_tuple(self.functions[name](*(self._tensor(feeds[n]) for n in spec.input_names)))
        return {n: t.cpu().numpy() for n, t in zip(spec.output_names, out)}
