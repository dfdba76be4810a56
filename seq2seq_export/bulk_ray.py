"""The Ray engine of s2s-bulk: Ray Data reads the inputs, a pool of actors translates, the driver writes.

The pipeline is bulk.py's, spread out:
- reading: one Ray task per input file, pinned to the driver's node (the inputs need only be there),
  yields blocks of bulk.InRow (bulk.read_rows, lines.chunked: bounded memory whatever the file);
- translating: `num_workers` actors, each loading the bundle once with the onnx backend. The bundle's
  files travel through Ray's object store, so the other nodes need only the package installed;
- writing: the driver streams the translated rows back and writes them with bulk.write_outputs,
  which checks that every line of every file comes back exactly once. Ray Data keeps block order
  (preserve_order), so rows arrive in file and line order and the driver holds one block at a time.

Faults: an actor that dies (crash, kill, lost node) is restarted (max_restarts) and the batch it held
is run again (max_task_retries), at most RAY_TASK_RETRIES times, so a batch that kills every worker
ends the run with one line instead of looping. A batch run twice gives its rows once: the row check
in write_outputs would catch anything else. S2S_TEST_BULK_KILL_ONCE=PATH makes the first actor call
that finds PATH missing create it and kill its own process: the fault test's hook.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .bulk import (
    BulkOptions,
    BulkResult,
    InRow,
    Job,
    Log,
    OutRow,
    Progress,
    read_rows,
    translate_rows,
    write_outputs,
)
from .constants import MANIFEST_FILE
from .errors import ConfigError, Seq2SeqExportError, first_line
from .lines import chunked
from .manifest import Bundle, file_records

RAY_TASK_RETRIES = 3  # runs of a batch whose actor died, after the first
# Lines per actor call: enough to fill backend batches, small enough that a big file spreads over every
# actor and that a block stays bounded (lines hold at most MAX_LINE_CHARS characters each).
RAY_BLOCK_LINES = 256
PROBE_TIMEOUT_S = 10  # to reach a cluster's GCS port before joining it
KILL_ONCE_ENV = "S2S_TEST_BULK_KILL_ONCE"
INSTALL_HINT = "pip install 'seq2seq-export[ray]'"


class RayRunFailed(Seq2SeqExportError):
    """The Ray run itself failed (cluster unreachable, a batch out of retries)."""


def require_ray() -> Any:
    """The ray module with Ray Data, or a one-line ConfigError naming the extra to install."""
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise ConfigError(
            f"--engine ray needs Ray Data, which is not installed ({first_line(e)}): {INSTALL_HINT}"
        ) from None
    return ray


def bundle_files(bundle: Bundle) -> dict[str, bytes]:
    """The manifest and every file it lists, read and checked: what an actor needs to load the bundle."""
    files = {MANIFEST_FILE: (bundle.root / MANIFEST_FILE).read_bytes()}
    for where, entry in file_records(bundle.manifest):
        files[entry["path"]] = bundle.read_listed(entry, where)
    return files


def unpack_bundle(files: Any, prefix: str) -> tempfile.TemporaryDirectory:
    """bundle_files' files (an ObjectRef to them) written into a new private directory. Remove it once
    the translator is loaded (`with`): the onnx backend holds the graphs in memory, and an actor that
    Ray kills never runs a finalizer."""
    import ray

    into = tempfile.TemporaryDirectory(prefix=prefix)
    for rel, data in ray.get(files).items():
        path = Path(into.name, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return into


class Worker:
    """A Ray Data actor: unpacks the bundle into a private directory once, then translates blocks."""

    def __init__(self, files: list, names: Sequence[str], options: BulkOptions, kill_once: str | None) -> None:
        with unpack_bundle(files[0], "s2s-bulk-") as root:  # files: [ObjectRef], so Ray Data leaves it unresolved
            self.translator = options.translator(root)
        self.names, self.truncate, self.kill_once = names, options.truncate, kill_once

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        if self.kill_once:
            _die_once(self.kill_once)
        rows = [InRow(*r) for r in _rows(batch, InRow)]
        return _columns(translate_rows(self.translator, self.names, rows, self.truncate), OutRow)


def _die_once(marker: str) -> None:
    try:
        with open(marker, "x"):
            pass
    except FileExistsError:
        return
    os._exit(1)


def _read_files(batch: dict[str, Any], kind: str) -> Iterator[dict[str, Any]]:
    """Ray Data stage: (file, path) rows -> blocks of InRows, streamed."""
    for file, path in zip(batch["file"], batch["path"]):
        for block in chunked(read_rows(int(file), str(path), kind)):
            yield _columns(block, InRow)


def _columns(rows: Sequence[NamedTuple], kind: type[InRow | OutRow]) -> dict[str, Any]:
    """Rows -> a Ray Data batch; text as object arrays (never fixed-width: one long line would inflate them all)."""
    import numpy as np

    return {
        f: np.array([getattr(r, f) for r in rows], dtype=object if f in ("text", "output", "note", "error") else None)
        for f in kind._fields
    }


def _rows(batch: dict[str, Any], kind: type[InRow | OutRow]) -> Iterator[tuple]:
    """A Ray Data batch -> plain Python tuples of `kind`'s fields, in order."""
    columns = [batch[f].tolist() for f in kind._fields]
    return zip(*columns)


