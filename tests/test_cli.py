"""The CLI as a whole: every command is registered, documented in --help and in the README."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from seq2seq_export.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(main.commands)


def test_every_console_script_is_a_group_command():
    assert COMMANDS == ["bench", "export", "import", "train", "translate", "verify"]


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
