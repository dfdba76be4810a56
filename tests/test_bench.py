"""s2s-bench on the tiny bundle: the JSON's structure, the token check, bad options. No timing assertions."""
from __future__ import annotations

import json

import pytest
from bundle_edits import copy_bundle, rehash
from click.testing import CliRunner

from conftest import make_checkpoint
from seq2seq_export.bench.workload import decoder_steps, layer_flops, sequence_flops
from seq2seq_export.cli import main
from seq2seq_export.config import ModelConfig
from seq2seq_export.iospec import state_names
from seq2seq_export.model import Seq2Seq

BACKENDS = ("eager", "torchscript", "onnx")
ROW_FIELDS = {
    "backend", "batch_size", "seq_per_s", "tok_per_s", "latency_p50_ms", "latency_p90_ms", "gflops",
    "limit_fraction", "limit_fraction_cpu", "vs_eager", "vs_eager_b1", "cpu_share", "wall_s",
}


def _bench(bundle, json_path, *extra):
    args = ["bench", "--bundle", str(bundle), "--samples", "6", "--repeat", "1", "--report", str(json_path), *extra]
    return CliRunner().invoke(main, args)


def test_bench_json_covers_every_backend_and_batch_size(tiny_bundle, tmp_path):
    res = _bench(tiny_bundle, tmp_path / "bench.json", "--batch-sizes", "1,4")
    assert res.exit_code == 0, res.output
    assert "Token equality across backends: passed" in res.output
    out = json.loads((tmp_path / "bench.json").read_text())

    assert {(r["backend"], r["batch_size"]) for r in out["rows"]} == {(b, n) for b in BACKENDS for n in (1, 4)}
    for row in out["rows"]:
        assert set(row) == ROW_FIELDS
        assert row["seq_per_s"] > 0 and row["tok_per_s"] > 0 and row["gflops"] > 0
        assert row["latency_p90_ms"] >= row["latency_p50_ms"] > 0
        assert len(row["wall_s"]) == 1
    rows = {(r["backend"], r["batch_size"]): r for r in out["rows"]}
    for (name, b), row in rows.items():  # one repeat: each figure comes from this row's one wall time
        wall = row["wall_s"][0]
        assert row["seq_per_s"] == pytest.approx(6 / wall)
        assert row["vs_eager"] == pytest.approx(rows["eager", b]["wall_s"][0] / wall)
        assert row["vs_eager_b1"] == pytest.approx(rows["eager", 1]["wall_s"][0] / wall)

    assert out["gemm"]["gflops"] == max(out["gemm"]["per_size_gflops"].values()) > 0
    assert set(out["gemm"]["step_gemm_gflops"]) == {"1", "4"}
    assert out["gemm"]["threads"] == out["machine"]["threads"] == 1 and out["gemm"]["device"] == "cpu"
    machine = out["machine"]
    assert machine["cpu_model"] and machine["usable_cores"] >= 1
    assert machine["libraries"]["onnxruntime"] and machine["libraries"]["torch"]

    w = out["workload"]
    assert w["samples"] == 6 and w["src_tokens"] > 0 and 6 <= w["decoder_steps"] <= 6 * w["max_len"]
    assert w["gemm_flops"] > 0

    loads = {lr["backend"]: lr for lr in out["loads"]}
    assert set(loads) == set(BACKENDS)
    assert all(lr["load_s"] > 0 and lr["peak_rss_mb"] >= lr["rss_loaded_mb"] > 0 for lr in loads.values())
    assert loads["onnx"]["torch_imported"] is False and loads["eager"]["torch_imported"] is True

    assert out["tokens"] == {"passed": True, "runs_compared": 6, "mismatches": [], "same_across_batch_sizes": True}


