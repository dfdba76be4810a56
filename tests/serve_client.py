"""A real s2s-serve process on 127.0.0.1 and a plain HTTP client for it (tests and benchmarks/serve_load.py)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The server runs with torch made unimportable: the onnx path must never import it.
NO_TORCH = "import sys; sys.modules['torch'] = None; from seq2seq_export.cli import main; main(prog_name='s2s-serve')"


WORDS = ["hello", "world", "", "a", "zebra's", "don't-stop", "x" * 30, "queue", "batch", "it."]
# The request limits of the servers under test (BAD_REQUESTS expects them).
LIMITS = ("--max-input-chars", "2000", "--max-inputs", "16", "--max-body-bytes", "4096")
# (body, status, words in the error) for each class of bad request, against a server started with LIMITS.
BAD_REQUESTS = [
    (b'{"inputs": ["a"', 400, "not valid JSON"),
    (b"\xff\xfe", 400, "not valid JSON"),
    (b"[" * 2000 + b"]" * 2000, 400, "not valid JSON"),
    (b'["a"]', 422, "JSON object"),
    (b"{}", 422, "missing field 'inputs'"),
    (b'{"inputs": "abc"}', 422, "'inputs' must be a list"),
    (b'{"inputs": ["a", 3]}', 422, "inputs[1] must be a string"),
    (b'{"inputs": ["a"], "beam": 2}', 422, "unknown field 'beam'"),
    (b'{"inputs": ["a"], "beam_size": 2.0}', 422, "'beam_size' must be an integer"),
    (b'{"inputs": ["a"], "beam_size": 99}', 422, "'beam_size' must be an integer in [1, 16]"),
    (b'{"inputs": ["a"], "beam_size": 2, "n_best": 3}', 422, "'n_best'"),
    (b'{"inputs": ["a"], "length_penalty": -1}', 422, "length_penalty"),
    (b'{"inputs": ["a"], "length_penalty": true}', 422, "length_penalty"),
    (b'{"inputs": ["\\ud800"]}', 422, "lone surrogate"),
    (json.dumps({"inputs": ["a"] * 17}).encode(), 422, "17 items, over the limit of 16"),
    (json.dumps({"inputs": ["a" * 5000]}).encode(), 413, "5016 bytes is over the limit of 4096 bytes"),
    (json.dumps({"inputs": ["a" * 5000]})[:4000].encode(), 400, "not valid JSON"),
]


def reference(bundle: Path, texts: list[str], *extra: str) -> list[dict]:
    """What s2s-translate --json prints for `texts`: one record per input."""
    out = subprocess.run(
        [sys.executable, "-m", "seq2seq_export", "translate", "--bundle", str(bundle), "--json", *extra, "--", *texts],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def fire(
    server: Server, requests: list[list[str]], searches: list[dict] | None = None, headers: bool = False
) -> list[Any]:
    """Send every input list at once (with searches[i]'s settings), one thread each; (status, body)
    per request in order, or (status, headers, body)."""
    results: list[Any] = [None] * len(requests)

    def one(i: int) -> None:
        status, got, body = server.translate(requests[i], **(searches[i] if searches else {}))
        results[i] = (status, got, body) if headers else (status, body)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def process_tree(root: int) -> dict[int, str]:
    """pid -> command line of `root` and of every process below it (Linux /proc)."""
    children: dict[int, list[int]] = {}
    names = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                names[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # it ended meanwhile
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        found[pid] = names.get(pid, "")
        todo.extend(children.get(pid, []))
    return found


# A server started with these takes one 8-input request at a time: overload() sends it 24 at once.
OVERLOAD = ("--max-queue", "8", "--max-inputs", "8", "--max-wait-ms", "0", "--no-access-log")


def overload(server: Server, expected: dict[str, dict]) -> list[int]:
    """24 concurrent requests of 8 inputs against a server started with OVERLOAD: each answered with
    the right translations or a 429 with Retry-After, then the service takes requests again; the statuses."""
    requests = [[WORDS[(i + j) % len(WORDS)] for j in range(8)] for i in range(24)]
    results = fire(server, requests, headers=True)
    statuses = [status for status, _, _ in results]
    assert set(statuses) == {200, 429}, statuses
    for texts, (status, headers, body) in zip(requests, results):
        if status == 200:
            assert body["translations"] == [expected[w] for w in texts]
        else:
            assert "retry later" in body["error"] and headers["Retry-After"] == "1", (headers, body)
    assert server.translate(requests[0])[0] == 200  # the queue empties: the service takes requests again
    return statuses


def workers_of(server: Server) -> list[int]:
    """The pids of an s2s-serve --workers server's worker processes (uvicorn starts them with spawn)."""
    return sorted(pid for pid, cmd in process_tree(server.proc.pid).items() if "spawn_main" in cmd)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`s2s-serve --bundle DIR ARGS...` started on a free port; ready once /readyz answers 200."""

    def __init__(self, bundle: Path, *args: str, timeout: float = 60.0, group: bool = False) -> None:
        """group: in a process group of its own, with SIGINT at its default (as a terminal's foreground job)."""
        self.port = free_port()
        cmd = [sys.executable, "-c", NO_TORCH, "serve", "--bundle", str(bundle), "--port", str(self.port), *args]
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 -- closed in stop(); not a pipe: access logs under load would fill it and block
        own = {"start_new_session": True, "preexec_fn": lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)}
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True, **(own if group else {})
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"s2s-serve exited {self.proc.returncode}: {self.output()}")
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("s2s-serve did not get ready in time")

    def request(
        self, method: str, path: str, body: Any = None, headers: dict | None = None, timeout: float = 30.0
    ) -> tuple[int, Any, Any]:
        """(status, headers, JSON body or text) of one request on a new connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        if resp.getheader("content-type", "").startswith("application/json"):
            return resp.status, resp.headers, json.loads(raw)
        return resp.status, resp.headers, raw.decode()

    def translate(self, inputs: list[str], **search: Any) -> tuple[int, Any, Any]:
        return self.request("POST", "/v1/translate", {"inputs": inputs, **search})

    def metric(self, name: str) -> float:
        """One sample's value from /metrics, by its full name with labels."""
        for line in self.request("GET", "/metrics")[2].splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0.0

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code once it has drained."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()
