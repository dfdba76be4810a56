"""verify(): passes on faithful bundles, and fails, with the right check and step, on broken ones."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from bundle_edits import (
    copy_bundle,
    edit_onnx,
    flip_linear_before_reset,
    perturb_largest_weight,
    reexport_decoder_step,
    rehash,
)
from conftest import DECODE_CHECKS, make_checkpoint

from seq2seq_export.bundle import export_bundle
from seq2seq_export.constants import ENCODER_ONNX, MANIFEST_FILE, REFERENCE_CHECKPOINT
from seq2seq_export.errors import BundleError, ConfigError, DataError, VerificationFailed
from seq2seq_export.manifest import load_bundle
from seq2seq_export.runtime import DecodeOptions, greedy_decode, open_backend
from seq2seq_export.verify import format_report, sample_sources, verify

SAMPLES = 24


def checks(report) -> dict:
    return {(c.name, c.backend): c for c in report.checks}


def failed(report) -> set:
    return {(c.name, c.backend) for c in report.failures}


@pytest.fixture(scope="module")
def dropout_bundle(tmp_path_factory) -> Path:
    """A model configured with dropout 0.5, exported correctly (eval mode)."""
    root = tmp_path_factory.mktemp("dropout")
    ckpt = make_checkpoint(root / "checkpoint.pt", seed=1, dropout=0.5)
    return export_bundle(ckpt, root / "bundle", exporter="legacy", verify=None)


def first_divergence_alone(bundle_dir: Path, n: int) -> tuple[int, int]:
    """Oracle for the greedy check: decode each sample alone on eager and onnx; first (sample, step) that differ."""
    bundle = load_bundle(bundle_dir)
    eager, onnx = open_backend(bundle, "eager"), open_backend(bundle, "onnx")
    opts = DecodeOptions.from_bundle(bundle)
    for i, seq in enumerate(sample_sources(bundle, "random", n, seed=0)):
        a, b = greedy_decode(eager, [seq], opts)[0], greedy_decode(onnx, [seq], opts)[0]
        if a != b:
            return i, next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    raise AssertionError("the edited graph decodes every sample like eager")


def test_tiny_bundle_passes_every_check(tiny_bundle):
    report = verify(tiny_bundle, samples=SAMPLES)
    assert report.passed, format_report(report)
    expected = {(n, b) for n in DECODE_CHECKS for b in ("onnx", "torchscript")}
    assert set(checks(report)) == expected | {("lint.encoder", "onnx"), ("lint.decoder_step", "onnx")}
    tf = checks(report)["teacher_forced", "onnx"]
    assert len(tf.per_step) >= 2 and max(tf.per_step) == tf.value <= 1e-5
    report.raise_if_failed()


def test_trained_toy_bundle_passes_on_its_test_split(toy_checkpoint, tmp_path):
    bundle_dir = export_bundle(toy_checkpoint, tmp_path / "toy", exporter="legacy", verify=None)
    report = verify(bundle_dir, samples=40, data="toy")
    assert report.passed, format_report(report)
    assert report.samples == 40 and report.data == "toy"
    steps = checks(report)["teacher_forced", "onnx"].per_step
    assert 4 <= len(steps) < load_bundle(bundle_dir).max_len  # trained decodes end at <eos>, not at max_len


def test_flipped_linear_before_reset_fails_at_the_first_divergent_step(lively_bundle, tmp_path):
    broken = copy_bundle(lively_bundle, tmp_path / "b")
    edit_onnx(broken, flip_linear_before_reset, ENCODER_ONNX)  # the decoder step has no GRU node
    report = verify(broken, samples=SAMPLES)
    bad = failed(report)
    assert {("lint.encoder", "onnx"), ("values.encoder", "onnx"), ("teacher_forced", "onnx"), ("greedy", "onnx")} <= bad
    assert {b for _, b in bad} == {"onnx"}  # the TorchScript graphs were not touched
    c = checks(report)
    assert "linear_before_reset" in c["lint.encoder", "onnx"].detail
    assert "sample 0, encoder (" in c["teacher_forced", "onnx"].detail  # wrong before the first step
    sample, step = first_divergence_alone(broken, SAMPLES)
    assert c["greedy", "onnx"].detail.startswith(f"sample {sample} diverges at step {step}: eager ")
    assert "eager logit margin" in c["greedy", "onnx"].detail
    with pytest.raises(VerificationFailed, match=r"checks failed .*greedy\[onnx\]"):
        report.raise_if_failed()


def test_weight_perturbed_by_1e_3_fails_values_and_teacher_forcing(lively_bundle, tmp_path):
    broken = copy_bundle(lively_bundle, tmp_path / "b")
    edit_onnx(broken, perturb_largest_weight)
    report = verify(broken, samples=SAMPLES)
    assert {("values.decoder_step", "onnx"), ("teacher_forced", "onnx")} <= failed(report)
    c = checks(report)
    assert c["values.decoder_step", "onnx"].value > 1e-4
    assert "sample 0, step 0" in c["teacher_forced", "onnx"].detail
    assert c["lint.decoder_step", "onnx"].passed  # structurally fine: only the numbers betray it
    assert c["values.encoder", "onnx"].passed


@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
def test_planted_defects_fail_the_beam_check(lively_bundle, tmp_path, quick):
    """A flipped GRU linear_before_reset (in the encoder: the decoder step runs an explicit cell) and a
    decoder weight off by 1e-3 both fail beam[onnx], in the full run and in s2s-export's quick check;
    the weight error changes few greedy tokens, but nearly every n-best list's scores."""
    flipped, perturbed = copy_bundle(lively_bundle, tmp_path / "f"), copy_bundle(lively_bundle, tmp_path / "p")
    edit_onnx(flipped, flip_linear_before_reset, ENCODER_ONNX)
    edit_onnx(perturbed, perturb_largest_weight)
    for broken in (flipped, perturbed):
        c = checks(verify(broken, samples=SAMPLES, quick=quick))
        assert not c["beam", "onnx"].passed and c["beam", "onnx"].value >= 0.5 * (16 if quick else SAMPLES)
        assert c["beam_invariance", "onnx"].passed  # wrong, but consistently so
        assert c["beam", "torchscript"].passed and c["beam_invariance", "torchscript"].passed
    c = checks(verify(perturbed, samples=SAMPLES, quick=quick))
    assert c["beam", "onnx"].value > c["greedy", "onnx"].value
    assert "scores differ by" in c["beam", "onnx"].detail and "per token (tolerance 0.0001)" in c["beam", "onnx"].detail


