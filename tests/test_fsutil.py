"""fsutil: atomic files and directories, the directory exchange, leftover cleanup, write errors."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seq_export import fsutil
from seq2seq_export.errors import OutputError
from seq2seq_export.fsutil import atomic_dir, atomic_file, clean_leftovers, output_error, replace_dir, write_bytes


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True, text=True
    )
    return int(proc.stdout)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_atomic_file_replaces_whole_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "report.json"
    with atomic_file(target) as tmp:
        assert tmp.name == f".report.json.{os.getpid()}.tmp" and tmp.parent == target.parent
        tmp.write_text("one")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "one" and sorted(p.name for p in target.parent.iterdir()) == ["report.json"]


def test_a_failed_write_removes_the_directories_it_made(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(RuntimeError), atomic_file(tmp_path / "a" / "b" / "c" / "f") as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert _names(tmp_path) == ["a"] and _names(tmp_path / "a") == []


def _names(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_atomic_dir_moves_a_complete_directory_in(tmp_path):
    with atomic_dir(tmp_path / "b") as tmp:
        write_bytes(tmp / "x", b"1")
        assert not (tmp_path / "b").exists()
    assert _tree(tmp_path / "b") == {"x": b"1"} and sorted(p.name for p in tmp_path.iterdir()) == ["b"]


@pytest.mark.parametrize("use_libc", [True, False], ids=["libc", "syscall"])
def test_renameat2_exchanges_two_directories(tmp_path, use_libc):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, content in ((a, b"A"), (b, b"B")):
        d.mkdir()
        (d / "f").write_bytes(content)
    renameat2 = fsutil._renameat2(use_libc)
    assert renameat2(fsutil._AT_FDCWD, os.fsencode(a), fsutil._AT_FDCWD, os.fsencode(b), fsutil._RENAME_EXCHANGE) == 0
    assert (a / "f").read_bytes() == b"B" and (b / "f").read_bytes() == b"A"
    fsutil._exchange(a, b)
    assert (a / "f").read_bytes() == b"A" and (b / "f").read_bytes() == b"B"


def test_exchange_error_is_an_oserror_naming_both(tmp_path):
    with pytest.raises(OSError) as e:
        fsutil._exchange(tmp_path / "missing", tmp_path)
    assert e.value.errno == errno.ENOENT and e.value.filename2 == str(tmp_path)


def test_replace_dir_exchanges_and_deletes_the_old(tmp_path):
    old, new = tmp_path / "b", tmp_path / ".b.1.tmp"
    old.mkdir(), new.mkdir()
    (old / "old").write_text("o"), (new / "new").write_text("n")
    replace_dir(new, old)
    assert _tree(old) == {"new": b"n"} and sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_replace_dir_falls_back_to_two_renames_without_the_exchange(tmp_path, monkeypatch):
    def unavailable(a, b):
        raise OSError(errno.EINVAL, "Invalid argument", str(a))

    monkeypatch.setattr(fsutil, "_exchange", unavailable)
    with atomic_dir(tmp_path / "b") as tmp:
        write_bytes(tmp / "v", b"1")
    with atomic_dir(tmp_path / "b", replace=True) as tmp:
        write_bytes(tmp / "v", b"2")
    assert _tree(tmp_path / "b") == {"v": b"2"} and sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_replace_dir_passes_other_errors_on(tmp_path, monkeypatch):
    def denied(a, b):
        raise OSError(errno.EACCES, "Permission denied", str(a))

    monkeypatch.setattr(fsutil, "_exchange", denied)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep").write_text("k")
    denied = r"b: cannot write \(Permission denied\); choose a writable --out$"
    with pytest.raises(OutputError, match=denied), atomic_dir(tmp_path / "b", replace=True) as tmp:
        write_bytes(tmp / "v", b"2")
    assert _tree(tmp_path / "b") == {"keep": b"k"} and sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_clean_leftovers_removes_only_dead_runs_leftovers(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    target = tmp_path / "b"
    target.mkdir()
    leftovers = [f".b.{dead}.tmp", f".b.{dead}.old"]
    kept = [
        f".b.{alive}.tmp",
        ".b.tmp",
        f".bb.{dead}.tmp",
        f"b.{dead}.tmp",
        f".b.{dead}.tmp.x",
        ".b.12x.tmp",
        f".c.{dead}.old",
    ]
    for name in leftovers + kept:
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("x")
    (tmp_path / f".b.{dead}.tmp.file").write_text("not ours")
    notes: list[str] = []
    clean_leftovers(target, notes.append)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["b", f".b.{dead}.tmp.file"] + kept)
    assert sorted(notes) == sorted(
        [
            f"{tmp_path / f'.b.{alive}.tmp'}: left by process {alive}, which is still running; not touched",
            f"{tmp_path / f'.b.{dead}.old'}: removed, left by a killed run (pid {dead})",
            f"{tmp_path / f'.b.{dead}.tmp'}: removed, left by a killed run (pid {dead})",
        ]
    )


def test_clean_leftovers_restores_a_moved_aside_directory(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".b.{dead}.old").mkdir()
    (tmp_path / f".b.{dead}.old" / "v").write_text("old")
    notes: list[str] = []
    clean_leftovers(tmp_path / "b", notes.append)
    assert _tree(tmp_path / "b") == {"v": b"old"} and sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert notes == [f"{tmp_path / 'b'}: restored from .b.{dead}.old, moved aside by a killed run (pid {dead})"]


def test_atomic_file_cleans_its_own_leftovers(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".ck.pt.{dead}.tmp").write_bytes(b"half")
    with atomic_file(tmp_path / "ck.pt") as tmp:
        write_bytes(tmp, b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


@pytest.mark.parametrize(
    "code, option, advice",
    [
        (errno.ENOSPC, "--out", "(No space left on device); free space or choose another --out"),
        (errno.EDQUOT, "--report", "(Disk quota exceeded); free space or choose another --report"),
        (errno.EROFS, "--out", "(Read-only file system); choose a writable --out"),
        (errno.EACCES, "--report", "(Permission denied); choose a writable --report"),
        (errno.EIO, "--out", "(Input/output error); choose another --out"),
    ],
)
def test_output_error_says_what_to_do(code, option, advice):
    e = output_error(Path("/x/b"), OSError(code, os.strerror(code)), option)
    assert isinstance(e, OutputError) and str(e) == f"/x/b: cannot write {advice}"


def test_write_errors_name_the_target_not_the_temp(tmp_path):
    with pytest.raises(OutputError) as e, atomic_dir(tmp_path / "b") as tmp:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "encoder.onnx"))
    assert (
        str(e.value) == f"{tmp_path / 'b' / 'encoder.onnx'}: cannot write (No space left on device); "
        "free space or choose another --out"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_oserror_about_another_file_is_not_a_write_error(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_dir(tmp_path / "b"):
        (tmp_path / "missing-input").read_bytes()
    assert list(tmp_path.iterdir()) == []
