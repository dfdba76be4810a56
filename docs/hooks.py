"""MkDocs hooks: files the site serves that are made from the repository at build time.

- <site>/manifest.schema.json: the package's manifest JSON Schema, read from seq2seq_export/, so the
  published schema is always the one the loader validates against.
- <site>/img/*.svg: the Results page's plots, drawn by scripts/plot_results.py from the runs' JSON in
  docs/data/, so a plot always shows the data next to it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "seq2seq_export" / "manifest.schema.json"


def on_files(files: Files, config) -> Files:
    files.append(File.generated(config, "manifest.schema.json", abs_src_path=str(SCHEMA)))
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from plot_results import render
    finally:
        sys.path.pop(0)
    try:
        plots = render()
    except ModuleNotFoundError as e:  # matplotlib, imported when the first plot is drawn
        raise PluginError(f"the Results plots need {e.name}: pip install 'seq2seq-export[docs]'") from None
    for name, svg in plots.items():
        files.append(File.generated(config, f"img/{name}", content=svg))
    return files
