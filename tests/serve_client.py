"""A real s2s-serve process on 127.0.0.1 and a plain HTTP client for it (tests and benchmarks/serve_load.py)."""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The server runs with torch made unimportable: the onnx path must never import it.
NO_TORCH = "import sys; sys.modules['torch'] = None; from seq2seq_export.cli import main; main(prog_name='s2s-serve')"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`s2s-serve --bundle DIR ARGS...` started on a free port; ready once /readyz answers 200."""

    def __init__(self, bundle: Path, *args: str, timeout: float = 60.0) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-c", NO_TORCH, "serve", "--bundle", str(bundle), "--port", str(self.port), *args]
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 -- closed in stop(); not a pipe: access logs under load would fill it and block
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, text=True)
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

    def request(self, method: str, path: str, body: Any = None, headers: dict | None = None,
                timeout: float = 30.0) -> tuple[int, Any, Any]:
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

    def stop(self) -> int:
        """SIGTERM, then the exit code once it has drained."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.log.close()
