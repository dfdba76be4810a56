"""s2s-train: a tiny real run, and bad input as one line on stderr with exit 2 (no traceback)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from seq2seq_export.cli import main, train_cmd

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--preset", "toy", "--emb-dim", "8", "--hidden-dim", "16", "--batch-size", "512", "--max-steps", "5",
        "--device", "cpu", "--quiet"]


def test_tiny_toy_run_prints_metrics_and_writes_checkpoints(tmp_path):
    result = CliRunner().invoke(train_cmd, [*TINY, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"checkpoint: {tmp_path / 'checkpoint.pt'}"
    assert lines[1].startswith("trained 0.125 epochs, 5 steps") and "(stopped by steps)" in lines[1]
    assert lines[3].startswith("test:  exact match ") and lines[3].endswith("(1000 pairs)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "last.pt", "metrics.json"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == 5 and metrics["test"]["count"] == 1000
    assert result.stderr == ""  # --quiet: no progress bar, no epoch lines


def test_the_group_runs_train_too(tmp_path):
    result = CliRunner().invoke(main, ["train", *TINY, "--max-steps", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "stopped by steps" in result.stdout


def _one_line_exit_2(args):
    result = CliRunner().invoke(train_cmd, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_malformed_tsv_names_the_line(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("a b\tc d\nno tab here\n", encoding="utf-8")
    line = _one_line_exit_2([*TINY, "--dataset", f"tsv:{path}", "--out", str(tmp_path / "out")])
    assert line == f"Error: {path}:2: expected source<TAB>target, found no tab"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "tpu"], "device must be one of auto, cpu, cuda"),
        (["--epochs", "0"], "epochs must be >= 1"),
        (["--teacher-forcing", "1.5"], "teacher_forcing must be in [0, 1]"),
        (["--label-smoothing", "1"], "label_smoothing must be in [0, 1)"),
        (["--ema-decay", "1"], "ema_decay must be in [0, 1)"),
        (["--weight-decay", "-0.1"], "weight_decay must be in [0, 1)"),
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--dataset", "wmt"], "unknown dataset 'wmt'"),
        (["--lr-schedule", "step"], "lr_schedule must be one of constant, cosine"),
        (["--resume"], "nothing to resume"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    assert message in _one_line_exit_2([*TINY, "--out", str(tmp_path), *args])


def test_every_option_has_help():
    for param in train_cmd.params:
        if param.name != "help":
            assert getattr(param, "help", None), param.name
    result = CliRunner().invoke(train_cmd, ["--help"])
    assert result.exit_code == 0 and "--max-minutes" in result.output and "--resume" in result.output