def test_beam_comparison_needs_equal_ids_in_order_and_scores_within_tolerance():
    from seq2seq_export.runtime import Scored
    from seq2seq_export.verify_beam import compare_nbests, same_nbest

    a, b = Scored((5, 6), -0.5, (-0.5, -0.5, -0.5)), Scored((7,), -1.0, (-1.0, -1.0))
    near = Scored((5, 6), -0.5 + 5e-5, (-0.5, -0.5, -0.5 + 1.5e-4))  # 5e-5 per token: within 1e-4
    far = Scored((5, 6), -0.5 + 2e-4, (-0.5, -0.5, -0.5 + 6e-4))
    assert same_nbest([a, b], [near, b]) and not same_nbest([a, b], [far, b])
    assert not same_nbest([a, b], [b, a]) and not same_nbest([a, b], [a]) and not same_nbest([a], [a, b])
    tie = Scored((8,), -0.5 + 2e-5, (-1.0 + 4e-5, 0.0))  # a float tie with a: either may rank first
    assert same_nbest([a, tie, b], [tie, a, b]) and not same_nbest([a, tie, b], [tie, b, a])
    assert not same_nbest([a, tie], [a, replace(tie, ids=(9,))])
    result = compare_nbests([[a, b], [a], [a, b]], [[near, b], [a, b], [far, b]], ("eager", "onnx"), "beam", "onnx")
    assert not result.passed and result.value == 2 and result.backend == "onnx"
    assert result.detail == "sample 1 hypothesis 1: eager nothing vs onnx [7] (score -1.000000)"
    assert result.figure == "2/3 samples differ, score diff 2.0e-04/token"


def test_dropout_active_at_export_fails_the_lint(dropout_bundle, tmp_path):
    """onnxruntime's optimizer deletes Dropout nodes, training mode or not, so its numbers can look
    right; the graph still drops units in any runtime that runs it as written, and the lint says so."""
    assert verify(dropout_bundle, samples=8).passed  # dropout in the config alone is fine
    broken = copy_bundle(dropout_bundle, tmp_path / "b")
    reexport_decoder_step(broken, train_mode=True)
    report = verify(broken, samples=8)
    assert ("lint.decoder_step", "onnx") in failed(report)
    assert "Dropout node" in checks(report)["lint.decoder_step", "onnx"].detail
    assert "training mode" in checks(report)["lint.decoder_step", "onnx"].detail
    with pytest.raises(VerificationFailed, match=r"lint\.decoder_step\[onnx\]"):
        report.raise_if_failed()


def test_fixed_batch_of_one_fails_the_dynamic_axes_lint(lively_bundle, tmp_path):
    broken = copy_bundle(lively_bundle, tmp_path / "b")
    reexport_decoder_step(broken, fixed_batch=True)
    report = verify(broken, samples=8)
    c = checks(report)
    assert not c["lint.decoder_step", "onnx"].passed
    assert "batch" in c["lint.decoder_step", "onnx"].detail
    assert c["lint.encoder", "onnx"].passed
    assert not c["io.decoder_step", "onnx"].passed  # batch 3 cannot even run
    assert not c["greedy", "onnx"].passed


