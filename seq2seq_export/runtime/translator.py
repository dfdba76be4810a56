"""Translator: text in, text out, from a checked bundle on any backend, by greedy or beam search.

Importing this module never imports torch or onnxruntime: `open_backend` imports the chosen
backend's module when it is asked for, so the onnx path stays torch-free.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, NamedTuple

from ..constants import (
    BACKENDS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_SRC_TOKENS,
    MAX_LINE_CHARS,
    MAX_SRC_TOKENS_CEILING,
    MAX_THREADS,
)
from ..errors import ConfigError, InputTooLong, VocabError, is_int
from ..manifest import Bundle, load_bundle
from ..vocab import TextPipeline, count_tokens, first_tokens
from .alignment import attention_weights, require_attention
from .beam import beam_search
from .core import Backend, DecodeOptions, Scored, Seqs, batch_indices, decode_in_batches
from .greedy import greedy_decode, greedy_scored

# Options each backend's constructor takes besides the bundle (open_backend's `threads` is common).
BACKEND_OPTIONS = {
    "onnx": ("providers", "intra_op_threads", "inter_op_threads", "io_binding"),
    "torchscript": ("device",),
    "eager": ("device",),
}


def _positive_int(name: str, value: Any, ceiling: int | None = None) -> int:
    if not is_int(value):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if ceiling is not None and value > ceiling:
        raise ConfigError(f"{name} must be at most {ceiling}, got {value}")
    return value


def open_backend(bundle: Bundle, name: str = "onnx", *, threads: int | None = None, **opts: Any) -> Backend:
    """Build backend `name` for a loaded bundle.

    threads: compute threads; for onnx the session's intra-op threads, for torchscript and eager
    torch.set_num_threads (which is process-wide in torch).
    """
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")
    unknown = sorted(set(opts) - set(BACKEND_OPTIONS[name]))
    if unknown:
        raise ConfigError(
            f"backend {name} takes no option(s) {', '.join(unknown)} (it takes: {', '.join(BACKEND_OPTIONS[name])})"
        )
    if threads is not None:
        _positive_int("threads", threads, MAX_THREADS)
    if name == "onnx":
        from .onnx import OnnxBackend

        if threads is not None:
            opts.setdefault("intra_op_threads", threads)
        return OnnxBackend(bundle, **opts)
    from .eager_torchscript import set_torch_threads

    set_torch_threads(threads)
    if name == "torchscript":
        from .torchscript import TorchScriptBackend

        return TorchScriptBackend(bundle, **opts)
    from .eager import EagerBackend

    return EagerBackend.from_bundle(bundle, **opts)


class Fit(NamedTuple):
    """An input made to fit max_src_tokens (Translator.fit)."""

    text: str  # the input as the model reads it (normalized: TextPipeline.normalize), or its cut head
    tokens: int  # the whole input's tokens as the model sees them (<eos> included)
    truncated: bool  # text is a cut head


@dataclass(frozen=True)
class Hypothesis:
    """One entry of a translation's n-best list."""

    output: str  # detokenized target text
    ids: tuple[int, ...]  # target ids without <sos>/<eos>
    # sum of the tokens' log-probs (<eos> included) / length ** length_penalty (runtime.core.Scored);
    # None for a greedy decode without scores=True, and for an empty input (never decoded)
    score: float | None
    token_scores: tuple[float, ...] | None = (
        None  # with token_scores=True: each id's log-prob, then <eos>'s if it ended
    )


