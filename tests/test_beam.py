"""Beam search (runtime/beam.py) and scores: beam 1 is greedy, scores are what teacher forcing gives,
a beam as wide as the search space finds the best sequence, n-best lists, batch invariance, the
stopping rule, and bad options."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from conftest import ATTENTION_LSTM_BI, LIVELY_SRC, VARIANTS, lively_checkpoint
from test_runtime import NO_TORCH

from seq2seq_export.checkpoint import load_checkpoint
from seq2seq_export.errors import ConfigError
from seq2seq_export.iospec import LOGITS
from seq2seq_export.manifest import load_bundle
from seq2seq_export.runtime import (
    BACKENDS,
    DecodeOptions,
    Translator,
    beam_search,
    decode_in_batches,
    greedy_decode,
    open_backend,
    teacher_forced_steps,
)
from seq2seq_export.runtime.beam import SORT_COLUMNS, SORT_ELEMENTS, SORT_ROW, top_k
from seq2seq_export.runtime.eager import EagerBackend
from seq2seq_export.vocab import TextPipeline, Vocab

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Exported variants every backend is checked on: GRU and LSTM, each attention kind, bidirectional encoders.
EXPORTED = [
    {"rnn": "gru", "attention": "none"},
    {"rnn": "gru", "bidirectional_encoder": True, "attention": "bahdanau"},
    {"rnn": "gru", "num_layers": 2, "attention": "luong"},
    {"rnn": "lstm", "bidirectional_encoder": True, "attention": "none"},
    {"rnn": "lstm", "attention": "luong"},
    ATTENTION_LSTM_BI,
]
IDS = ["-".join(str(v) for v in variant.values()) for variant in VARIANTS]


def words(text: TextPipeline, n: int = 40, seed: int = 3) -> list[str]:
    """Mixed lengths, some empty, over the source characters."""
    rng = random.Random(seed)
    alphabet = [t for t in LIVELY_SRC if text.src.id_of(t) is not None]
    return ["".join(rng.choice(alphabet) for _ in range(rng.choice((0, 1, 2, 5, 9, 17)))) for _ in range(n)]


def sources(text: TextPipeline, n: int = 40, seed: int = 3) -> list[list[int]]:
    return [text.encode_source(w) for w in words(text, n, seed)]


def forced_log_probs(backend, seqs, forced: list[list[int]], opts: DecodeOptions) -> list[list[float]]:
    """Teacher forcing: sequence i fed <sos> + forced[i][:-1]; the log-prob (from the step's logits
    output, softmax then log in float64) of each token of forced[i] at its step."""
    steps = max(map(len, forced))
    prev = np.full((len(forced), steps), opts.start_id, dtype=np.int64)
    for i, f in enumerate(forced):
        prev[i, 1 : len(f)] = f[:-1]
    logps = []
    for t, _, out in teacher_forced_steps(backend, seqs, prev, pad_id=opts.pad_id):
        if t is not None:
            x = out[LOGITS].astype(np.float64)
            p = np.exp(x - x.max(axis=1, keepdims=True))
            logps.append(np.log(p / p.sum(axis=1, keepdims=True)))
    return [[float(logps[t][i, tok]) for t, tok in enumerate(f)] for i, f in enumerate(forced)]


def ended(h) -> bool:
    return len(h.token_scores) == len(h.ids) + 1  # ended with <eos>: its log-prob is the last token score


def assert_teacher_forced(backend, seqs, nbests, opts: DecodeOptions, atol: float = 1e-4) -> None:
    """Every hypothesis' token scores and score equal teacher forcing its tokens (and <eos> if it ended)."""
    flat = [(s, h) for s, nbest in zip(seqs, nbests) for h in nbest]
    forced = [list(h.ids) + [opts.end_id] * ended(h) for _, h in flat]
    for (_, h), f, lps in zip(flat, forced, forced_log_probs(backend, [s for s, _ in flat], forced, opts)):
        assert len(h.token_scores) == len(f) and (ended(h) or len(f) == opts.max_len)
        np.testing.assert_allclose(h.token_scores, lps, rtol=0, atol=atol)
        assert h.score == sum(h.token_scores) / len(f) ** opts.length_penalty  # the definition, exactly
        assert abs(h.score - sum(lps) / len(f) ** opts.length_penalty) <= atol


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_beam_1_is_greedy_on_every_variant(variant, tmp_path):
    """The eager model of every variant of the matrix: beam 1 picks greedy's tokens and ends where it ends."""
    ckpt = load_checkpoint(lively_checkpoint(tmp_path / "c.pt", **variant))
    backend = EagerBackend(ckpt.build_model())
    opts, seqs = DecodeOptions.from_text(ckpt.text, 12), sources(ckpt.text)
    greedy = greedy_decode(backend, seqs, opts)
    beam = beam_search(backend, seqs, opts)
    assert [[list(h.ids) for h in nbest] for nbest in beam] == [[g] for g in greedy]
    assert len({len(g) for g in greedy}) > 1 and len({tuple(g) for g in greedy}) > 5  # not one output for all
    assert_teacher_forced(backend, seqs, beam, opts)


