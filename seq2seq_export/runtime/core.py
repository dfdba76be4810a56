"""The decoding core every search strategy, the verifier, the alignment path and the benchmark share.

It owns the decode options, padding, batching, carrying state and memory between graph calls and
selecting batch rows, teacher-forced stepping, and how a hypothesis is scored. A search strategy
(greedy.py, beam.py) is one function `strategy(backend, seqs, opts) -> one result per sequence`
over it. numpy only: no torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from ..constants import MAX_BEAM_SIZE, MAX_LEN_CEILING, MAX_LENGTH_PENALTY
from ..errors import ConfigError, is_int
from ..iospec import DECODER_STEP, ENCODER, PREV_TOKENS, SRC_LENGTHS, SRC_TOKENS, GraphSpec
from .state import MemoryFlow, StateFlow

if TYPE_CHECKING:
    from ..manifest import Bundle
    from ..vocab import TextPipeline

Seqs = Sequence[Sequence[int]]


class Backend(Protocol):
    """What every backend (onnx, torchscript, eager) offers: the two graphs' IO specs, what is carried
    between them, a fast encode/step/select path for search loops, and raw graph calls."""

    graphs: dict[str, GraphSpec]  # iospec.GRAPH_NAMES -> IO spec
    flows: tuple[StateFlow, ...]  # state tensors: replaced by every decoder step
    memory: tuple[MemoryFlow, ...]  # memory tensors (attention models): fed unchanged to every step

    def encode(self, src: np.ndarray, lengths: np.ndarray) -> Any:
        """src (B, S) int64 padded, lengths (B,) int64 -> the carried tensors of the first step."""

    def step(self, prev_tokens: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """prev_tokens (B,) int64 -> (next_tokens (B,) int64 on the host, the next step's carried tensors)."""

    def step_logits(self, prev_tokens: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """step() for searches that score: (logits (B, V) float32 on the host, the next step's carried tensors)."""

    def select(self, state: Any, rows: np.ndarray) -> Any:
        """The given batch rows of the carried tensors (rows: int64 indices, in any order, may repeat)."""

    def run_graph(self, name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raw call of one graph by its IO names, numpy in and out (every output)."""


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode: the special ids, the length limit and the search settings."""

    pad_id: int  # source padding id
    start_id: int  # target <sos>: the first step's previous token
    end_id: int  # target <eos>: a row that emits it is finished (-1: no row ever finishes)
    max_len: int  # decoder steps at most, per sequence
    beam_size: int = 1  # hypotheses kept per sequence while searching (1: greedy)
    num_hypotheses: int = 1  # hypotheses returned per sequence, at most beam_size
    length_penalty: float = 1.0  # exponent of the length that normalizes a hypothesis' score (0: none)

    def __post_init__(self) -> None:
        for name in ("pad_id", "start_id", "end_id", "max_len", "beam_size", "num_hypotheses"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ConfigError(f"decode option {name} must be an integer, got {value!r}")
        if min(self.pad_id, self.start_id) < 0 or self.end_id < -1:
            raise ConfigError(
                f"decode options: ids must be >= 0 (end_id may be -1), got pad {self.pad_id}, "
                f"start {self.start_id}, end {self.end_id}"
            )
        if not 1 <= self.max_len <= MAX_LEN_CEILING:
            raise ConfigError(f"max_len must lie in [1, {MAX_LEN_CEILING}], got {self.max_len}")
        if not 1 <= self.beam_size <= MAX_BEAM_SIZE:
            raise ConfigError(f"beam_size must lie in [1, {MAX_BEAM_SIZE}], got {self.beam_size}")
        if not 1 <= self.num_hypotheses <= self.beam_size:
            raise ConfigError(
                f"num_hypotheses must lie in [1, beam_size {self.beam_size}], got {self.num_hypotheses}: "
                "raise the beam size or ask for fewer hypotheses"
            )
        penalty = self.length_penalty
        if isinstance(penalty, bool) or not (
            isinstance(penalty, (int, float)) and math.isfinite(penalty) and 0 <= penalty <= MAX_LENGTH_PENALTY
        ):
            raise ConfigError(f"length_penalty must be a finite number in [0, {MAX_LENGTH_PENALTY:g}], got {penalty!r}")

    @classmethod
    def from_bundle(cls, bundle: Bundle, max_len: int | None = None, **search: Any) -> DecodeOptions:
        """The manifest's decoding section (start and end ids, max_len unless given) and the source pad id."""
        decoding = bundle.manifest["decoding"]
        return cls(
            _special(bundle.text.src.pad_id, "source <pad>"),
            int(decoding["start_id"]),
            int(decoding["end_id"]),
            bundle.max_len if max_len is None else max_len,
            **search,
        )

    @classmethod
    def from_text(cls, text: TextPipeline, max_len: int, **search: Any) -> DecodeOptions:
        """The vocabularies' pad, <sos> and <eos> ids (for a model without a bundle)."""
        return cls(
            _special(text.src.pad_id, "source <pad>"),
            _special(text.tgt.sos_id, "target <sos>"),
            _special(text.tgt.eos_id, "target <eos>"),
            max_len,
            **search,
        )


def _special(text_id: int | None, name: str) -> int:
    """A special token's id, which decoding cannot do without."""
    if text_id is None:
        raise ConfigError(f"the vocabulary has no {name} token: cannot decode without it")
    return text_id


R = TypeVar("R")
# A search strategy: decode one batch, return one result per sequence (greedy: its tokens without
# <sos>/<eos>; beam search: its n-best list of Scored hypotheses).
Strategy = Callable[[Backend, Seqs, DecodeOptions], list[R]]


@dataclass(frozen=True)
class Scored:
    """One hypothesis of a search, scored.

    score = sum(token_scores) / len(token_scores) ** length_penalty, where token_scores are the
    natural-log probabilities (log-softmax of the step logits) of every emitted token, the end
    token included; a hypothesis cut at max_len has max_len tokens and no end token.
    """

    ids: tuple[int, ...]  # target ids without <sos>/<eos>
    score: float  # the length-normalized sum of log-probs above
    token_scores: tuple[float, ...]  # log-prob of each id, then of <eos> when the hypothesis ended with one


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """(B, V) logits -> (B, V) float64 log-probabilities, each <= 0 (max-shifted: no overflow); a row
    holding inf or nan, or only -inf (a broken model), is all -inf: no token of it can be ranked."""
    x = logits.astype(np.float64)  # float32 logits are exact in float64; sums of many log-probs keep their digits
    top = x.max(axis=1, keepdims=True)  # (B, 1): not finite exactly for the broken rows
    bad = None
    if not math.isfinite(top.sum()):  # one reduction; a sum that overflows only takes the exact path below
        bad = ~np.isfinite(top[:, 0])
        x[bad] = top[bad] = 0.0  # computed harmlessly (no numpy warning on stderr), set to -inf below
    x -= top
    x -= np.log(np.exp(x).sum(axis=1, keepdims=True))  # the sum is >= 1 (its max term is exp(0)): log >= 0
    if bad is not None:
        x[bad] = -np.inf
    return x


def normalized(total: Any, length: int, length_penalty: float) -> Any:
    """A hypothesis' score from its log-prob sum and its length (the end token counted); total may
    be a float or an array of them."""
    return total / length**length_penalty  # penalty 0: divided by exactly 1.0, the plain sum


def pad_batch(seqs: Seqs, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad id lists into (B, S) int64 with S >= 1 (an all-empty batch still has one column)."""
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    src = np.full((len(seqs), max(1, int(lengths.max(initial=0)))), pad_id, dtype=np.int64)
    for i, s in enumerate(seqs):
        src[i, : len(s)] = s
    return src, lengths


def length_order(seqs: Seqs) -> list[int]:
    """Indices of `seqs` from shortest to longest; stable: ties keep input order."""
    return sorted(range(len(seqs)), key=lambda i: len(seqs[i]))


def batch_indices(seqs: Seqs, batch_size: int, *, by_length: bool = True) -> list[list[int]]:
    """Index lists of at most batch_size sequences, in length_order (less padding) or in input order."""
    if not is_int(batch_size):
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    order = length_order(seqs) if by_length else list(range(len(seqs)))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def decode_in_batches(
    backend: Backend, seqs: Seqs, opts: DecodeOptions, *, batch_size: int, strategy: Strategy[R], by_length: bool = True
) -> list[R]:
    """Run `strategy` over batch_indices(seqs, batch_size, by_length=...); results in input order."""
    results: list[Any] = [None] * len(seqs)
    for idx in batch_indices(seqs, batch_size, by_length=by_length):
        for i, found in zip(idx, strategy(backend, [seqs[i] for i in idx], opts)):
            results[i] = found
    return results


class Carry:
    """How a decode carries tensors between graph calls, read from the state and memory flows.

    The carried tensors are a tuple, one per state flow then one per memory flow, of whatever the
    caller holds (numpy arrays, torch tensors, OrtValues): the encoder's outputs become the first
    step's inputs; each step's state outputs replace the state, the memory passes on unchanged.
    """

    def __init__(self, flows: tuple[StateFlow, ...], memory: tuple[MemoryFlow, ...] = ()):
        self.flows, self.memory = flows, memory
        carried = flows + memory
        self.encoder_outputs = [f.encoder_output for f in carried]  # what to fetch from the encoder
        self.decoder_inputs = [f.decoder_input for f in carried]  # what each step is fed, besides prev_tokens
        self.state_outputs = [f.decoder_output for f in flows]  # the step outputs that become the next state
        self.batch_axes = [f.batch_axis for f in carried]

    @classmethod
    def of(cls, backend: Backend) -> Carry:
        return cls(backend.flows, backend.memory)

    def first(self, encoded: Mapping[str, Any]) -> tuple:
        """The first step's carried tensors, from the encoder's outputs by name."""
        return tuple(encoded[n] for n in self.encoder_outputs)

    def feeds(self, prev_tokens: Any, carried: tuple) -> dict[str, Any]:
        """One decoder step's inputs by name."""
        return {PREV_TOKENS: prev_tokens, **dict(zip(self.decoder_inputs, carried))}

    def next(self, carried: tuple, new_state: Sequence[Any]) -> tuple:
        """The next step's carried tensors: the step's new state (in flow order), the same memory."""
        return tuple(new_state) + carried[len(self.flows) :]

    def stepped(self, carried: tuple, outputs: Mapping[str, Any]) -> tuple:
        """next() from a step's outputs by name."""
        return self.next(carried, [outputs[n] for n in self.state_outputs])

    def select(self, carried: tuple, rows: Any, take: Callable[[Any, Any, int], Any] | None = None) -> tuple:
        """The given batch rows (may repeat) of every carried tensor; take(tensor, rows, axis) for
        tensors other than numpy arrays."""
        if take is None:
            return tuple(np.take(x, rows, axis=a) for x, a in zip(carried, self.batch_axes))
        return tuple(take(x, rows, a) for x, a in zip(carried, self.batch_axes))


def teacher_forced_steps(
    backend: Backend, seqs: Seqs, prev: np.ndarray, *, pad_id: int
) -> Iterator[tuple[int | None, dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """Raw graph calls along given tokens: the encoder on `seqs`, then one decoder step per column of
    prev (B, T) int64, each fed prev[:, t] and the state the step before returned.

    Yields (step, feeds, outputs) per call, step None for the encoder: a caller may run other
    backends on the same feeds, so that every backend follows this one's states.
    """
    carry = Carry.of(backend)
    src, lengths = pad_batch(seqs, pad_id)
    feeds = {SRC_TOKENS: src, SRC_LENGTHS: lengths}
    out = backend.run_graph(ENCODER, feeds)
    yield None, feeds, out
    carried = carry.first(out)
    for t in range(prev.shape[1]):
        feeds = carry.feeds(np.ascontiguousarray(prev[:, t]), carried)
        out = backend.run_graph(DECODER_STEP, feeds)
        yield t, feeds, out
        carried = carry.stepped(carried, out)
