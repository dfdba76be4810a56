"""MkDocs hook: serve the package's manifest JSON Schema at <site>/manifest.schema.json.

The file is read from seq2seq_export/ at build time, so the published schema is always the one the
loader validates against.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

SCHEMA = Path(__file__).resolve().parent.parent / "seq2seq_export" / "manifest.schema.json"


def on_files(files: Files, config) -> Files:
    files.append(File.generated(config, "manifest.schema.json", abs_src_path=str(SCHEMA)))
    return files
