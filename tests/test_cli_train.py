"""s2s-train: a tiny real run, and bad input as one line on stderr with exit 2 (no traceback)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from terminal import on_terminal

from seq2seq_export.cli import main, train_cmd

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = [
    "--preset",
    "toy",
    "--emb-dim",
    "8",
    "--hidden-dim",
    "16",
    "--batch-size",
    "512",
    "--max-steps",
    "5",
    "--device",
    "cpu",
    "--quiet",
]


def test_tiny_toy_run_prints_metrics_and_writes_checkpoints(tmp_path):
    result = CliRunner().invoke(train_cmd, [*TINY, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"checkpoint: {tmp_path / 'checkpoint.pt'}"
    assert lines[1].startswith("trained 0.125 epochs, 5 steps") and "(stopped by steps)" in lines[1]
    assert lines[1].endswith("training pairs/s") and " CPU-min (stopped by steps)" in lines[1]  # toy: CPU clock
    assert lines[2].startswith("valid: sequence error rate ") and ", token error rate " in lines[2]
    assert lines[3].startswith("test:  sequence error rate ") and lines[3].endswith("(1000 pairs)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "last.pt", "metrics.json"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == 5 and metrics["test"]["count"] == 1000 and metrics["pairs_per_s"] > 0
    (row,) = metrics["history"]  # one validation, at the end: what docs/results plots per epoch
    assert row["step"] == 5 and row["epoch"] == 0.125 and row == metrics["valid"]
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
        (["--epochs", "0"], "epochs must be >= 1"),
        (["--teacher-forcing", "1.5"], "teacher_forcing must be in [0, 1]"),
        (["--label-smoothing", "1"], "label_smoothing must be in [0, 1)"),
        (["--ema-decay", "1"], "ema_decay must be in [0, 1)"),
        (["--weight-decay", "-0.1"], "weight_decay must be in [0, 1)"),
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--dataset", "wmt"], "unknown dataset 'wmt'"),
        (["--resume"], "nothing to resume"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    assert message in _one_line_exit_2([*TINY, "--out", str(tmp_path), *args])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "tpu"], "'--device': 'tpu' is not one of 'auto', 'cpu', 'cuda'."),
        (["--lr-schedule", "step"], "'--lr-schedule': 'step' is not one of 'constant', 'cosine'."),
        (["--clock", "sundial"], "'--clock': 'sundial' is not one of 'wall', 'cpu'."),
    ],
)
def test_values_outside_their_choices_are_usage_errors(tmp_path, args, message):
    result = CliRunner().invoke(train_cmd, [*TINY, "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2 and result.stdout == "" and "Traceback" not in result.output
    assert result.stderr.splitlines()[-1] == f"Error: Invalid value for {message}"
    assert not (tmp_path / "run").exists()


def test_every_option_has_help():
    for param in train_cmd.params:
        if param.name != "help":
            assert getattr(param, "help", None), param.name
    result = CliRunner().invoke(train_cmd, ["--help"])
    assert result.exit_code == 0 and "--max-minutes" in result.output and "--resume" in result.output


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_second_run_into_the_same_folder_is_refused_and_the_first_is_untouched(tmp_path):
    out = tmp_path / "run"
    assert CliRunner().invoke(train_cmd, [*TINY, "--max-steps", "1", "--out", str(out)]).exit_code == 0
    before = _snapshot(out)
    line = _one_line_exit_2([*TINY, "--max-steps", "2", "--out", str(out)])
    assert line == (
        f"Error: {out} already holds a run (checkpoint.pt, last.pt, metrics.json): pass --out DIR for a "
        f"new run, --resume to continue it, or --force to replace it"
    )
    assert _snapshot(out) == before  # byte for byte
    (out / "metrics.json").unlink()
    (out / "checkpoint.pt").unlink()
    assert "already holds a run (last.pt)" in _one_line_exit_2([*TINY, "--out", str(out)])  # any one file is a run
    assert "pass one of them" in _one_line_exit_2([*TINY, "--out", str(out), "--resume", "--force"])


def test_force_replaces_the_run_and_its_default_bundle(tmp_path):
    out = tmp_path / "run"
    assert CliRunner().invoke(train_cmd, [*TINY, "--max-steps", "1", "--out", str(out)]).exit_code == 0
    (out / "bundle").mkdir()
    (out / "bundle" / "manifest.json").write_text("{}")  # the first run's export, out of step with a new checkpoint
    (out / "notes.txt").write_text("mine")
    before = _snapshot(out)
    assert "unknown dataset" in _one_line_exit_2([*TINY, "--out", str(out), "--force", "--dataset", "wmt"])
    assert _snapshot(out) == before  # a run that fails before training deletes nothing
    result = CliRunner().invoke(train_cmd, [*TINY, "--max-steps", "2", "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metrics.json").read_text())["steps"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "last.pt", "metrics.json", "notes.txt"]
    assert "deletes its checkpoint.pt, last.pt, metrics.json and bundle/" in " ".join(
        CliRunner().invoke(train_cmd, ["--help"]).output.split()
    )


def test_another_dataset_without_out_gets_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    preset_run = tmp_path / "artifacts" / "toy"
    preset_run.mkdir(parents=True)
    (preset_run / "checkpoint.pt").write_bytes(b"the preset's own run")
    # Sources of 1..7 tokens, 30 of each: the train split surely holds a 7-token one.
    lines = [" ".join(f"w{(i + k) % 9}" for k in range(1 + i % 7)) for i in range(210)]
    (tmp_path / "pairs.tsv").write_text("".join(f"{s}\t{s[::-1]}\n" for s in lines), encoding="utf-8")
    result = CliRunner().invoke(train_cmd, [*TINY, "--dataset", "tsv:pairs.tsv", "--max-steps", "2"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "checkpoint: artifacts/toy-pairs/checkpoint.pt"
    assert (preset_run / "checkpoint.pt").read_bytes() == b"the preset's own run"
    for name in ("checkpoint.pt", "last.pt"):  # the longest source, as the exporter's default input cap
        training = torch.load(tmp_path / "artifacts" / "toy-pairs" / name, weights_only=True)["training"]
        assert training["max_src_tokens"] == 7, name
    assert json.loads((tmp_path / "artifacts" / "toy-pairs" / "metrics.json").read_text())["max_src_tokens"] == 7


def test_force_that_cannot_delete_is_one_line(tmp_path):
    (tmp_path / "checkpoint.pt").mkdir()  # not a file: unlink fails (even for root, unlike a read-only folder)
    line = _one_line_exit_2([*TINY, "--max-steps", "1", "--out", str(tmp_path), "--force"])
    assert line.startswith(f"Error: {tmp_path}: cannot replace the earlier run (") and "permissions" in line


def test_the_tsv_preset_without_a_dataset_says_which_option_to_pass(tmp_path):
    line = _one_line_exit_2(["--preset", "tsv-attention", "--out", str(tmp_path / "run")])
    assert line.startswith(
        "Error: preset 'tsv-attention' needs a dataset: pass --dataset tsv:FILE (source<TAB>target per line"
    ), line
    assert "PATH" not in line and not (tmp_path / "run").exists()


def test_help_lists_every_shipped_preset_from_the_package_files():
    from importlib import resources

    shipped = sorted(p.name[:-5] for p in resources.files("seq2seq_export.train").iterdir() if p.name.endswith(".toml"))
    assert len(shipped) >= 4
    help_text = " ".join(CliRunner().invoke(train_cmd, ["--help"]).output.split())
    assert f"A shipped preset ({', '.join(shipped)}) or the path of your TOML preset" in help_text


def test_tokenizer_options_reach_the_dataset(tmp_path):
    path = tmp_path / "words.tsv"
    words = ["".join(letters) for letters in itertools.product("abcdef", repeat=3)]  # 216 words of 3 letters
    path.write_text("".join(f"{w}\t{w[::-1]}\n" for w in words), encoding="utf-8")
    result = CliRunner().invoke(
        train_cmd,
        [
            *TINY,
            "--max-steps",
            "1",
            "--dataset",
            f"tsv:{path}",
            "--out",
            str(tmp_path / "run"),
            "--src-tokenizer",
            "char",
            "--tgt-tokenizer",
            "char",
        ],
    )
    assert result.exit_code == 0, result.output
    training = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["training"]
    assert (training["train_config"]["src_tokenizer"], training["train_config"]["tgt_tokenizer"]) == ("char", "char")
    assert training["max_src_tokens"] == 3  # three characters, not one word


def _stderr_of(args: list[str], terminal: bool) -> str:
    """Run s2s-train in a fresh interpreter with its stderr on a pseudo-terminal, or on a pipe."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    command = [sys.executable, "-m", "seq2seq_export", "train", *args]
    if not terminal:
        return subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=300
        ).stderr
    code, _, seen = on_terminal(command, env, timeout=300)
    assert code == 0
    return seen


def test_the_progress_bar_shows_the_budget_on_a_terminal_and_nothing_in_a_pipe(tmp_path):
    loud = [arg for arg in TINY if arg != "--quiet"]
    args = [*loud, "--max-steps", "30", "--epochs", "3"]  # 40 steps per epoch: the steps end the run
    on_terminal = _stderr_of([*args, "--out", str(tmp_path / "tty")], terminal=True)
    assert "steps 0/30" in on_terminal and "epoch 1/3" in on_terminal, on_terminal
    assert "epoch 0.75 step 30: valid loss" in on_terminal  # the validation line after the bar
    in_pipe = _stderr_of([*args, "--out", str(tmp_path / "pipe")], terminal=False)
    assert "epoch 0.75 step 30: valid loss" in in_pipe
    assert "steps 0/30" not in in_pipe and "\r" not in in_pipe, in_pipe
    quiet = _stderr_of([*args, "--quiet", "--out", str(tmp_path / "quiet")], terminal=True)
    assert quiet == "", quiet
