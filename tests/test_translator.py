"""Translator: the text pipeline around the greedy loop, option checks, and sharing between threads."""
from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest

from seq2seq_export.errors import ConfigError, VocabError
from seq2seq_export.manifest import load_bundle
from seq2seq_export.runtime import BACKENDS, Hypothesis, Translation, Translator

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WORDS = ["abc", "", "hello", "zzz", "a", "quixotic", "   ", "it's", "x-ray", "abcdefghijklmnopqrstuvwxyz" * 2]


def test_translate_detokenizes_translate_ids(lively_bundle):
    tr = Translator.from_bundle(lively_bundle)
    nonempty = [w for w in WORDS if w]
    ids = tr.translate_ids([tr.text.encode_source(w) for w in nonempty])
    assert tr.translate(nonempty) == [tr.text.tgt.decode(i) for i in ids]


def test_translations_carry_input_output_ids(lively_bundle):
    tr = Translator.from_bundle(lively_bundle, max_len=5)
    records = tr.translations(["hello", ""])
    assert records[1] == Translation("", "", (), hypotheses=(Hypothesis("", (), None),))
    rec = records[0]
    assert rec.input == "hello" and rec.ids == tuple(tr.translate_ids([tr.text.encode_source("hello")])[0])
    assert rec.output == tr.text.tgt.decode(rec.ids) and len(rec.ids) <= 5


def test_empty_inputs_give_empty_outputs_without_error(lively_bundle):
    tr = Translator.from_bundle(lively_bundle)
    out = tr.translations(["", "abc", ""])
    assert [o.output for o in out][::2] == ["", ""] and out[0].ids == out[2].ids == ()
    assert out[1].ids  # this model emits at least one token for "abc" (else the line above proves nothing)
    assert tr.translate([]) == []
    assert len(tr.translate_ids([[]])) == 1  # the model itself accepts a length-0 source (zero state)


def test_unknown_symbols_become_unk(lively_bundle):
    tr = Translator.from_bundle(lively_bundle)
    src = tr.text.src
    assert src.id_of("?") is None
    unk_ids = [src.id_of("a"), src.unk_id, src.id_of("c")]
    assert tr.translate_ids([tr.text.encode_source("a?c")]) == tr.translate_ids([unk_ids])


def test_max_len_caps_every_output(lively_bundle):
    bundle = load_bundle(lively_bundle)
    capped = Translator.from_bundle(bundle, max_len=3).translations(WORDS)
    full = Translator.from_bundle(bundle).translations(WORDS)
    assert all(len(c.ids) <= 3 for c in capped)
    assert all(f.ids[: len(c.ids)] == c.ids for c, f in zip(capped, full))  # a prefix of the uncapped result
    assert any(len(c.ids) == 3 for c in capped)


def test_bad_options_and_ids_are_typed_errors(tiny_bundle):
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        Translator.from_bundle(tiny_bundle, batch_size=0)
    with pytest.raises(ConfigError, match="max_len must be a positive integer"):
        Translator.from_bundle(tiny_bundle, max_len=0)
    tr = Translator.from_bundle(tiny_bundle)
    with pytest.raises(VocabError, match=r"input 1: source ids must lie in \[0, "):
        tr.translate_ids([[4], [len(tr.text.src)]])
    with pytest.raises(VocabError, match="source ids must lie"):
        tr.translate_ids([[-1]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_translator_shared_by_four_threads(backend, lively_bundle):
    tr = Translator.from_bundle(lively_bundle, backend, batch_size=8)
    rng = random.Random(1)
    alphabet = "abcdefghijklmnopqrstuvwxyz'"
    words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(160)]
    expected = tr.translate(words)
    orders = [random.Random(seed).sample(range(len(words)), len(words)) for seed in range(4)]

    def work(order: list[int]) -> list[str]:
        got = tr.translate([words[i] for i in order])
        return [got[order.index(i)] for i in range(len(words))]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, orders))
    assert all(r == expected for r in results)
    assert len(set(expected)) > 20


def test_thread_counts_have_a_ceiling(tiny_bundle):
    from seq2seq_export.constants import MAX_THREADS
    from seq2seq_export.runtime import open_backend

    bundle = load_bundle(tiny_bundle)
    with pytest.raises(ConfigError, match=f"threads must be at most {MAX_THREADS}, got 5000"):
        Translator.from_bundle(bundle, threads=5000)
    with pytest.raises(ConfigError, match=f"intra_op_num_threads must be a positive integer, at most {MAX_THREADS}, got"):
        open_backend(bundle, "onnx", intra_op_threads=MAX_THREADS + 1)
    assert Translator.from_bundle(bundle, threads=MAX_THREADS).translate(["abc"])  # the ceiling itself is allowed


@pytest.mark.parametrize("backend", BACKENDS)
def test_normalizing_bundle_reads_upper_mixed_and_decomposed_alike(backend, normalizing_bundle):
    tr = Translator.from_bundle(normalizing_bundle, backend)
    groups = [("hello", "HELLO", "Hello", "hElLo"), ("cafe\u0301", "CAF\u00e9", "caf\u00e9"), ("x-ray", "X-RAY")]
    for group in groups:
        records = tr.translations(list(group))
        assert len({r.output for r in records}) == 1 and records[0].ids, (group, records)
        assert [r.input for r in records] == list(group)  # the record keeps the input as given
    assert tr.translations(["HELLO"])[0].unknown == () and tr.translations(["H\u00c9LLO"])[0].unknown == ("\u00c9",)  # ASCII only
    assert tr.text.normalize == ("nfc", "lower") and load_bundle(normalizing_bundle).manifest["text"]["normalize"] == ["nfc", "lower"]


def test_bundle_without_normalize_leaves_case_alone(lively_bundle):
    tr = Translator.from_bundle(lively_bundle)
    upper, lower = tr.translations(["HELLO", "hello"])
    assert upper.unknown == ("H", "E", "L", "L", "O") and lower.unknown == ()
    assert tr.translate_ids([tr.text.encode_source("HELLO")]) == tr.translate_ids([[tr.text.src.unk_id] * 5])
    assert "normalize" not in load_bundle(lively_bundle).manifest["text"]


def test_unknown_lists_what_the_model_read_as_unk(lively_bundle):
    records = Translator.from_bundle(lively_bundle).translations(["a?c", "", "\u0416\u0416x", "abc"])
    assert [r.unknown for r in records] == [("?",), (), ("\u0416", "\u0416"), ()]


def test_truncated_input_is_the_normalized_head(normalizing_bundle):
    tr = Translator.from_bundle(normalizing_bundle, max_src_tokens=3)
    (record,) = tr.translations(["HELLO"], truncate=True)
    assert record.truncated and record.input == "hel"


@pytest.mark.parametrize("backend", BACKENDS)
def test_cmudict_bundle_reads_upper_mixed_and_decomposed_alike(backend, request):
    """The driver tests' cmudict-shaped bundle (normalize nfc, lower), on every Python backend: each
    group of variants gives one output, the one s2s-translate (onnx) gives and the drivers must give."""
    from js_drivers import SAME_READING, assert_same_readings, build_case

    case = build_case("cmudict", request)
    inputs = [w for group in SAME_READING for w in group]
    outputs = Translator.from_bundle(case.bundle, backend).translate(inputs)
    assert_same_readings("cmudict", inputs, outputs)
    assert outputs == [case.expected[case.inputs.index(w)] for w in inputs]
    assert len(set(outputs)) >= 4  # the groups do not all read alike: the equalities mean something
