"""Progress on long commands: stage lines on stderr when it is a terminal (a real pseudo-terminal here),
nothing with --quiet or when stderr is a pipe; the library reports through a callback and never prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import terminal

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"}
PROGRESS = "s] "  # every progress line starts with the time since the start: "[  1.2 s] ..."


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "seq2seq_export", *args]


def on_terminal(args: list[str]) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (stdout a pipe) -> (exit code, stdout, what the terminal got)."""
    return terminal.on_terminal(args, ENV, cwd=ROOT)


def in_pipe(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120, check=False)


def progress_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("[") and PROGRESS in line]


def export_args(checkpoint: Path, out: Path) -> list[str]:
    return cli("export", "--checkpoint", str(checkpoint), "--out", str(out), "--exporter", "legacy")


def test_export_shows_each_stage_on_a_terminal(tiny_checkpoint, tmp_path):
    code, out, err = on_terminal(export_args(tiny_checkpoint, tmp_path / "b"))
    assert code == 0, err
    lines = progress_lines(err)
    for stage in (
        "loading checkpoint",
        "exporting encoder to ONNX (legacy exporter)",
        "exporting decoder_step to TorchScript",
        "writing the reference checkpoint",
        "verifying the new bundle",
        "quick verification: greedy [onnx]",
    ):
        assert any(stage in line for line in lines), f"no progress line for {stage!r} in:\n{err}"
    assert "bundle:" in out and PROGRESS not in out, "progress goes to stderr only"


def test_export_quiet_on_a_terminal_and_silent_in_a_pipe(tiny_checkpoint, tmp_path):
    code, _, err = on_terminal([*export_args(tiny_checkpoint, tmp_path / "q"), "--quiet"])
    assert code == 0 and not progress_lines(err), err
    piped = in_pipe(export_args(tiny_checkpoint, tmp_path / "p"))
    assert piped.returncode == 0, piped.stderr
    assert not progress_lines(piped.stderr) and "loading checkpoint" not in piped.stderr, piped.stderr


def test_verify_shows_each_check_on_a_terminal_and_nothing_in_a_pipe(tiny_bundle):
    args = cli("verify", "--bundle", str(tiny_bundle), "--samples", "8")
    code, out, err = on_terminal(args)
    assert code == 0, err
    lines = progress_lines(err)
    for check in (
        "eager reference",
        "io, values",
        "teacher_forced",
        "greedy [onnx]",
        "greedy [torchscript]",
        "batch_invariance [torchscript]",
        "lint",
    ):
        assert any(check in line for line in lines), f"no progress line for {check!r} in:\n{err}"
    piped = in_pipe(args)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
    assert piped.stdout == out, "the table is the same whatever stderr is"


def test_bench_shows_each_timed_pass_on_a_terminal(tiny_bundle):
    args = cli(
        "bench",
        "--bundle",
        str(tiny_bundle),
        "--backends",
        "onnx,torchscript",
        "--batch-sizes",
        "1,4",
        "--samples",
        "6",
        "--repeat",
        "2",
        "--no-load-probe",
    )
    code, _, err = on_terminal(args)
    assert code == 0, err
    timed = [line for line in progress_lines(err) if "timing" in line]
    assert len(timed) == 4 and "timing 4/4: batch size 4, repeat 2/2" in timed[-1], err
    code, _, err = on_terminal([*args, "--quiet"])
    assert code == 0 and not progress_lines(err), err


def test_translate_shows_a_line_counter_on_a_terminal_and_nothing_with_quiet_or_in_a_pipe(tiny_bundle):
    args = cli("translate", "--bundle", str(tiny_bundle), "ab", "cde")
    code, out, err = on_terminal(args)
    assert code == 0 and "2/2" in err and "line" in err, err  # tqdm's counter: "2/2 [..., ...line/s]"
    code, quiet_out, err = on_terminal([*args, "--quiet"])
    assert code == 0 and err == "" and quiet_out == out, err
    piped = in_pipe(args)
    assert piped.returncode == 0 and piped.stderr == "" and piped.stdout == out


def test_library_reports_through_the_callback_and_prints_nothing(tiny_checkpoint, tmp_path, capfd):
    from seq2seq_export.bundle import export_bundle
    from seq2seq_export.verify import export_check, verify

    notes: list[str] = []
    out = export_bundle(
        tiny_checkpoint,
        tmp_path / "b",
        exporter="legacy",
        progress=notes.append,
        verify=lambda d: export_check(d, progress=notes.append),
    )
    assert notes[0].startswith("loading checkpoint") and notes[-1].startswith("quick verification: lint"), notes
    checks: list[str] = []
    verify(out, samples=4, backends=["torchscript"], progress=checks.append)
    assert [n.split(" ")[0] for n in checks] == [
        "decoding",
        "loading",
        "io,",
        "teacher_forced:",
        "greedy",
        "batch_invariance",
        "beam:",
        "beam",
        "beam_invariance",
    ], checks
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize("command", ["export", "verify", "bench", "translate", "bulk", "train"])
def test_quiet_is_documented(command):
    from seq2seq_export.cli import main

    assert "--quiet" in [o for p in main.commands[command].params for o in getattr(p, "opts", [])]