@pytest.mark.parametrize("variant", EXPORTED, ids=lambda v: "-".join(str(x) for x in v.values()))
@pytest.mark.parametrize("backend", BACKENDS + ("onnx-io-binding",))
def test_beam_1_is_greedy_and_scores_are_teacher_forced_on_every_backend(variant, backend, variant_bundle):
    bundle = load_bundle(variant_bundle(**variant))
    b = open_backend(bundle, "onnx", io_binding=True) if backend == "onnx-io-binding" else open_backend(bundle, backend)
    seqs = sources(bundle.text)
    opts = DecodeOptions.from_bundle(bundle)
    beam = decode_in_batches(b, seqs, opts, batch_size=16, strategy=beam_search)
    assert [[list(h.ids) for h in nbest] for nbest in beam] == [[g] for g in greedy_decode(b, seqs, opts)]
    assert_teacher_forced(b, seqs, beam, opts)
    wide = replace(opts, beam_size=4, num_hypotheses=4, length_penalty=0.6)
    assert_teacher_forced(b, seqs, decode_in_batches(b, seqs, wide, batch_size=16, strategy=beam_search), wide)


@pytest.fixture(scope="module")
def small_space(tmp_path_factory):
    """An attention model over a 6-id target vocabulary (4 specials + A, B): every sequence of up to
    4 tokens can be enumerated (781 of them)."""
    text = TextPipeline(Vocab.build(["abcd"], "char"), Vocab.build(["A B"], "space"))
    path = lively_checkpoint(tmp_path_factory.mktemp("small") / "c.pt", text=text, attention="bahdanau", scale=2.0)
    ckpt = load_checkpoint(path)
    return EagerBackend(ckpt.build_model()), text


@pytest.mark.parametrize("penalty", [0.0, 1.0, 0.5])
def test_a_beam_as_wide_as_the_space_finds_the_best_sequence(small_space, penalty):
    backend, text = small_space
    max_len, vocab = 4, len(text.tgt)
    wide = DecodeOptions.from_text(
        text, max_len, beam_size=vocab**max_len, num_hypotheses=vocab**max_len, length_penalty=penalty
    )
    others = [t for t in range(vocab) if t != wide.end_id]
    every = [list(p) + [wide.end_id] for n in range(max_len) for p in itertools.product(others, repeat=n)]
    every += [list(p) for p in itertools.product(others, repeat=max_len)]  # cut at max_len, no <eos>
    for src in sources(text, n=3, seed=5):
        exhaustive = {}
        for f, lps in zip(every, forced_log_probs(backend, [src] * len(every), every, wide)):
            exhaustive[tuple(t for t in f if t != wide.end_id)] = sum(lps) / len(f) ** penalty
        found = beam_search(backend, [src], wide)[0]
        assert len(found) == len(every) == 781
        best = max(exhaustive, key=exhaustive.get)
        assert found[0].ids == best
        assert {h.ids for h in found} == set(exhaustive)  # every sequence, each once
        assert max(abs(h.score - exhaustive[h.ids]) for h in found) < 1e-5  # float32 steps of 1 vs 781 rows
        assert all(a.score >= b.score for a, b in itertools.pairwise(found))
        greedy = beam_search(backend, [src], replace(wide, beam_size=1, num_hypotheses=1))[0][0]
        assert greedy.score <= found[0].score


