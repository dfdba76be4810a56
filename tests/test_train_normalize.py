"""Source normalization in training: the vocabulary and the checkpoint hold the sources as the model reads them."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from seq2seq_export.checkpoint import load_checkpoint
from seq2seq_export.cli import train_cmd
from seq2seq_export.train import load_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--emb-dim", "8", "--hidden-dim", "16", "--max-steps", "1", "--device", "cpu", "--quiet"]


def _tsv(tmp_path):
    words = ["Apple", "BANANA", "cherry", "Cafe\u0301", "caf\u00e9", "DATE", "elder", "Fig"] * 40
    path = tmp_path / "words.tsv"
    path.write_text("".join(f"{w}{i}\t{' '.join(w.lower())}\n" for i, w in enumerate(words)), encoding="utf-8")
    return path


def test_training_records_the_steps_and_builds_the_vocabulary_from_normalized_sources(tmp_path):
    out = tmp_path / "run"
    preset = tmp_path / "letters.toml"  # character-level source: one token per letter
    preset.write_text(f'dataset = "tsv:{_tsv(tmp_path).as_posix()}"\nsrc_tokenizer = "char"\n', encoding="utf-8")
    args = ["--preset", str(preset), "--normalize", "nfc,lower"]
    result = CliRunner().invoke(train_cmd, [*args, *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = load_checkpoint(out / "checkpoint.pt").text
    assert text.normalize == ("nfc", "lower")
    letters = set(text.src.tokens[4:])
    assert {"a", "b", "\u00e9"} <= letters and not letters & set("ABCDEFGHIJKLMNOPQRSTUVWXYZ\u0301")


def test_presets_and_bad_steps():
    assert load_config("cmudict").normalize_steps == load_config("cmudict-attention").normalize_steps == ("lower",)
    assert load_config("toy").normalize_steps == () and load_config("tsv-attention").normalize_steps == ()
    result = CliRunner().invoke(train_cmd, ["--preset", "toy", "--normalize", "nfc,upper"])
    assert result.exit_code == 2 and result.stderr == "Error: train config: unknown normalize step 'upper': use nfc, lower\n"