@dataclass(frozen=True)
class Translation:
    input: str  # the input as given; when truncated, the cut head as the model read it (normalized)
    output: str  # detokenized target text (the best hypothesis')
    ids: tuple[int, ...]  # target ids without <sos>/<eos>
    # With attention=True: one row per id, the weights over the source tokens as the model saw them
    # (one per character or word, plus <eos> when the bundle appends it), each row summing to 1.
    attention: tuple[tuple[float, ...], ...] | None = None
    truncated: bool = False  # cut to max_src_tokens (translations(truncate=True)); `input` is then the cut head
    score: float | None = None  # the best hypothesis' score (Hypothesis.score)
    token_scores: tuple[float, ...] | None = None  # the best hypothesis' token log-probs (token_scores=True)
    hypotheses: tuple[Hypothesis, ...] = ()  # the n-best list, best first: hypotheses[0] is output, ids, score
    # The input's tokens outside the source vocabulary, after normalization, in order: the model read each as <unk>.
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True)
class Translator:
    """Greedy or beam-search translation through a backend. Holds no per-call state: safe to share
    between threads."""

    backend: Backend
    text: TextPipeline
    max_len: int  # decoding steps at most, per sequence
    batch_size: int = DEFAULT_BATCH_SIZE  # sequences per backend call; results never depend on it
    max_src_tokens: int = DEFAULT_MAX_SRC_TOKENS  # tokens per input as the model sees them (<eos> included)

    def __post_init__(self) -> None:
        _positive_int("max_len", self.max_len)
        _positive_int("batch_size", self.batch_size)
        _positive_int("max_src_tokens", self.max_src_tokens, MAX_SRC_TOKENS_CEILING)

    @classmethod
    def from_bundle(
        cls,
        path: str | os.PathLike | Bundle,
        backend: str = "onnx",
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_len: int | None = None,
        max_src_tokens: int | None = None,
        **backend_opts: Any,
    ) -> Translator:
        """Load and check the bundle (version, paths, sha256) and open `backend` on it.

        max_len and max_src_tokens default to the bundle's.
        """
        bundle = path if isinstance(path, Bundle) else load_bundle(path)
        max_len = bundle.max_len if max_len is None else max_len
        max_src_tokens = bundle.max_src_tokens if max_src_tokens is None else max_src_tokens
        _positive_int("max_len", max_len)
        _positive_int("batch_size", batch_size)
        _positive_int("max_src_tokens", max_src_tokens, MAX_SRC_TOKENS_CEILING)
        return cls(open_backend(bundle, backend, **backend_opts), bundle.text, max_len, batch_size, max_src_tokens)

    def fit(
        self,
        text: str,
        *,
        truncate: bool = False,
        where: str = "input",
        tokens: int | None = None,
        normalized: bool = False,
    ) -> Fit:
        """`text` normalized (the bundle's steps; unless `normalized` says it already is), made to fit max_src_tokens.

        An input over the limit raises InputTooLong naming `where`, or with truncate is cut to its
        first tokens (the appended <eos>, if any, still follows). `tokens`, when given, says that
        `text` is only the head of a longer input (lines.read_lines cuts lines past MAX_LINE_CHARS)
        and how many tokens the whole input has: such an input is never translated whole.
        """
        text = text if normalized else self.text.normalize_source(text)
        extra = int(self.text.src_append_eos)
        kind = self.text.src.tokenizer
        n = (count_tokens(text, kind) if tokens is None else tokens) + extra
        cut = tokens is not None
        if n <= self.max_src_tokens and not cut:
            return Fit(text, n, False)
        if truncate:
            return Fit(first_tokens(text, kind, self.max_src_tokens - extra), n, True)
        if n <= self.max_src_tokens:  # a cut line of few but huge tokens
            raise InputTooLong(
                f"{where}: more than {MAX_LINE_CHARS} characters, the most one input may have: "
                "split it, or cut inputs (--truncate / truncate=True)"
            )
        raise self._too_long(where, f"{n} tokens{' with <eos>' if extra else ''}")

    def _too_long(self, where: str, what: str) -> InputTooLong:
        return InputTooLong(
            f"{where}: {what}, over the limit of {self.max_src_tokens} tokens per input: raise it "
            f"(--max-input-tokens / max_src_tokens, at most {MAX_SRC_TOKENS_CEILING}), "
            "or cut inputs (--truncate / truncate=True)"
        )

    @cached_property
    def options(self) -> DecodeOptions:
        """The decode options of a greedy call, from the vocabularies and max_len."""
        return DecodeOptions.from_text(self.text, self.max_len)

    def search_options(self, beam_size: int = 1, num_hypotheses: int = 1, length_penalty: float = 1.0) -> DecodeOptions:
        """options with these search settings; a bad value raises ConfigError (see DecodeOptions)."""
        return replace(self.options, beam_size=beam_size, num_hypotheses=num_hypotheses, length_penalty=length_penalty)

    def translate_ids(self, seqs: Seqs) -> list[list[int]]:
        """Source id lists (as the model sees them) -> target id lists without <sos>/<eos>, by greedy search.

        A list longer than max_src_tokens raises InputTooLong naming its index.
        """
        self._check_ids(seqs)
        return decode_in_batches(self.backend, seqs, self.options, batch_size=self.batch_size, strategy=greedy_decode)

    def scored_ids(self, seqs: Seqs, options: DecodeOptions) -> list[list[Scored]]:
        """Source id lists -> n-best lists of scored hypotheses (runtime.beam.beam_search; beam_size 1:
        greedy_scored, the same list at greedy's cost). options: e.g. search_options(beam_size=5)."""
        self._check_ids(seqs)
        strategy = greedy_scored if options.beam_size == 1 else beam_search
        return decode_in_batches(self.backend, seqs, options, batch_size=self.batch_size, strategy=strategy)

    def _check_ids(self, seqs: Seqs) -> None:
        size = len(self.text.src)
        for i, s in enumerate(seqs):
            if len(s) > self.max_src_tokens:
                raise self._too_long(f"input {i}", f"{len(s)} ids")
            if s and not (0 <= min(s) and max(s) < size):
                raise VocabError(f"input {i}: source ids must lie in [0, {size}), got {list(s)}")

    def translations(
        self,
        texts: Sequence[str],
        attention: bool = False,
        truncate: bool = False,
        *,
        beam_size: int = 1,
        num_hypotheses: int = 1,
        length_penalty: float = 1.0,
        scores: bool = False,
        token_scores: bool = False,
        normalized: bool = False,
    ) -> list[Translation]:
        """Texts -> Translation records. An input with no tokens (empty line) gives an empty output.

        An input over max_src_tokens raises InputTooLong (see `fit`); with truncate=True it is cut
        and its record says so. attention=True also returns each output token's attention weights
        (models with attention only, else ConfigError); it re-runs the decoder steps, so it costs
        about one more decode.

        beam_size > 1 searches a beam (runtime.beam) and returns num_hypotheses hypotheses per input,
        scored with length_penalty. A greedy decode (beam_size 1) is scored only with scores=True
        or token_scores=True (it then fetches the logits of every step); token_scores=True also
        returns each token's log-prob. Bad values raise ConfigError.

        Each input goes through the bundle's normalize steps first (normalized=True: the texts already
        did, e.g. as Fit.text); each record lists the tokens the source vocabulary lacks (`unknown`).
        """
        opts = self.search_options(beam_size, num_hypotheses, length_penalty)
        if attention:
            require_attention(self.backend)
        fitted = [
            self.fit(t, truncate=truncate, where=f"input {i}", normalized=normalized) for i, t in enumerate(texts)
        ]
        read = [f.text for f in fitted]
        encoded = [self.text.encode_source(t, normalized=True) for t in read]
        blank = int(self.text.src_append_eos)  # an empty input encodes to [] or to [<eos>]
        todo = [i for i, ids in enumerate(encoded) if len(ids) > blank]
        seqs = [encoded[i] for i in todo]
        found: list[tuple[Hypothesis, ...]] = [(Hypothesis("", (), None),) for _ in read]
        if beam_size > 1 or scores or token_scores:
            for i, nbest in zip(todo, self.scored_ids(seqs, opts)):
                found[i] = (
                    tuple(self._hypothesis(h.ids, h.score, h.token_scores if token_scores else None) for h in nbest)
                    or found[i]
                )  # empty only for a model with non-finite logits
        else:
            for i, ids in zip(todo, self.translate_ids(seqs)):
                found[i] = (self._hypothesis(ids, None, None),)
        weights: list[Any] = [() if attention else None for _ in read]  # an empty output attends nowhere
        if attention:
            for i, w in zip(todo, self._attention(seqs, [found[i][0].ids for i in todo])):
                weights[i] = tuple(tuple(float(x) for x in row) for row in w)
        return [
            Translation(
                f.text if f.truncated else t,
                h[0].output,
                h[0].ids,
                w,
                f.truncated,
                h[0].score,
                h[0].token_scores,
                h,
                self.text.unknown_source(f.text),
            )
            for t, h, w, f in zip(texts, found, weights, fitted)
        ]

    def _hypothesis(
        self, ids: Sequence[int], score: float | None, token_scores: tuple[float, ...] | None
    ) -> Hypothesis:
        return Hypothesis(self.text.decode_target(list(ids)), tuple(ids), score, token_scores)

    def _attention(self, seqs: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]]) -> list[Any]:
        """alignment.attention_weights in batches of batch_size: (T, S) per sequence."""
        found = []
        for idx in batch_indices(seqs, self.batch_size, by_length=False):
            found += attention_weights(self.backend, [seqs[i] for i in idx], [outputs[i] for i in idx], self.options)
        return found

    def translate(
        self, texts: Sequence[str], truncate: bool = False, *, beam_size: int = 1, length_penalty: float = 1.0
    ) -> list[str]:
        """Texts -> the best translation of each (translations() returns n-best lists and scores)."""
        return [
            t.output
            for t in self.translations(texts, truncate=truncate, beam_size=beam_size, length_penalty=length_penalty)
        ]
