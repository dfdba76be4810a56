"""The decoding core (runtime/core.py): decode options, padding, batching, carrying tensors between
raw graph calls, row selection, and the greedy loop over it against a one-row-at-a-time oracle."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
from conftest import LIVELY_SRC

from seq2seq_export.errors import ConfigError
from seq2seq_export.iospec import (
    BATCH,
    NEXT_TOKENS,
    PREV_TOKENS,
    SRC_LENGTHS,
    SRC_TOKENS,
)
from seq2seq_export.manifest import load_bundle
from seq2seq_export.runtime import (
    BACKENDS,
    Carry,
    DecodeOptions,
    batch_indices,
    decode_in_batches,
    greedy_decode,
    log_softmax,
    open_backend,
    pad_batch,
    teacher_forced_steps,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sources(bundle, n: int = 40, seed: int = 3) -> list[list[int]]:
    rng = random.Random(seed)
    words = ["".join(rng.choice(LIVELY_SRC) for _ in range(rng.choice((0, 1, 2, 5, 9, 17)))) for _ in range(n)]
    return [bundle.text.encode_source(w) for w in words]


def oracle_greedy(backend, seq: list[int], opts: DecodeOptions) -> list[int]:
    """One sequence alone through raw graph calls until <eos> or max_len: what the batched loop must equal."""
    carry = Carry.of(backend)
    src, lengths = np.array([seq or [opts.pad_id]], dtype=np.int64), np.array([len(seq)], dtype=np.int64)
    carried = carry.first(backend.run_graph("encoder", {SRC_TOKENS: src, SRC_LENGTHS: lengths}))
    prev, out = np.array([opts.start_id], dtype=np.int64), []
    for _ in range(opts.max_len):
        step = backend.run_graph("decoder_step", carry.feeds(prev, carried))
        prev, carried = step[NEXT_TOKENS], carry.stepped(carried, step)
        if int(prev[0]) == opts.end_id:
            break
        out.append(int(prev[0]))
    return out


@pytest.mark.parametrize("which", ["lively_bundle", "attention_bundle"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_batched_greedy_equals_one_row_at_a_time(which, backend, request):
    """Length-sorted batches, rows leaving at <eos>, the fast encode/step/select path: the same
    tokens as each sequence decoded alone through raw graph calls."""
    bundle = load_bundle(request.getfixturevalue(which))
    b, opts, seqs = open_backend(bundle, backend), DecodeOptions.from_bundle(bundle), sources(bundle)
    got = decode_in_batches(b, seqs, opts, batch_size=7, strategy=greedy_decode)
    assert got == [oracle_greedy(b, s, opts) for s in seqs]
    assert len({len(g) for g in got}) > 3 and len({tuple(g) for g in got}) > 20  # rows end at many steps


@pytest.mark.parametrize("backend", BACKENDS + ("onnx-io-binding",))
def test_select_keeps_any_rows_in_any_order_with_repeats(backend, attention_bundle):
    """What beam search needs: rows picked out of order and repeated step exactly like the originals
    (the attention bundle carries state (L, B, H) and memory (B, S, De), (B, S))."""
    bundle = load_bundle(attention_bundle)
    b = open_backend(bundle, "onnx", io_binding=True) if backend == "onnx-io-binding" else open_backend(bundle, backend)
    seqs = sources(bundle, n=4)
    prev = np.array([5, 6, 7, 8], dtype=np.int64)
    full_next, full = b.step(prev, b.encode(*pad_batch(seqs, bundle.text.src.pad_id)))
    rows = np.array([2, 0, 2, 3], dtype=np.int64)
    picked_next, _ = b.step(full_next[rows], b.select(full, rows))
    want_next, _ = b.step(full_next, full)
    np.testing.assert_array_equal(picked_next, want_next[rows])


def test_carry_follows_the_manifest_entries(attention_bundle):
    bundle = load_bundle(attention_bundle)
    carry = Carry.of(open_backend(bundle, "onnx"))
    entries, n = bundle.state + bundle.memory, len(bundle.state)
    assert carry.encoder_outputs == [e["encoder_output"] for e in entries] and n == 2 and len(bundle.memory) == 3
    carried = carry.first({e["encoder_output"]: f"enc {e['encoder_output']}" for e in entries})
    assert carry.feeds("prev", carried) == {
        PREV_TOKENS: "prev",
        **{e["decoder_input"]: f"enc {e['encoder_output']}" for e in entries},
    }
    stepped = carry.stepped(carried, {e["decoder_output"]: f"new {e['decoder_output']}" for e in bundle.state})
    assert stepped == tuple(f"new {e['decoder_output']}" for e in bundle.state) + carried[n:]
    block = np.arange(6).reshape(2, 3)
    inputs = {t.name: t for t in bundle.graphs["decoder_step"].inputs}
    for x, e in zip(carry.select(tuple(block for _ in entries), np.array([1, 1, 0])), entries):
        axis = inputs[e["decoder_input"]].shape.index(BATCH)  # 1 for states (L, B, H), 0 for memory
        np.testing.assert_array_equal(x, np.take(block, [1, 1, 0], axis=axis))


def test_teacher_forced_steps_follow_the_given_tokens(lively_bundle):
    bundle = load_bundle(lively_bundle)
    b, opts, seqs = open_backend(bundle, "onnx"), DecodeOptions.from_bundle(bundle), sources(bundle, n=5)
    tokens = greedy_decode(b, seqs, opts)
    steps = max(map(len, tokens))
    prev = np.array([[opts.start_id] + (t + [opts.end_id] * steps)[: steps - 1] for t in tokens], dtype=np.int64)
    calls = list(teacher_forced_steps(b, seqs, prev, pad_id=opts.pad_id))
    assert [t for t, _, _ in calls] == [None, *range(steps)]
    np.testing.assert_array_equal(calls[0][1][SRC_TOKENS], pad_batch(seqs, opts.pad_id)[0])
    for t, feeds, out in calls[1:]:
        np.testing.assert_array_equal(feeds[PREV_TOKENS], prev[:, t])
        for r, toks in enumerate(tokens):  # fed its own decode, each row emits it again
            if t < len(toks):
                assert out[NEXT_TOKENS][r] == toks[t]


def test_batch_indices_by_length_or_in_input_order():
    seqs = [[1, 1, 1], [1], [1, 1], [1], []]
    assert batch_indices(seqs, 2) == [[4, 1], [3, 2], [0]]  # stable: the two length-1 rows keep their order
    assert batch_indices(seqs, 2, by_length=False) == [[0, 1], [2, 3], [4]]
    assert batch_indices([], 3) == []
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
            batch_indices(seqs, bad)


def test_decode_in_batches_runs_any_strategy_and_keeps_input_order():
    seen = []

    def lengths(backend, seqs, opts):  # a stand-in strategy: each sequence's length, and the batches it saw
        seen.append([len(s) for s in seqs])
        return [[len(s), opts.max_len] for s in seqs]

    seqs = [[1, 1, 1], [1], [1, 1], []]
    out = decode_in_batches(None, seqs, DecodeOptions(0, 1, 2, 9), batch_size=3, strategy=lengths)
    assert out == [[3, 9], [1, 9], [2, 9], [0, 9]] and seen == [[0, 1, 2], [3]]


def test_pad_batch_right_pads_and_keeps_one_column():
    src, lengths = pad_batch([[5, 6], [], [7]], pad_id=0)
    np.testing.assert_array_equal(src, [[5, 6], [0, 0], [7, 0]])
    np.testing.assert_array_equal(lengths, [2, 0, 1])
    assert pad_batch([[], []], pad_id=3)[0].tolist() == [[3], [3]]


def test_decode_options_from_the_bundle_and_from_the_vocabularies(lively_bundle):
    bundle = load_bundle(lively_bundle)
    opts = DecodeOptions.from_bundle(bundle)
    dec = bundle.manifest["decoding"]
    assert (opts.pad_id, opts.start_id, opts.end_id, opts.max_len) == (
        bundle.text.src.pad_id,
        dec["start_id"],
        dec["end_id"],
        20,
    )
    assert (opts.beam_size, opts.num_hypotheses, opts.length_penalty) == (1, 1, 1.0)
    assert DecodeOptions.from_bundle(bundle, max_len=3, beam_size=4).max_len == 3
    assert DecodeOptions.from_text(bundle.text, 20) == opts
    with pytest.raises(AttributeError):
        opts.max_len = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"max_len": 0}, "max_len must lie in"),
        ({"max_len": 100_000}, "max_len must lie in"),
        ({"max_len": 2.0}, "max_len must be an integer"),
        ({"start_id": -1}, "ids must be >= 0"),
        ({"end_id": -2}, "end_id may be -1"),
        ({"pad_id": True}, "pad_id must be an integer"),
        ({"beam_size": 0}, "beam_size must lie in"),
        ({"beam_size": 5000}, "beam_size must lie in"),
        ({"beam_size": 2, "num_hypotheses": 3}, r"num_hypotheses must lie in \[1, beam_size 2\]"),
        ({"num_hypotheses": 0}, "num_hypotheses must lie in"),
        ({"length_penalty": -0.5}, "length_penalty must be a finite number"),
        ({"length_penalty": float("nan")}, "length_penalty must be a finite number"),
        ({"length_penalty": float("inf")}, "length_penalty must be a finite number"),
        ({"length_penalty": 11}, "length_penalty must be a finite number"),
        ({"length_penalty": True}, "length_penalty must be a finite number"),
    ],
)
def test_decode_options_reject_bad_values(fields, message):
    with pytest.raises(ConfigError, match=message):
        DecodeOptions(**{"pad_id": 0, "start_id": 1, "end_id": 2, "max_len": 10, **fields})


def test_greedy_refuses_a_beam(lively_bundle):
    bundle = load_bundle(lively_bundle)
    with pytest.raises(ConfigError, match="greedy search keeps one hypothesis"):
        greedy_decode(open_backend(bundle, "onnx"), [[4, 5]], DecodeOptions.from_bundle(bundle, beam_size=2))


def test_log_softmax_rows_with_inf_or_nan_are_all_minus_inf_without_a_warning():
    logits = np.array(
        [[1.0, 2.0, 3.0], [np.inf, 0.0, 1.0], [np.nan, 0.0, 1.0], [-np.inf] * 3, [0.0, -np.inf, 5.0]], np.float32
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value" warnings would reach the user's stderr
        logp = log_softmax(logits)
    assert logp.dtype == np.float64 and (logp[1:4] == -np.inf).all()
    x = logits[[0, 4]].astype(np.float64)
    want = x - x.max(axis=1, keepdims=True)
    want -= np.log(np.exp(want).sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(logp[[0, 4]], want)