def test_bench_fails_when_backends_disagree(tiny_bundle, tmp_path):
    """A bundle whose reference checkpoint holds other weights than its graphs: eager differs from onnx."""
    bundle = copy_bundle(tiny_bundle, tmp_path / "bundle")
    make_checkpoint(bundle / json.loads((bundle / "manifest.json").read_text())["reference"]["path"], seed=1)
    rehash(bundle)

    res = _bench(bundle, tmp_path / "bench.json", "--backends", "eager,onnx", "--batch-sizes", "2", "--no-load-probe")
    assert res.exit_code == 1
    assert res.output.count("\n") >= 1 and "Error: backends produced different tokens" in res.output
    out = json.loads((tmp_path / "bench.json").read_text())
    assert out["tokens"]["passed"] is False
    assert out["tokens"]["mismatches"][0].startswith("onnx batch 2 repeat 0:")
    assert out["loads"] == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backends", "onnx,onnx"], "backends must be distinct names"),
        (["--batch-sizes", "0"], "batch sizes must be positive"),
        (["--repeat", "0"], "repeat must be >= 1"),
        (["--data", "wiki"], "unknown --data 'wiki'"),
    ],
)
def test_bench_bad_options_exit_2_with_one_line(tiny_bundle, tmp_path, args, message):
    res = CliRunner().invoke(main, ["bench", "--bundle", str(tiny_bundle), *args])
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backends", "eager,tensorrt"], "'--backends': 'tensorrt' is not one of 'eager', 'torchscript', 'onnx'."),
        (["--backends", ","], "'--backends': the list is empty"),
        (["--batch-sizes", "1,x"], "'--batch-sizes': expected a comma-separated list, got '1,x'"),
        (["--device", "tpu"], "'--device': 'tpu' is not one of 'auto', 'cpu', 'cuda'."),
    ],
)
def test_bench_option_values_outside_their_choices_are_usage_errors(tiny_bundle, args, message):
    res = CliRunner().invoke(main, ["bench", "--bundle", str(tiny_bundle), *args])
    assert res.exit_code == 2 and res.stdout == "" and "Traceback" not in res.output
    assert res.stderr.splitlines()[-1] == f"Error: Invalid value for {message}"


def test_bench_json_prints_the_report_and_report_writes_it(tiny_bundle, tmp_path):
    res = _bench(tiny_bundle, tmp_path / "bench.json", "--backends", "onnx,torchscript", "--batch-sizes", "2",
                 "--no-load-probe", "--json")
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)
    assert printed == json.loads((tmp_path / "bench.json").read_text())
    assert {r["backend"] for r in printed["rows"]} == {"onnx", "torchscript"} and printed["tokens"]["passed"] is True


