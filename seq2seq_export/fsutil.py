"""Crash-safe writes: a reader sees the old file or directory or the new one, never half of either.

Every write goes to a temporary sibling named `.NAME.<pid>.tmp` and is renamed into place when
complete (a replaced directory is swapped in with one atomic exchange, see replace_dir). A killed
run leaves only such siblings, which the next write to the same target removes once their process
is gone (clean_leftovers). Any OSError while writing (full disk, read-only or permission-denied
directory) becomes a one-line OutputError naming the target, and nothing temporary is left.

S2S_TEST_KILL_AT=<step> in the environment makes the process SIGKILL itself at that named step
(see _kill_point); the fault tests use it to prove the above at every step.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import platform
import re
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import OutputError

Log = Callable[[str], None]

_LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.(?:tmp|old)")
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_ALLOWED = {errno.EROFS, errno.EACCES, errno.EPERM}
# The exchange is not offered here (old kernel, filesystem, non-Linux): fall back to two renames.
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP}
_NO_FSYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}  # e.g. directories on some network filesystems
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2  # from <fcntl.h> and <linux/fs.h>
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276}  # for a libc without the renameat2 wrapper (glibc < 2.28)


def _kill_point(step: str) -> None:
    """Fault-test hook: die here, as a crash or kill -9 would, when S2S_TEST_KILL_AT names this step."""
    if os.environ.get("S2S_TEST_KILL_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _sibling(path: Path, kind: str) -> Path:
    return path.parent / f".{path.name}.{os.getpid()}.{kind}"


def output_error(path: str | os.PathLike, e: OSError, option: str = "--out") -> OutputError:
    """A one-line OutputError for a failed write to `path`, with what to do about it."""
    reason = os.strerror(e.errno) if e.errno else (e.strerror or type(e).__name__)
    if e.errno in _NO_SPACE:
        advice = f"free space or choose another {option}"
    elif e.errno in _NOT_ALLOWED:
        advice = f"choose a writable {option}"
    else:
        advice = f"choose another {option}"
    return OutputError(f"{path}: cannot write ({reason}); {advice}")


@contextlib.contextmanager
def _write_errors(target: Path, tmp: Path, option: str) -> Iterator[None]:
    """Turn an OSError about `tmp` (or a file inside it), `target` or a directory above it, or
    about no file at all, into an OutputError naming the matching path under `target`. An
    OSError about any other file (reading an input, say) is not a write error and goes on."""
    try:
        yield
    except OSError as e:
        names = [Path(os.fsdecode(n)) for n in (e.filename2, e.filename) if n is not None]
        where = next((n for n in names if _inside(n, tmp)), None)
        if where is not None:
            where = target / where.relative_to(tmp)
        elif not names:
            where = target
        elif _inside(target, names[-1]):
            where = names[-1]
        else:
            raise
        raise output_error(where, e, option) from None


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():  # our own pid on a leftover: an earlier process that had it is gone
        return False
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there; never guess
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_leftovers(path: str | os.PathLike, log: Log | None = None) -> None:
    """Remove `.NAME.<pid>.tmp|old` siblings of `path` left by killed writers (their pid is gone),
    logging one line for each; a `.old` (a replaced directory moved aside, see replace_dir) is put
    back when `path` itself is missing. Nothing else is ever touched, and nothing here raises."""
    path = Path(path)
    log = log or (lambda _msg: None)
    try:
        siblings = sorted(path.parent.iterdir())
    except OSError:  # no parent yet, or unreadable: nothing of ours can be there
        return
    for child in siblings:
        m = _LEFTOVER.fullmatch(child.name)
        if not m or m["name"] != path.name:
            continue
        log(_clean_one(child, path, int(m["pid"])))


def _clean_one(child: Path, path: Path, pid: int) -> str:
    """Deal with one leftover `child` of `path`; returns the line that says what was done."""
    if _pid_alive(pid):
        return f"{child}: left by process {pid}, which is still running; not touched"
    if child.name.endswith(".old") and not os.path.lexists(path):
        try:
            os.rename(child, path)
        except OSError as e:
            return f"{child}: moved aside by a killed run (pid {pid}), could not be put back ({e.strerror})"
        return f"{path}: restored from {child.name}, moved aside by a killed run (pid {pid})"
    _remove(child)
    if os.path.lexists(child):
        return f"{child}: left by a killed run (pid {pid}), could not be removed"
    return f"{child}: removed, left by a killed run (pid {pid})"


def _fsync(path: Path) -> None:
    """Flush a file or directory to disk; a full disk or I/O error raises, "not supported here" does not."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in _NO_FSYNC:
            raise
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` with Python file IO (an OSError, never a C++ abort, on a full disk);
    meant for files inside atomic_file / atomic_dir, which turn the OSError into an OutputError."""
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        if e.filename is None:  # a failed write() names no file; name it for the OutputError
            raise OSError(e.errno, e.strerror, os.fspath(path)) from None
        raise
    _kill_point("file-written")


def _make_parents(d: Path, created: list[Path]) -> None:
    """Create directory `d` and its missing parents, appending each one created to `created`."""
    missing = []
    while not os.path.lexists(d):
        missing.append(d)
        d = d.parent
    for m in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by someone else: not ours to remove
            os.mkdir(m)
            created.append(m)


@contextlib.contextmanager
def _staging(path: Path, option: str) -> Iterator[Path]:
    """What atomic_file and atomic_dir share: clean leftovers, create missing parent directories
    and yield the temp name; on any error delete the temp and the directories made for it."""
    tmp = _sibling(path, "tmp")
    created: list[Path] = []
    with _write_errors(path, tmp, option):
        clean_leftovers(path)
        try:
            _make_parents(path.parent, created)
            yield tmp
        except BaseException:
            _remove(tmp)
            for d in reversed(created):
                with contextlib.suppress(OSError):
                    os.rmdir(d)
            raise
        _fsync(path.parent)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, option: str = "--out") -> Iterator[Path]:
    """Yield a temp path beside `path`; on success rename it over `path`, on error delete it.

    Any OSError (creating the directory, writing, renaming) is an OutputError that names `path`
    and advises about `option`, the command-line option that chose it.
    """
    path = Path(path)
    with _staging(path, option) as tmp:
        yield tmp
        _fsync(tmp)
        _kill_point("file-complete")
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, replace: bool = False, option: str = "--out") -> Iterator[Path]:
    """Yield an empty temp directory beside `path`; on success move it to `path`, on error delete it.

    With replace=True an existing `path` is replaced whole (replace_dir). Leftovers of killed
    runs are cleaned first, silently (call clean_leftovers before to report them); OSErrors are
    OutputErrors, as in atomic_file.
    """
    path = Path(path)
    with _staging(path, option) as tmp:
        _remove(tmp)
        os.mkdir(tmp, 0o700)
        yield tmp
        for file in tmp.rglob("*"):
            _fsync(file)
        _fsync(tmp)
        _kill_point("dir-complete")
        if replace and os.path.lexists(path):
            replace_dir(tmp, path)
        else:
            os.rename(tmp, path)  # fails if path appeared meanwhile and is not an empty dir


def replace_dir(new: Path, path: Path) -> None:
    """Move directory `new` to `path`, replacing the directory there, so that `path` holds the
    complete old or the complete new directory at every instant.

    On Linux one renameat2(RENAME_EXCHANGE) swaps the two; the old one, now at `new`'s name, is
    then deleted. Where the exchange is not available it falls back to two renames: the old one
    to `.NAME.<pid>.old`, the new one to `path`. Between those two renames (microseconds) `path`
    is missing; if the process dies right there, the next write to `path` puts the old one back.
    """
    try:
        _exchange(new, path)
    except OSError as e:
        if e.errno not in _NO_EXCHANGE:
            raise
        old = _sibling(path, "old")
        os.rename(path, old)
        _kill_point("old-moved")
        os.rename(new, path)
        _remove(old)
    else:
        _kill_point("exchanged")
        _remove(new)  # the old directory, under the temporary name
    _kill_point("old-removed")


def _renameat2(use_libc: bool = True) -> Callable[..., int] | None:
    """libc's renameat2, or the raw system call (use_libc=False, or a libc without it), or None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    if use_libc and hasattr(libc, "renameat2"):
        fn = libc.renameat2
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        return fn
    number = _SYS_RENAMEAT2.get(platform.machine())
    if number is None:
        return None
    return lambda *args: libc.syscall(
        ctypes.c_long(number), *(ctypes.c_long(a) if isinstance(a, int) else a for a in args)
    )


def _exchange(a: Path, b: Path) -> None:
    """Atomically swap two existing paths (renameat2 RENAME_EXCHANGE); OSError ENOSYS where unsupported."""
    fn = _renameat2()
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available on this system", str(a))
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a), None, str(b))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
