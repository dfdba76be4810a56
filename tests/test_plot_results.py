"""The Results page's plots (scripts/plot_results.py), drawn from the JSON real commands write: a trained
run's metrics.json, an `s2s-bench --report` file and an `s2s-translate --json --attention-out` line."""

from __future__ import annotations

import json
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from click.testing import CliRunner

from seq2seq_export.cli import main
from seq2seq_export.runtime import Translator

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "benchmarks")]
from beam_quality import evaluate  # noqa: E402
from plot_results import render, source_tokens  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


def texts(svg: bytes) -> list[str]:
    """Every text element of the SVG (matplotlib writes labels as <text> with svg.fonttype none)."""
    return ["".join(t.itertext()) for t in ET.fromstring(svg).iter(f"{SVG}text")]


def test_plots_from_real_runs_json(toy_checkpoint, tiny_bundle, attention_bundle, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(toy_checkpoint.parent / "metrics.json", data / "training-toy.json")
    runner = CliRunner()
    bench = ["bench", "--bundle", str(tiny_bundle), "--backends", "eager,onnx", "--batch-sizes", "1,4"]
    bench += ["--samples", "6", "--repeat", "1", "--no-load-probe", "--report", str(data / "bench-tiny.json")]
    assert runner.invoke(main, bench).exit_code == 0
    translated = runner.invoke(
        main, ["translate", "--bundle", str(attention_bundle), "--json", "--attention-out", "3 1 4"]
    )
    assert translated.exit_code == 0, translated.output
    (data / "alignment-tiny.json").write_text(translated.stdout)
    words, refs = ["3 1 4", "2 7"], [["4", "1", "3"], ["7", "2"]]  # beam_quality.py's rows, on the tiny bundle
    translator = Translator.from_bundle(tiny_bundle, "onnx", batch_size=64, threads=1)
    beam = [{"preset": "tiny", **evaluate(translator, words, refs, k, 1.0)} for k in (1, 2, 4)]
    (data / "beam-tiny.json").write_text(json.dumps(beam))

    plots = render(data)
    assert sorted(plots) == ["alignment-tiny.svg", "beam-tiny.svg", "bench-tiny.svg", "training-wer.svg"]
    beam_text = texts(plots["beam-tiny.svg"])
    assert {"tiny", "1", "2", "4"} <= set(beam_text) and f"{beam[2]['wer']:.2%}" in beam_text
    history = json.loads((data / "training-toy.json").read_text())["history"]
    training = texts(plots["training-wer.svg"])
    assert "validation WER (%)" in training and any(t.startswith("toy (3.0 epochs; test WER ") for t in training)
    assert len(history) == 3  # the toy fixture validates after each of its 3 epochs: three points plotted
    bench_text = texts(plots["bench-tiny.svg"])
    rows = json.loads((data / "bench-tiny.json").read_text())["rows"]
    assert {"eager", "onnx", "batch 1", "batch 4"} <= set(bench_text)
    assert f"{rows[0]['seq_per_s']:.0f}" in bench_text  # the bars are labelled with the run's words/s
    record = json.loads(translated.stdout)
    alignment = texts(plots["alignment-tiny.svg"])
    assert {"3", "1", "4"} <= set(alignment) and set(record["output"].split()) <= set(alignment)
    assert render(data) == plots  # same data, same bytes: no build date in the files


def test_source_tokens_are_characters_or_words_then_eos():
    assert source_tokens("cat", 4) == ["c", "a", "t", "</s>"]
    assert source_tokens("3 1 4", 3) == ["3", "1", "4"]
    assert source_tokens("3 1 4", 4) == ["3", "1", "4", "</s>"]
    assert source_tokens("ab", 7) == [str(i) for i in range(7)]