def test_bench_missing_bundle_is_one_line(tmp_path):
    res = CliRunner().invoke(main, ["bench", "--bundle", str(tmp_path / "nope")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1 and "not a bundle directory" in res.output


def test_sequence_flops_counts_encoder_tokens_and_decoder_steps():
    cfg = ModelConfig(src_vocab_size=10, tgt_vocab_size=7, emb_dim=4, hidden_dim=5, num_layers=2)
    assert layer_flops(cfg) == 2 * 3 * 5 * (4 + 5) + 2 * 3 * 5 * (5 + 5)
    assert sequence_flops(cfg, src_len=3, steps=4) == 3 * 570 + 4 * (570 + 2 * 5 * 7)


@pytest.mark.parametrize("variant", [
    dict(num_layers=2), dict(bidirectional_encoder=True, attention="bahdanau"),
    dict(num_layers=2, bidirectional_encoder=True, attention="bahdanau"), dict(attention="luong"),
    dict(attention="luong", attention_score="dot"), dict(bidirectional_encoder=True, attention="luong"),
    dict(num_layers=2, bidirectional_encoder=True, attention="bahdanau", encoder_hidden_dim=3),
])
def test_flop_model_matches_torch_flop_counter_on_every_gru_variant(variant):
    """torch's FlopCounterMode counts the matmuls the eager model really runs (its fused CPU GRU
    included; not its fused LSTM, hence GRU variants): the bench's FLOP model must agree exactly."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    cfg = ModelConfig(src_vocab_size=10, tgt_vocab_size=7, emb_dim=4, hidden_dim=5, **variant)
    model, src_len, steps = Seq2Seq(cfg).eval(), 6, 3
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        outputs = model.encode(torch.randint(4, 10, (1, src_len)), torch.tensor([src_len]))
        state = outputs
        for _ in range(steps):
            step = model.decode_step(torch.tensor([2]), *state)
            state = (*step[2 : 2 + len(state_names(cfg))], *outputs[len(state_names(cfg)):])
    assert counter.get_total_flops() == sequence_flops(cfg, src_len, steps)


def test_flop_model_counts_lstm_gates_and_its_final_cell_pass():
    cfg = ModelConfig(src_vocab_size=10, tgt_vocab_size=7, emb_dim=4, hidden_dim=5, rnn="lstm")
    # encoder: the fused LSTM and the final-cell recomputation, 2 * 4 * 5 * (4 + 5) each per token
    assert sequence_flops(cfg, src_len=3, steps=2) == 3 * 2 * 360 + 2 * (360 + 2 * 5 * 7)


def test_decoder_steps_include_the_eos_step_unless_max_len_was_hit():
    assert decoder_steps([[], [5, 6], [1, 2, 3]], max_len=3) == [1, 3, 3]


def test_bench_beam_size_reports_beam_rows_and_compares_n_best_lists(lively_bundle, tmp_path):
    res = _bench(lively_bundle, tmp_path / "bench.json", "--beam-size", "3", "--batch-sizes", "1,4", "--no-load-probe")
    assert res.exit_code == 0, res.output
    assert "N-best equality (same ids in order, scores within 0.0001 per token) across backends: passed" in res.output
    out = json.loads((tmp_path / "bench.json").read_text())
    assert out["config"]["beam_size"] == 3 and out["workload"]["search"] == "beam 3, n-best 3"
    assert {(r["backend"], r["batch_size"]) for r in out["rows"]} == {(b, n) for b in BACKENDS for n in (1, 4)}
    assert _bench(lively_bundle, tmp_path / "g.json", "--batch-sizes", "4", "--no-load-probe").exit_code == 0
    greedy = json.loads((tmp_path / "g.json").read_text())
    # a beam of 3 steps up to 3 rows per sequence where greedy steps one
    assert greedy["workload"]["decoder_steps"] < out["workload"]["decoder_steps"] <= 3 * 6 * out["workload"]["max_len"]
    assert out["workload"]["gemm_flops"] > greedy["workload"]["gemm_flops"]
    assert out["tokens"]["passed"] is True and out["tokens"]["runs_compared"] == 6


def test_bench_beam_fails_when_backends_disagree(tiny_bundle, tmp_path):
    bundle = copy_bundle(tiny_bundle, tmp_path / "bundle")
    make_checkpoint(bundle / json.loads((bundle / "manifest.json").read_text())["reference"]["path"], seed=1)
    rehash(bundle)
    res = _bench(bundle, tmp_path / "bench.json", "--backends", "eager,onnx", "--batch-sizes", "2", "--no-load-probe",
                 "--beam-size", "2")
    assert res.exit_code == 1 and "Error: backends produced different tokens" in res.output
    assert "N-best equality" in res.output
    assert json.loads((tmp_path / "bench.json").read_text())["tokens"]["mismatches"][0].startswith("onnx batch 2 repeat 0:")


def test_bench_beam_size_0_is_a_usage_error(tiny_bundle):
    res = CliRunner().invoke(main, ["bench", "--bundle", str(tiny_bundle), "--beam-size", "0"])
    assert res.exit_code == 2 and "Invalid value for '--beam-size': 0 is not in the range 1<=x<=4096." in res.stderr
