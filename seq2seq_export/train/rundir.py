"""A run's output directory: its files, and no silent overwrite of an earlier run."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from ..constants import MANIFEST_FILE
from ..errors import ConfigError, OutputError

BEST_FILE, LAST_FILE, METRICS_FILE = "checkpoint.pt", "last.pt", "metrics.json"
RUN_FILES = (BEST_FILE, LAST_FILE, METRICS_FILE)  # any one of them means the directory holds a run
BUNDLE_DIR = "bundle"  # where s2s-export puts a bundle of OUT/checkpoint.pt by default


def existing_run(out: Path) -> list[str]:
    """The run files present in `out`."""
    return [name for name in RUN_FILES if (out / name).exists()]


def check_run_dir(out: Path, resume: bool, force: bool) -> None:
    """Refuse to start a new run over an earlier one unless told to replace it (before any work)."""
    if resume and force:
        raise ConfigError("--resume continues the run in --out and --force replaces it: pass one of them")
    found = existing_run(out)
    if found and not resume and not force:
        raise ConfigError(
            f"{out} already holds a run ({', '.join(found)}): pass --out DIR for a new run, "
            f"--resume to continue it, or --force to replace it"
        )


def clear_run(out: Path, force: bool) -> None:
    """With force, delete the earlier run's files and its default bundle (OUT/bundle, when it holds a
    manifest), which would otherwise stay out of step with the new checkpoint."""
    if not force:
        check_run_dir(out, resume=False, force=False)  # a run may have appeared meanwhile
        return
    try:
        for name in RUN_FILES:
            with contextlib.suppress(FileNotFoundError):
                (out / name).unlink()
        bundle = out / BUNDLE_DIR
        if (bundle / MANIFEST_FILE).is_file() and not bundle.is_symlink():
            shutil.rmtree(bundle)
    except OSError as e:
        raise OutputError(
            f"{out}: cannot replace the earlier run ({e.strerror or e}); check the directory's permissions"
        ) from None