def test_n_best_lists_are_sorted_distinct_and_led_by_the_output(lively_bundle):
    tr = Translator.from_bundle(lively_bundle, max_len=12)
    words = ["abc", "quixotic", "x", "hello-world", "it's", ""]
    for rec in tr.translations(words, beam_size=8, num_hypotheses=8, token_scores=True):
        hyps = rec.hypotheses
        assert (rec.output, rec.ids, rec.score, rec.token_scores) == (
            hyps[0].output,
            hyps[0].ids,
            hyps[0].score,
            hyps[0].token_scores,
        )
        if not rec.input:
            assert rec.score is None and len(hyps) == 1
            continue
        assert len(hyps) == 8 and len({h.ids for h in hyps}) == 8
        assert all(a.score >= b.score for a, b in itertools.pairwise(hyps))
        assert all(h.output == tr.text.decode_target(h.ids) for h in hyps)
    assert tr.translate(words, beam_size=8) == [r.output for r in tr.translations(words, beam_size=8)]


def test_beam_search_can_beat_greedy(lively_bundle):
    """Not vacuous: on the lively model a beam finds better-scoring outputs than greedy for many inputs."""
    tr = Translator.from_bundle(lively_bundle, max_len=12)
    texts = [w for w in words(tr.text, n=60) if w]
    greedy = tr.translations(texts, scores=True)
    beam = tr.translations(texts, beam_size=5)
    assert sum(b.score > g.score + 1e-9 for b, g in zip(beam, greedy)) >= 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_greedy_scores_are_teacher_forced(backend, attention_bundle):
    bundle = load_bundle(attention_bundle)
    tr = Translator.from_bundle(bundle, backend)
    texts = words(tr.text)
    plain = tr.translations(texts)
    scored = tr.translations(texts, scores=True)
    detailed = tr.translations(texts, token_scores=True)
    assert [r.ids for r in scored] == [r.ids for r in plain] == [r.ids for r in detailed]
    assert all(r.score is None and r.token_scores is None for r in plain)
    assert all(r.token_scores is None for r in scored) and [r.score for r in scored] == [r.score for r in detailed]
    seqs = [tr.text.encode_source(w) for w in texts]
    todo = [i for i, w in enumerate(texts) if w]
    nbests = tr.scored_ids([seqs[i] for i in todo], tr.options)
    assert [n[0].token_scores for n in nbests] == [detailed[i].token_scores for i in todo]
    assert_teacher_forced(tr.backend, [seqs[i] for i in todo], nbests, tr.options)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_size_never_changes_a_beam_result(backend, attention_bundle):
    bundle = load_bundle(attention_bundle)
    b, seqs = open_backend(bundle, backend), sources(bundle.text, n=70, seed=11)
    opts = DecodeOptions.from_bundle(bundle, beam_size=5, num_hypotheses=5, length_penalty=1.0)
    by_size = {n: decode_in_batches(b, seqs, opts, batch_size=n, strategy=beam_search) for n in (1, 7, 64)}
    ids = {n: [[h.ids for h in nbest] for nbest in found] for n, found in by_size.items()}
    assert ids[1] == ids[7] == ids[64]
    for n in (7, 64):
        diff = max(abs(a.score - c.score) for x, y in zip(by_size[1], by_size[n]) for a, c in zip(x, y))
        assert diff < 1e-5, f"batch {n}: scores differ from batch 1 by {diff}"


class CountingBackend:
    """A real backend that counts its decoder steps."""

    def __init__(self, backend):
        self.backend, self.steps = backend, 0

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def step_logits(self, prev, carried):
        self.steps += 1
        return self.backend.step_logits(prev, carried)


