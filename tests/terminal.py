"""Running a command with its stderr on a real pseudo-terminal, as a user's shell would."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
from collections.abc import Mapping
from pathlib import Path


def on_terminal(
    command: list[str], env: Mapping[str, str], cwd: Path | None = None, timeout: float = 120
) -> tuple[int, str, str]:
    """Run with stderr on a 24 x 120 pseudo-terminal (tqdm reads its width), stdin empty and stdout a
    pipe -> (exit code, stdout, what the terminal got with its \\r\\n line ends read as \\n)."""
    main_end, child_end = pty.openpty()
    fcntl.ioctl(child_end, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=child_end, env=dict(env), cwd=cwd
    )
    os.close(child_end)
    seen = b""
    while True:
        try:
            data = os.read(main_end, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        seen += data
    os.close(main_end)
    out = proc.stdout.read().decode() if proc.stdout else ""
    return proc.wait(timeout=timeout), out, seen.decode(errors="replace").replace("\r\n", "\n")
