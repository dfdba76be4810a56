"""The CLI as a whole: every command is registered, documented in --help (defaults and choices too) and in
the README; --json means the same everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from seq2seq_export import constants
from seq2seq_export.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(main.commands)


def test_every_console_script_is_a_group_command():
    assert COMMANDS == ["bench", "bulk", "export", "import", "serve", "train", "translate", "verify"]


@pytest.mark.parametrize("name", COMMANDS)
def test_command_and_every_option_have_help(name):
    command = main.commands[name]
    assert command.help, f"{name} has no help text"
    for param in command.params:
        if param.param_type_name == "option":
            assert param.help, f"s2s-{name} {param.opts[0]} has no help text"
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_in_the_readme(name):
    assert f"s2s-{name}" in README


def test_python_dash_m_runs_the_group():
    proc = subprocess.run([sys.executable, "-m", "seq2seq_export", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for name in COMMANDS:
        assert name in proc.stdout


TRAIN_TINY = ["--preset", "toy", "--emb-dim", "8", "--hidden-dim", "16", "--max-steps", "1", "--quiet"]
NO_CUDA = "torch.cuda.is_available() is True here: nothing to refuse"


def _bound_cases():
    """(command, extra args, message) for every option bound the commands share."""
    cases = [
        ("translate", ["--threads", "5000"], "'--threads': 5000 is not in the range 1<=x<=256"),
        ("bench", ["--threads", "257"], "'--threads': 257 is not in the range 1<=x<=256"),
        ("bench", ["--threads", "0"], "'--threads': 0 is not in the range 1<=x<=256"),
        ("train", [*TRAIN_TINY, "--threads", "5000"], "'--threads': 5000 is not in the range 0<=x<=256"),
        ("verify", ["--seed", "-1"], "'--seed': -1 is not in the range x>=0"),
        ("serve", ["--port", "70000"], "'--port': 70000 is not in the range 0<=x<=65535"),
        ("serve", ["--max-batch-size", "0"], "'--max-batch-size': 0 is not in the range 1<=x<=4096"),
    ]
    for value in ("inf", "nan", "-inf"):
        cases += [
            ("verify", ["--atol", value], "atol must be positive and rtol non-negative, both finite"),
            ("verify", ["--rtol", value], "atol must be positive and rtol non-negative, both finite"),
            ("verify", ["--exact-factor", value], "exact_factor must be finite and non-negative"),
        ]
    return cases


@pytest.mark.parametrize("name, args, message", _bound_cases())
def test_option_bounds_are_one_line_exit_2(name, args, message, tiny_bundle, tmp_path):
    bundle = [] if name == "train" else ["--bundle", str(tiny_bundle)]
    out = ["--out", str(tmp_path / "run")] if name == "train" else []
    result = CliRunner().invoke(main, [name, *bundle, *out, *args, *(["abc"] if name == "translate" else [])])
    assert result.exit_code == 2, result.output
    error = result.stderr.splitlines()[-1]  # after click's usage lines, for a bad option value
    assert error.startswith("Error: ") and message in error and "Traceback" not in result.output
    assert result.stdout == ""


@pytest.mark.parametrize("name", ["bench", "train"])
def test_device_cuda_without_cuda_is_one_line(name, tiny_bundle, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip(NO_CUDA)
    args = [*TRAIN_TINY, "--out", str(tmp_path / "run")] if name == "train" else ["--bundle", str(tiny_bundle)]
    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq_export", name, *args, "--device", "cuda"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("Error: device 'cuda' was asked for but CUDA is not available to this torch")
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""


OFF_WHEN_ABSENT = {"--report", "--expect-digest"}  # no default to show: absent means not done


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_with_a_value_shows_its_default_in_help(name):
    command = main.commands[name]
    ctx = click.Context(command, info_name=name, **command.context_settings)
    for param in command.params:
        if not isinstance(param, click.Option) or param.is_flag or param.required or param.opts[0] in OFF_WHEN_ABSENT:
            continue
        _, text = param.get_help_record(ctx)
        assert "[default: " in text, f"s2s-{name} {param.opts[0]}: --help shows no default: {text!r}"


CLOSED_SETS = {
    ("translate", "backend"): constants.BACKENDS,
    ("bench", "backends"): constants.BACKENDS,
    ("verify", "backends"): constants.FORMATS,
    ("bench", "device"): constants.DEVICES,
    ("train", "device"): constants.DEVICES,
    ("train", "lr_schedule"): constants.LR_SCHEDULES,
    ("train", "clock"): constants.CLOCKS,
    ("export", "exporter"): constants.EXPORTERS,
    ("import", "src_tokenizer"): constants.TOKENIZERS,
    ("import", "tgt_tokenizer"): constants.TOKENIZERS,
    ("train", "src_tokenizer"): constants.TOKENIZERS,
    ("train", "tgt_tokenizer"): constants.TOKENIZERS,
    ("bulk", "engine"): constants.BULK_ENGINES,
}


@pytest.mark.parametrize("name, option", sorted(CLOSED_SETS))
def test_closed_sets_are_offered_from_the_library_constants(name, option):
    param = next(p for p in main.commands[name].params if p.name == option)
    assert tuple(param.type.choices) == CLOSED_SETS[name, option]
    if isinstance(param.default, str):  # the default itself is one of the choices
        assert set(str(param.default).split(",")) <= set(CLOSED_SETS[name, option])


def test_json_is_a_flag_everywhere_and_report_takes_the_file():
    for name in ("translate", "verify", "bench"):
        json_opt = next(p for p in main.commands[name].params if p.opts == ["--json"])
        assert json_opt.is_flag, name
    for name in ("verify", "bench"):
        assert any(p.opts == ["--report"] and not p.is_flag for p in main.commands[name].params), name
