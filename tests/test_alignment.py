"""Attention weights of finished decodes (runtime/alignment.py, `s2s-translate --json --attention-out`):
one row per output token over the source tokens, the same on every backend and in any batch."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import LIVELY_SRC

from seq2seq_export.cli import translate_cmd
from seq2seq_export.errors import ConfigError
from seq2seq_export.runtime import BACKENDS, Translator
from seq2seq_export.runtime.alignment import attention_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def words(n: int = 40, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(LIVELY_SRC) for _ in range(rng.choice((0, 1, 3, 6, 13)))) for _ in range(n)]


def test_one_row_per_output_token_over_the_source_tokens(attention_bundle):
    tr = Translator.from_bundle(attention_bundle, batch_size=7)
    records = tr.translations(words(), attention=True)
    assert [r.ids for r in records] == [r.ids for r in tr.translations(words())]  # same decode as without weights
    assert sum(len(r.ids) for r in records) > 40
    for r in records:
        if r.ids:
            w = np.array(r.attention, dtype=np.float64)
            assert w.shape == (len(r.ids), len(tr.text.encode_source(r.input)))
            np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
            assert (w >= 0).all()
        else:
            assert r.attention == ()


def test_weights_agree_across_backends_and_batches(attention_bundle):
    texts = [w for w in words() if w]
    by_backend = {
        b: Translator.from_bundle(attention_bundle, b, batch_size=16).translations(texts, attention=True)
        for b in BACKENDS
    }
    for b in ("onnx", "torchscript"):
        for got, want in zip(by_backend[b], by_backend["eager"]):
            assert got.ids == want.ids
            np.testing.assert_allclose(np.array(got.attention), np.array(want.attention), atol=1e-5, err_msg=b)
    tr = Translator.from_bundle(attention_bundle, batch_size=16)
    seqs = [tr.text.encode_source(t) for t in texts]
    outs = [list(r.ids) for r in by_backend["onnx"]]
    together = attention_weights(tr.backend, seqs, outs, tr.options)
    for i in (0, 5, len(seqs) - 1):
        alone = attention_weights(tr.backend, seqs[i : i + 1], outs[i : i + 1], tr.options)[0]
        np.testing.assert_allclose(alone, together[i], atol=1e-6)


def test_model_without_attention_is_a_config_error(lively_bundle):
    with pytest.raises(ConfigError, match="attention weights need a model with attention"):
        Translator.from_bundle(lively_bundle).translations(["abc"], attention=True)
    result = CliRunner().invoke(translate_cmd, ["--bundle", str(lively_bundle), "--json", "--attention-out", "abc"])
    assert result.exit_code == 2 and result.stdout == ""
    assert "attention weights need a model with attention" in result.stderr and len(result.stderr.splitlines()) == 1


def test_cli_writes_attention_into_each_json_line(attention_bundle):
    texts = ["abc", "", "hello"]
    result = CliRunner().invoke(translate_cmd, ["--bundle", str(attention_bundle), "--json", "--attention-out", *texts])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected = Translator.from_bundle(attention_bundle).translations(texts, attention=True)
    assert [line["ids"] for line in lines] == [list(r.ids) for r in expected]
    assert lines[1]["attention"] == [] and lines[0]["attention"] and lines[2]["attention"]
    for line, r in zip(lines, expected):
        if r.ids:
            np.testing.assert_allclose(np.array(line["attention"]), np.array(r.attention), atol=1e-6)
    usage = CliRunner().invoke(translate_cmd, ["--bundle", str(attention_bundle), "--attention-out", "abc"])
    assert usage.exit_code == 2 and "--attention-out needs --json" in usage.stderr
