"""s2s-verify: the table on stdout, --json and --report, and exit codes 0 (pass), 1 (a check failed), 2 (unusable input)."""
from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from bundle_edits import copy_bundle, edit_onnx, perturb_largest_weight
from click.testing import CliRunner

from seq2seq_export.cli import verify_cmd


def invoke(*args: str):
    return CliRunner().invoke(verify_cmd, list(args))


def test_passing_bundle_exits_0_with_table_and_json(tiny_bundle, tmp_path):
    out = tmp_path / "report.json"
    result = invoke("--bundle", str(tiny_bundle), "--samples", "8", "--report", str(out))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["check", "backend", "result", "measured"]
    assert any(line.split()[:3] == ["greedy", "onnx", "PASS"] for line in lines[2:])
    assert "Legend:" in lines and any(line.split()[:3] == ["N", "of", "tol"] for line in lines), "the legend explains figures"
    assert lines[-1].startswith("PASS ") and "20 checks passed on 8 samples" in lines[-1]
    report = json.loads(out.read_text())
    assert report["passed"] is True and len(report["checks"]) == 20


def test_failing_bundle_exits_1_with_one_line_error(lively_bundle, tmp_path):
    broken = copy_bundle(lively_bundle, tmp_path / "b")
    edit_onnx(broken, perturb_largest_weight)
    result = invoke("--bundle", str(broken), "--samples", "8", "--backends", "onnx")
    assert result.exit_code == 1, result.output
    assert any(line.split()[:3] == ["teacher_forced", "onnx", "FAIL"] for line in result.stdout.splitlines())
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert "teacher_forced[onnx]" in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "nope"], "unknown dataset 'nope'"),
        (["--atol", "-1"], "atol must be positive"),
        (["--samples", "0"], "Invalid value for '--samples'"),
    ],
)
def test_unusable_options_exit_2(tiny_bundle, args, message):
    result = invoke("--bundle", str(tiny_bundle), *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output


def test_backends_outside_the_formats_are_usage_errors(tiny_bundle):
    result = invoke("--bundle", str(tiny_bundle), "--backends", "onnx,tflite")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines()[-1] == ("Error: Invalid value for '--backends': 'tflite' is not one of "
                                               "'onnx', 'torchscript'.")


def test_json_prints_the_report_instead_of_the_table(tiny_bundle, tmp_path):
    out = tmp_path / "report.json"
    result = invoke("--bundle", str(tiny_bundle), "--samples", "4", "--backends", "onnx", "--json", "--report", str(out))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is True and {c["backend"] for c in report["checks"]} >= {"onnx"}
    assert out.read_text() == result.stdout


def test_missing_bundle_exits_2(tmp_path):
    result = invoke("--bundle", str(tmp_path / "nothing"))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path / 'nothing'}: not a bundle directory\n"


def test_every_option_has_help():
    options = [p for p in verify_cmd.params if isinstance(p, click.Option)]
    assert {o.name for o in options} >= {"bundle_dir", "samples", "data", "atol", "backends", "as_json", "report_path"}
    assert all(o.help for o in options)


def test_python_m_runs_verify(tiny_bundle):
    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq_export", "verify", "--bundle", str(tiny_bundle), "--samples", "4",
         "--backends", "torchscript"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("PASS ")


def test_export_verifies_by_default_and_no_verify_skips(tiny_checkpoint, tmp_path):
    from seq2seq_export.cli import export_cmd

    base = ["--checkpoint", str(tiny_checkpoint), "--exporter", "legacy", "--out"]
    result = CliRunner().invoke(export_cmd, base + [str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "verified: quick s2s-verify passed"
    result = CliRunner().invoke(export_cmd, base + [str(tmp_path / "b"), "--no-verify"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "not verified: run s2s-verify --bundle on it"
