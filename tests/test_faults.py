"""Fault tests: SIGKILL at every step of `s2s-export --force`, a full disk, a read-only directory.

Real processes on real files. The full and read-only filesystems are small tmpfs mounts, which
need root (CI runs the tests as root): where mounting is not allowed these tests FAIL with a
message that says so; S2S_NO_MOUNT_TESTS=1 turns that into a skip (e.g. on a laptop).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import make_checkpoint
from test_seed import write_seed_model

from seq2seq_export.manifest import load_bundle


@dataclass
class Run:
    pid: int
    rc: int
    stdout: str
    stderr: str


def _run(*args, kill_at: str | None = None, prelude: str = "") -> Run:
    """`python -m seq2seq_export ARGS` in a fresh process; kill_at sets the fsutil SIGKILL hook;
    prelude is Python run before the CLI (to stand in for a system without the exchange)."""
    env = {k: v for k, v in os.environ.items() if k != "S2S_TEST_KILL_AT"}
    if kill_at:
        env["S2S_TEST_KILL_AT"] = kill_at
    code = f"{prelude}\nfrom seq2seq_export.cli import main\nmain(prog_name='s2s')"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = proc.communicate(timeout=300)
    return Run(proc.pid, proc.returncode, stdout, stderr)


def _export(ckpt: Path, out: Path, max_len: int, *extra: str, kill_at: str | None = None, prelude: str = "") -> Run:
    args = ["export", "--checkpoint", ckpt, "--out", out, "--exporter", "legacy", "--no-verify", "--max-len", max_len]
    return _run(*args, *extra, kill_at=kill_at, prelude=prelude)


def _names(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def _removed(d: Path, name: str, pid: int) -> str:
    return f"{d / f'.{name}.{pid}.tmp'}: removed, left by a killed run (pid {pid})\n"


# (step, whether the new bundle is at --out when the process dies there, whether a leftover is left)
FORCE_STEPS = [
    ("file-written", False, True),  # the first graph file of the new bundle written
    ("dir-complete", False, True),  # the new bundle complete and synced, not yet in place
    ("exchanged", True, True),  # the two swapped: the old one under the temporary name
    ("old-removed", True, False),  # the old one deleted, just before returning
]


def test_sigkill_at_every_step_of_force_leaves_a_complete_bundle(tmp_path):
    ckpt = make_checkpoint(tmp_path / "ck.pt")
    root = tmp_path / "out"
    out = root / "bundle"
    assert _export(ckpt, out, 10).rc == 0
    current, left_by = 10, None
    for max_len, (step, replaced, leaves) in enumerate(FORCE_STEPS, start=11):
        r = _export(ckpt, out, max_len, "--force", kill_at=step)
        assert r.rc == -signal.SIGKILL, (step, r.stderr)
        # This run first removed the previous run's leftover, and said so in one line.
        assert r.stderr == (_removed(root, "bundle", left_by) if left_by else ""), step
        current = max_len if replaced else current
        assert load_bundle(out).max_len == current, step  # complete: every sha256 checks out
        assert _names(root) == sorted(["bundle"] + ([f".bundle.{r.pid}.tmp"] if leaves else [])), step
        left_by = r.pid if leaves else None
    r = _export(ckpt, out, 99, "--force")
    assert r.rc == 0 and load_bundle(out).max_len == 99 and _names(root) == ["bundle"]
    assert r.stderr == (_removed(root, "bundle", left_by) if left_by else "")


NO_EXCHANGE = """
import errno
from seq2seq_export import fsutil
def _unavailable(a, b):
    raise OSError(errno.ENOSYS, "renameat2 is not available", str(a))
