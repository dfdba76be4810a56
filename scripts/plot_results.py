"""The Results page's plots, drawn from the JSON of real runs in docs/data/ (how each file was made: docs/results.md).

    .venv/bin/python scripts/plot_results.py [--data docs/data] [--out DIR]

- training-<preset>.json: a run's metrics.json (s2s-train --out DIR) -> validation WER per epoch
- bench-<name>.json: s2s-bench --report FILE -> words/s per backend and batch size
- alignment-<name>.json: one `s2s-translate --json --attention-out` line -> the attention heat map
- beam-<name>.json: benchmarks/beam_quality.py --json FILE -> test WER per beam size and preset

The docs build calls `render` (docs/hooks.py), so the site's plots are always these files' plots;
this command writes the same SVGs to --out to look at them without a build. Needs matplotlib
(`pip install 'seq2seq-export[docs]'`).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "docs" / "data"
SVG_META = {"Date": None, "Creator": None}  # no build date or version in the file: same data, same bytes


def _figure(width: float = 6.4, height: float = 3.6) -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    # stable element ids; text as <text> (searchable, small), not glyph paths
    plt.rcParams.update({"svg.hashsalt": "seq2seq-export", "svg.fonttype": "none", "font.size": 9})
    return plt.subplots(figsize=(width, height), layout="constrained")


def _svg(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata=SVG_META)
    plt.close(fig)
    return buf.getvalue()


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def plot_training(runs: dict[str, dict]) -> bytes:
    """Validation WER per epoch, one line per preset, the test WER of the kept checkpoint in the legend."""
    fig, ax = _figure()
    for preset, metrics in sorted(runs.items()):
        history = metrics["history"]
        test_wer = 1 - metrics["test"]["exact_match"]
        ax.plot(
            [r["epoch"] for r in history],
            [100 * (1 - r["exact_match"]) for r in history],
            marker="o",
            markersize=3,
            label=f"{preset} ({metrics['epochs']:.1f} epochs; test WER {test_wer:.2%})",
        )
    ax.set(xlabel="epoch", ylabel="validation WER (%)", title="cmudict presets: validation WER per epoch")
    ax.grid(alpha=0.3)
    ax.legend()
    return _svg(fig)


def plot_bench(result: dict) -> bytes:
    """Words/s per backend (one group per batch size), from one s2s-bench run."""
    rows = result["rows"]
    batches = sorted({r["batch_size"] for r in rows})
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    speed = {(r["backend"], r["batch_size"]): r["seq_per_s"] for r in rows}
    fig, ax = _figure()
    width = 0.8 / len(backends)
    for i, backend in enumerate(backends):
        xs = [b + (i - (len(backends) - 1) / 2) * width for b in range(len(batches))]
        bars = ax.bar(xs, [speed.get((backend, b), 0.0) for b in batches], width, label=backend)
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    machine = result["machine"]
    ax.set_xticks(range(len(batches)), [f"batch {b}" for b in batches])
    ax.set(
        ylabel="words/s",
        title=f"s2s-bench: words/s per backend, {machine['threads']} thread(s), {result['workload']['data']} words",
    )
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return _svg(fig)


def source_tokens(text: str, columns: int, eos: str = "</s>") -> list[str]:
    """The source tokens the attention's columns stand for: the input's characters (character models,
    like cmudict's) or words, then <eos> when the bundle appends it."""
    for tokens in (list(text), text.split()):
        if columns - len(tokens) in (0, 1):
            return tokens + [eos] * (columns - len(tokens))
    return [str(i) for i in range(columns)]


def plot_alignment(record: dict) -> bytes:
    """One translation's attention: a row per output token, a column per source token the model read."""
    weights = record["attention"]
    source = source_tokens(record["input"], len(weights[0]))
    target = record["output"].split()
    fig, ax = _figure(0.45 * len(source) + 1.5, 0.35 * len(target) + 1.2)
    ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)), source)
    ax.set_yticks(range(len(target)), target)
    ax.set(
        xlabel="source token",
        ylabel="output token",
        title=f"attention weights: {record['input']} -> {record['output']}",
    )
    return _svg(fig)


def plot_beam(rows: list[dict]) -> bytes:
    """Test WER against beam size (1 = greedy), one line per preset."""
    fig, ax = _figure(6.4, 3.2)
    for preset in dict.fromkeys(r["preset"] for r in rows):
        mine = [r for r in rows if r["preset"] == preset]
        ax.plot([r["beam_size"] for r in mine], [100 * r["wer"] for r in mine], marker="o", label=preset)
        for r in mine:
            ax.annotate(
                f"{r['wer']:.2%}",
                (r["beam_size"], 100 * r["wer"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    ax.set_xscale("log", base=2)
    ax.margins(x=0.12)  # room for the last point's label
    beams = sorted({r["beam_size"] for r in rows})
    ax.set_xticks(beams, [str(b) for b in beams])
    penalty = rows[0]["length_penalty"]
    ax.set(
        xlabel="beam size (1 = greedy)",
        ylabel="test WER (%)",
        title=f"beam search on the cmudict test split (length penalty {penalty:g})",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    return _svg(fig)


def render(data: Path = DATA) -> dict[str, bytes]:
    """Every plot the data folder has inputs for, by file name ('training-wer.svg', 'bench-<name>.svg', ...)."""
    plots: dict[str, bytes] = {}
    runs = {p.stem.removeprefix("training-"): _load(p) for p in sorted(data.glob("training-*.json"))}
    if runs:
        plots["training-wer.svg"] = plot_training(runs)
    kinds: dict[str, Callable[[Any], bytes]] = {"bench": plot_bench, "alignment": plot_alignment, "beam": plot_beam}
    for kind, plot in kinds.items():
        for path in sorted(data.glob(f"{kind}-*.json")):
            plots[f"{path.stem}.svg"] = plot(_load(path))
    return plots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder of the runs' JSON [default: docs/data]")
    ap.add_argument("--out", type=Path, default=Path("site-plots"), help="folder for the SVGs [default: site-plots]")
    args = ap.parse_args()
    try:
        plots = render(args.data)
    except ModuleNotFoundError:
        sys.exit("Error: matplotlib is missing: pip install 'seq2seq-export[docs]'")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, svg in plots.items():
        (args.out / name).write_bytes(svg)
        print(args.out / name)


if __name__ == "__main__":
    main()