@pytest.mark.parametrize("penalty", [0.0, 0.5, 1.0])
def test_stopping_early_never_drops_a_better_hypothesis(penalty, lively_bundle):
    """Each sequence stops once no live hypothesis can beat its worst kept one: the same n-best lists
    as searching on to max_len, in fewer steps."""
    bundle = load_bundle(lively_bundle)
    b = CountingBackend(open_backend(bundle, "onnx"))
    seqs = sources(bundle.text, n=60, seed=7)
    opts = DecodeOptions.from_bundle(bundle, beam_size=3, num_hypotheses=3, length_penalty=penalty)
    early = [beam_search(b, [s], opts) for s in seqs]
    early_steps, b.steps = b.steps, 0
    full = [beam_search(b, [s], opts, stop_early=False) for s in seqs]
    assert early == full
    assert early_steps < b.steps  # the rule did stop some searches early


class BigramBackend:
    """A tiny hand-made model for the search alone: the next token's probabilities depend on the
    previous token only (probs[prev]); nothing else is carried."""

    def __init__(self, probs: dict[int, dict[int, float]], vocab: int):
        table = np.full((vocab, vocab), 1e-6)
        for prev, row in probs.items():
            table[prev, list(row)] = list(row.values())
        self.logits = np.log(table / table.sum(axis=1, keepdims=True)).astype(np.float32)

    def encode(self, src, lengths):
        return np.zeros(len(src))

    def step_logits(self, prev, carried):
        return self.logits[prev], carried

    def select(self, carried, rows):
        return carried[rows]


def test_stopping_bounds_by_max_len_not_by_the_next_step():
    """A live hypothesis whose next tokens are nearly certain can overtake a finished one under a length
    penalty, even after ending at the next step would not: the bound must divide by max_len.

    <sos> -> A .6 | B .4;  A -> <eos>;  B -> D;  D -> <eos> .9 | D2 .1;  D2 -> D3;  D3 -> D3.
    With beam 2 after step 3: kept "A" (-0.26) and "B D" (-0.34); live "B D D2" (sum -3.22) would
    score -0.81 ending at step 4, but -0.32 cut at max_len 10, which beats "B D".
    """
    sos, eos, a, b, d, d2, d3 = 2, 3, 4, 5, 6, 7, 8
    model = BigramBackend(
        {sos: {a: 0.6, b: 0.4}, a: {eos: 1}, b: {d: 1}, d: {eos: 0.9, d2: 0.1}, d2: {d3: 1}, d3: {d3: 1}}, vocab=9
    )
    opts = DecodeOptions(
        pad_id=0, start_id=sos, end_id=eos, max_len=10, beam_size=2, num_hypotheses=2, length_penalty=1.0
    )
    found = beam_search(model, [[4]], opts)[0]
    assert [h.ids for h in found] == [(a,), (b, d, d2) + (d3,) * 7]
    assert found[1].score > -0.33 and len(found[1].token_scores) == 10  # cut at max_len: no <eos>
    assert found == beam_search(model, [[4]], opts, stop_early=False)[0]
    assert [h.ids for h in beam_search(model, [[4]], replace(opts, beam_size=1, num_hypotheses=1))[0]] == [(a,)]


def test_a_row_of_non_finite_logits_ranks_none_of_its_tokens():
    sos, eos, a, b = 2, 3, 4, 5
    model = BigramBackend({sos: {a: 0.6, b: 0.4}, a: {eos: 1}, b: {eos: 1}}, vocab=6)
    model.logits[a, b] = np.nan  # after A, every log-prob is NaN: no continuation of A is ranked
    opts = DecodeOptions(pad_id=0, start_id=sos, end_id=eos, max_len=5, beam_size=2, num_hypotheses=2)
    found = beam_search(model, [[4]], opts)[0]
    assert (
        found[0].ids == (b,) and len(found) == 2 and all(h.ids[0] == b for h in found)
    )  # A, the likelier start, is gone
    model.logits[sos] = np.inf  # nothing can be ranked at all: an empty n-best list
    assert beam_search(model, [[4]], opts) == [[]]