def connect(ray: Any, address: str | None, cpus: int, quiet: bool = False, log_to_driver: bool = False) -> bool:
    """Join the cluster at `address`, or start a local Ray with `cpus` CPUs (never one found running);
    True when this call started or joined it (so the caller shuts it down), False when Ray was already
    initialized. log_to_driver: the workers' output comes to this process's stderr."""
    if ray.is_initialized():
        return False
    common = {"log_to_driver": log_to_driver, "logging_level": logging.ERROR if quiet else logging.WARNING}
    try:
        if address:
            _probe(address)
            ray.init(address=address, **common)
        else:
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, **common)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise RayRunFailed(
            f"cannot start or join {where} ({first_line(e)}): check --ray-address / RAY_ADDRESS "
            "(`ray status` on the head node)"
        ) from None
    return True


def _probe(address: str) -> None:
    """A HOST:PORT address that nothing answers on fails now: ray.init would retry it for minutes."""
    host, sep, port = address.rpartition(":")
    if "://" in address or not sep or not port.isdigit():
        return  # ray://..., auto, local: Ray's own forms, left to ray.init
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        raise ConnectionError(f"nothing answers at {address} ({e.strerror or type(e).__name__})") from None


def run_ray(
    jobs: Sequence[Job],
    bundle: Bundle,
    options: BulkOptions,
    log: Log,
    progress: Progress | None = None,
    *,
    address: str | None = None,
    num_workers: int = 2,
    quiet: bool = False,
) -> BulkResult:
    """Translate every job on Ray Data; see the module docstring."""
    ray = require_ray()
    start = time.perf_counter()
    threads = options.threads or 1
    started = connect(ray, address, num_workers * threads + 1, quiet)
    logging.getLogger("ray.data").setLevel(logging.ERROR if quiet else logging.INFO)
    try:
        with warnings.catch_warnings():
            # Ray 2.60 (the pin) warns that ray_remote_args (max_restarts, max_task_retries below) go in
            # Ray 2.64, and has no other way to bound the retries of a batch whose actor died.
            warnings.simplefilter("ignore", DeprecationWarning)
            # It counts one block per input file, before the repartition splits them.
            warnings.filterwarnings("ignore", message="The minimum number of concurrent actors")
            ds = _dataset(
                ray,
                jobs,
                bundle,
                BulkOptions(options.batch_size, options.max_len, options.max_src_tokens, options.truncate, threads),
                num_workers,
                quiet,
            )
            rows = (
                OutRow(*r)
                for batch in ds.iter_batches(batch_size=None, batch_format="numpy")
                for r in _rows(batch, OutRow)
            )
            lines = write_outputs(jobs, rows, log, progress)
    except ray.exceptions.RayError as e:
        raise RayRunFailed(f"the Ray run failed: {first_line(e)}") from None
    finally:
        if started:
            ray.shutdown()
    return BulkResult(len(jobs), lines, time.perf_counter() - start)


def _dataset(ray: Any, jobs: Sequence[Job], bundle: Bundle, options: BulkOptions, num_workers: int, quiet: bool) -> Any:
    """The pipeline: read each file on this node, split into RAY_BLOCK_LINES blocks, translate on actors."""
    items = [{"file": i, "path": str(job.source.resolve())} for i, job in enumerate(jobs)]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    context = ds.context  # this dataset's own copy of the DataContext
    context.execution_options.preserve_order = True  # blocks come back in input order
    context.enable_progress_bars = not quiet
    context.print_on_execution_start = not quiet
    worker_args = {
        "files": [ray.put(bundle_files(bundle))],
        "names": [str(job.source) for job in jobs],
        "options": options,
        "kill_once": os.environ.get(KILL_ONCE_ENV),
    }
    return (
        ds.map_batches(
            _read_files,
            batch_size=1,
            fn_kwargs={"kind": bundle.text.src.tokenizer},
            label_selector={"ray.io/node-id": ray.get_runtime_context().get_node_id()},  # read on this node
        )
        .repartition(target_num_rows_per_block=RAY_BLOCK_LINES)
        .map_batches(  # Ray merges what a task yields: split
            Worker,
            batch_size=RAY_BLOCK_LINES,
            compute=ray.data.ActorPoolStrategy(size=num_workers),
            num_cpus=options.threads,
            fn_constructor_kwargs=worker_args,
            max_restarts=-1,
            max_task_retries=RAY_TASK_RETRIES,
        )
    )
