"""The equivalence suite for your own bundle:

    pytest tests/test_user_bundle.py --bundle DIR [--bundle-samples N] [--bundle-data cmudict]

Runs the verifier (seq2seq_export.verify) once on DIR and reports each kind of check as its own test,
so a failure names the check, the backend and where it failed. Skipped when no --bundle is given.
"""
from __future__ import annotations

import pytest

from seq2seq_export.verify import format_report, verify

KINDS = ("io", "values", "teacher_forced", "greedy", "batch_invariance", "beam", "beam_invariance", "lint")


@pytest.fixture(scope="module")
def report(request):
    path = request.config.getoption("--bundle")
    if path is None:
        pytest.skip("no --bundle DIR given: this suite checks a bundle you name, e.g. "
                    "`pytest tests/test_user_bundle.py --bundle artifacts/bundle`")
    opt = request.config.getoption
    return verify(path, samples=opt("--bundle-samples"), data=opt("--bundle-data"))


@pytest.mark.parametrize("kind", KINDS)
def test_check_passes(report, kind):
    rows = [c for c in report.checks if c.name.split(".")[0] == kind]
    if kind == "lint":
        assert rows or "onnx" not in {c.backend for c in report.checks}, "ONNX graphs present but not linted"
    else:
        assert rows, f"no {kind} check ran"
    bad = [f"{c.name}[{c.backend}]: {c.figure}; {c.detail}" for c in rows if not c.passed]
    assert not bad, "\n".join(bad)


def test_every_check_passes(report):
    assert report.passed, "\n" + format_report(report)