def test_unloadable_graph_fails_its_backend_and_the_rest_still_runs(tiny_bundle, tmp_path):
    broken = copy_bundle(tiny_bundle, tmp_path / "b")
    (broken / "decoder_step.onnx").write_bytes(b"not an onnx file")
    rehash(broken)
    report = verify(broken, samples=4)
    assert failed(report) == {("load", "onnx"), ("lint.decoder_step", "onnx")}
    assert "decoder_step.onnx: not a readable ONNX graph" in checks(report)["load", "onnx"].detail
    assert all(c.passed for c in report.checks if c.backend == "torchscript") and len(report.checks) == 12


def test_report_json_and_table(tiny_bundle):
    report = verify(tiny_bundle, samples=4, backends=["torchscript"], batch_sizes=(2,))
    data = json.loads(report.to_json())
    assert data["passed"] is True and data["samples"] == 4
    assert {c["name"] for c in data["checks"]} == set(DECODE_CHECKS)
    assert all(isinstance(c["per_step"], list) for c in data["checks"])
    table = format_report(report).splitlines()
    assert table[0].split()[:4] == ["check", "backend", "result", "measured"]
    legend = table[len(report.checks) + 4 : -2]  # header, rule, rows, blank, "Legend:", legend, blank, verdict
    assert table[len(report.checks) + 3] == "Legend:" and table[-2] == ""
    assert [line.split()[0] for line in legend] == [
        "io.GRAPH",
        "values.GRAPH",
        "teacher_forced",
        "greedy",
        "batch_invariance",
        "beam",
        "beam_invariance",
        "score",
        "max",
        "N",
    ], "only what it shows"
    assert "atol 1e-05, rtol 1e-06" in "\n".join(legend)
    assert table[-1].startswith("PASS ") and "all 9 checks passed on 4 samples" in table[-1]


def test_quick_mode_is_small(tiny_bundle):
    report = verify(tiny_bundle, samples=500, quick=True)
    assert report.passed and report.samples == 16


def test_bundle_without_reference_is_unusable(tiny_bundle, tmp_path):
    b = copy_bundle(tiny_bundle, tmp_path / "b")
    manifest = json.loads((b / MANIFEST_FILE).read_text())
    manifest["reference"] = None
    (b / MANIFEST_FILE).write_text(json.dumps(manifest))
    (b / REFERENCE_CHECKPOINT).unlink()
    rehash(b)
    with pytest.raises(BundleError, match="no reference checkpoint"):
        verify(b)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(backends=["tflite"]), ConfigError, "cannot verify backend"),
        (dict(samples=0), ConfigError, "samples must be a positive integer"),
        (dict(atol=0.0), ConfigError, "atol must be positive"),
        (dict(batch_sizes=(0,)), ConfigError, "batch sizes"),
        (dict(beam_size=0), ConfigError, r"beam_size must be an integer in \[1, 4096\], got 0"),
        (dict(data="nope"), DataError, "unknown dataset"),
    ],
)
def test_bad_options_are_typed_errors(tiny_bundle, kwargs, error, match):
    with pytest.raises(error, match=match):
        verify(tiny_bundle, **kwargs)


def test_missing_bundle_is_a_bundle_error(tmp_path):
    with pytest.raises(BundleError, match="not a bundle directory"):
        verify(tmp_path / "nothing")


def test_export_check_leaves_no_bundle_when_graphs_fail(tiny_checkpoint, tmp_path):
    """export_bundle + the s2s-export hook: a graph broken inside the temporary bundle (before the
    hook verifies it) makes the export fail and leaves nothing at the target."""
    from seq2seq_export.verify import export_check

    def break_then_check(tmp: Path) -> None:
        edit_onnx(tmp, perturb_largest_weight)
        export_check(tmp)

    out = tmp_path / "bundle"
    with pytest.raises(VerificationFailed, match="no bundle written: .*teacher_forced\\[onnx\\]"):
        export_bundle(tiny_checkpoint, out, exporter="legacy", verify=break_then_check)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert load_bundle(export_bundle(tiny_checkpoint, out, exporter="legacy", verify=export_check)).formats


def test_float64_budget_passes_float32_rounding_that_misses_atol(lively_bundle):
    # An atol far below float32 rounding: the strict comparison with eager fails on onnxruntime's
    # rounding, and the float64 budget (export no further from exact than 8x eager) passes it.
    strict = verify(lively_bundle, samples=SAMPLES, atol=1e-9, rtol=0.0, exact_factor=0.0)
    assert ("values.decoder_step", "onnx") in failed(strict)
    assert "outside tolerance" in checks(strict)["values.decoder_step", "onnx"].detail
    budget = verify(lively_bundle, samples=SAMPLES, atol=1e-9, rtol=0.0, exact_factor=8.0)
    assert budget.passed, format_report(budget)
    assert "from float64" in checks(budget)["values.decoder_step", "onnx"].figure
    assert budget.exact_factor == 8.0 and json.loads(budget.to_json())["exact_factor"] == 8.0


def test_negative_exact_factor_is_a_config_error(lively_bundle):
    with pytest.raises(ConfigError, match="exact_factor"):
        verify(lively_bundle, samples=2, exact_factor=-1.0)