fsutil._exchange = _unavailable
"""


def test_without_the_exchange_a_kill_between_the_renames_is_repaired_by_the_next_run(tmp_path):
    ckpt = make_checkpoint(tmp_path / "ck.pt")
    out = tmp_path / "bundle"
    assert _export(ckpt, out, 10).rc == 0
    r = _export(ckpt, out, 11, "--force", prelude=NO_EXCHANGE)
    assert r.rc == 0 and load_bundle(out).max_len == 11 and _names(tmp_path) == ["bundle", "ck.pt"]
    killed = _export(ckpt, out, 12, "--force", kill_at="old-moved", prelude=NO_EXCHANGE)
    assert killed.rc == -signal.SIGKILL
    # The documented window of the fallback: --out is missing, the old bundle is kept aside.
    assert not out.exists() and load_bundle(tmp_path / f".bundle.{killed.pid}.old").max_len == 11
    r = _export(ckpt, out, 13, prelude=NO_EXCHANGE)
    assert r.rc == 2 and "already exists; pass --force" in r.stderr  # the old bundle is back at --out
    assert r.stderr.splitlines()[:2] == [
        f"{out}: restored from .bundle.{killed.pid}.old, moved aside by a killed run (pid {killed.pid})",
        _removed(tmp_path, "bundle", killed.pid).strip(),
    ]
    assert load_bundle(out).max_len == 11 and _names(tmp_path) == ["bundle", "ck.pt"]


@pytest.mark.parametrize("step", ["file-written", "file-complete"])
def test_a_killed_import_leaves_the_old_checkpoint_and_the_next_one_cleans_up(step, tmp_path):
    _, sd, src, tgt = write_seed_model(tmp_path / "seed", layers=1)
    args = ["import", sd, "--src-vocab", src, "--tgt-vocab", tgt, "--out", tmp_path / "ck.pt"]
    (tmp_path / "ck.pt").write_bytes(b"old")
    killed = _run(*args, kill_at=step)
    assert killed.rc == -signal.SIGKILL and (tmp_path / "ck.pt").read_bytes() == b"old"
    assert f".ck.pt.{killed.pid}.tmp" in _names(tmp_path)
    assert _run(*args).rc == 0 and _names(tmp_path) == ["ck.pt", "seed"]


# --- full and read-only filesystems ---------------------------------------------------------------


@contextlib.contextmanager
def _tmpfs(path: Path, options: str) -> Iterator[Path]:
    path.mkdir()
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=False, capture_output=True, text=True
        )
        problem = proc.stderr.strip() if proc.returncode else None
    except FileNotFoundError:
        problem = "no mount command"
    if problem:
        message = (
            f"cannot mount a tmpfs ({problem}): the full-disk and read-only tests need root and mount "
            "(CI runs them as root); set S2S_NO_MOUNT_TESTS=1 to skip them"
        )
        (pytest.skip if os.environ.get("S2S_NO_MOUNT_TESTS") == "1" else pytest.fail)(message)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def _fill(d: Path) -> None:
    """Write a file until the filesystem is full."""
    with open(d / "filler", "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)


def _one_line_error(r: Run, path: str, reason: str, advice: str) -> None:
    assert r.rc == 2, r.stderr
    assert re.fullmatch(f"Error: {path}: cannot write \\({reason}\\); {advice}\n", r.stderr), r.stderr


FULL = ("No space left on device", "free space or choose another")
READ_ONLY = ("Read-only file system", "choose a writable")


@pytest.mark.parametrize("force", [False, True], ids=["new", "force"])
def test_export_into_a_full_filesystem_is_one_line_and_leaves_nothing(force, tmp_path):
    ckpt = make_checkpoint(tmp_path / "ck.pt")
    with _tmpfs(tmp_path / "fs", "size=64k") as fs:
        out = fs / "bundle"
        if force:  # a smaller bundle that fits, to be replaced by one that does not
            assert _export(ckpt, out, 5, "--format", "onnx").rc == 0
        before = {p.name: p.read_bytes() for p in out.iterdir()} if force else None
        r = _export(ckpt, out, 6, *(["--force"] if force else []))
        _one_line_error(r, re.escape(str(out)) + r"/[\w.]+", FULL[0], FULL[1] + " --out")
        assert _names(fs) == (["bundle"] if force else [])  # no temp folder
        if force:
            assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def _writers(tmp_path: Path, bundle: Path, d: Path) -> dict[str, tuple[list, str, str]]:
    """{command: (arguments, the path its error names (a regex), the option named in the advice)}"""
    _, sd, src, tgt = write_seed_model(tmp_path / "seed", layers=1)
    ckpt = make_checkpoint(tmp_path / "ck.pt")

    def file_in(name: str) -> str:
        return re.escape(str(d / name)) + r"(/[\w.]+)?"

    return {
        "export": (
            ["export", "--checkpoint", ckpt, "--out", d / "bundle", "--exporter", "legacy", "--no-verify"],
            file_in("bundle"),
            "--out",
        ),
        "import": (
            ["import", sd, "--src-vocab", src, "--tgt-vocab", tgt, "--out", d / "new" / "ck.pt"],
            file_in("new"),
            "--out",
        ),
        "train": (
            [
                "train",
                "--preset",
                "toy",
                "--emb-dim",
                "8",
                "--hidden-dim",
                "16",
                "--batch-size",
                "512",
                "--max-steps",
                "1",
                "--quiet",
                "--out",
                d / "run",
            ],
            file_in("run"),
            "--out",
        ),
        "verify": (
            ["verify", "--bundle", bundle, "--samples", "2", "--backends", "onnx", "--report", d / "v.json"],
            file_in("v.json"),
            "--report",
        ),
        "bench": (
            [
                "bench",
                "--bundle",
                bundle,
                "--backends",
                "onnx",
                "--batch-sizes",
                "1",
                "--samples",
                "2",
                "--repeat",
                "1",
                "--no-load-probe",
                "--report",
                d / "b.json",
            ],
            file_in("b.json"),
            "--report",
        ),
    }


COMMANDS = ["export", "import", "train", "verify", "bench"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_writer_into_a_full_filesystem_is_one_line_and_leaves_nothing(command, tiny_bundle, tmp_path):
    with _tmpfs(tmp_path / "fs", "size=64k") as fs:
        _fill(fs)
        args, path, option = _writers(tmp_path, tiny_bundle, fs)[command]
        _one_line_error(_run(*args), path, FULL[0], f"{FULL[1]} {option}")
        assert _names(fs) == ["filler"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_writer_into_a_read_only_directory_is_one_line(command, tiny_bundle, tmp_path):
    with _tmpfs(tmp_path / "fs", "ro,size=64k") as fs:  # root ignores permission bits; a read-only mount does not
        args, path, option = _writers(tmp_path, tiny_bundle, fs)[command]
        _one_line_error(_run(*args), path, READ_ONLY[0], f"{READ_ONLY[1]} {option}")
        assert _names(fs) == []


def test_force_onto_a_read_only_bundle_is_one_line_and_keeps_it(tmp_path):
    ckpt = make_checkpoint(tmp_path / "ck.pt")
    with _tmpfs(tmp_path / "fs", "size=256k") as fs:
        out = fs / "bundle"
        assert _export(ckpt, out, 5).rc == 0
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
        r = _export(ckpt, out, 6, "--force")
        _one_line_error(r, re.escape(str(out)), READ_ONLY[0], READ_ONLY[1] + " --out")
        assert load_bundle(out).max_len == 5 and _names(fs) == ["bundle"]


def test_a_leftover_on_a_read_only_filesystem_is_reported_not_hidden(tmp_path):
    ckpt = make_checkpoint(tmp_path / "ck.pt")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True, text=True
    )
    leftover = f".bundle.{int(dead.stdout)}.tmp"
    with _tmpfs(tmp_path / "fs", "size=64k") as fs:
        (fs / leftover).mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(fs)], check=True)
        r = _export(ckpt, fs / "bundle", 5)
        assert r.rc == 2 and r.stderr.splitlines() == [
            f"{fs / leftover}: left by a killed run (pid {int(dead.stdout)}), could not be removed",
            f"Error: {fs / 'bundle'}: cannot write (Read-only file system); choose a writable --out",
        ]
        assert _names(fs) == [leftover]