@pytest.mark.parametrize("width", [9, SORT_COLUMNS + 300])  # rows sorted whole, and rows partitioned first
def test_top_k_breaks_ties_by_column(width):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(30, width)).astype(np.float64)  # many ties
    x[rng.random(x.shape) < 0.2] = -np.inf
    for k in (1, 2, 3, 7, 9, 12, 40, width):
        want = np.array([sorted(range(width), key=lambda j: (-row[j], j))[:k] for row in x])
        np.testing.assert_array_equal(top_k(x, k), want)
        for row, expected in zip(x, want):  # one row at a time: wider than SORT_ROW, partitioned alone
            np.testing.assert_array_equal(top_k(row[None], k), expected[None])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"beam_size": 0}, r"beam_size must lie in \[1, 4096\], got 0"),
        ({"beam_size": 2, "num_hypotheses": 3}, r"num_hypotheses must lie in \[1, beam_size 2\], got 3"),
        ({"num_hypotheses": 2}, r"num_hypotheses must lie in \[1, beam_size 1\], got 2"),
        ({"length_penalty": -1.0}, r"length_penalty must be a finite number in \[0, 10\], got -1.0"),
        ({"length_penalty": float("nan")}, "length_penalty must be a finite number"),
        ({"length_penalty": float("inf")}, "length_penalty must be a finite number"),
        ({"beam_size": 2.5}, "beam_size must be an integer"),
    ],
)
def test_bad_search_options_are_one_line_config_errors(options, message, tiny_bundle):
    tr = Translator.from_bundle(tiny_bundle)
    with pytest.raises(ConfigError, match=message) as err:
        tr.translations(["abc"], **options)
    assert "\n" not in str(err.value)
    if "num_hypotheses" not in options:
        with pytest.raises(ConfigError, match=message):
            tr.translate(["abc"], **options)


def test_beam_search_on_the_onnx_path_works_without_torch(attention_bundle, tmp_path):
    (tmp_path / "sitecustomize.py").write_text(NO_TORCH)
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    texts = ["abc", "hello", "", "x-ray"]
    tr = Translator.from_bundle(attention_bundle)
    expected = [
        [[h.output, h.score] for h in r.hypotheses] for r in tr.translations(texts, beam_size=4, num_hypotheses=4)
    ]
    script = (
        "import json, sys; from seq2seq_export.runtime import Translator; "
        "tr = Translator.from_bundle(sys.argv[1]); "
        "print(json.dumps([[[h.output, h.score] for h in r.hypotheses] "
        "for r in tr.translations(json.loads(sys.argv[2]), beam_size=4, num_hypotheses=4)]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(attention_bundle), json.dumps(texts)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == expected


@pytest.mark.parametrize("width", [SORT_COLUMNS + 1, 75, SORT_ROW + 1, 300])
def test_top_k_partition_path_keeps_column_order_with_and_without_ties(width):
    """Rows wider than SORT_COLUMNS are partitioned: distinct values, ties inside the top k only, ties
    across the cut, and -inf rows all give the sorted answer (largest first, equal values by column)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((100, width))
    x[5:10, :3] = x[5:10, 3:4]  # equal values inside the top k of these rows (after the next line)
    x[5:10, :4] += 10.0
    x[10:15, 7] = x[10:15, 2] = 50.0  # a tie across the cut at k 1
    x[15:20, width // 2 :] = -np.inf
    x[20] = -np.inf
    for k in (2, 3, 5, 9, width - 1):
        want = np.array([sorted(range(width), key=lambda j: (-row[j], j))[:k] for row in x])
        np.testing.assert_array_equal(top_k(x, k), want)
        assert x[30:].size > SORT_ELEMENTS
        np.testing.assert_array_equal(top_k(x[30:], k), want[30:])  # distinct values only: the fast path
        np.testing.assert_array_equal(top_k(x[:5], k), want[:5])  # few elements: sorted whole
        for i in range(25):  # one row at a time: sorted whole up to SORT_ROW wide, else partitioned
            np.testing.assert_array_equal(top_k(x[i : i + 1], k), want[i : i + 1])
