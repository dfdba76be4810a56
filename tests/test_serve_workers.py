"""s2s-serve --workers: several real server processes on one port (uvicorn's supervisor), real requests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from serve_client import LIMITS, OVERLOAD, WORDS, Server, fire, free_port, overload, reference, workers_of

from seq2seq_export.serve.access_log import chunks

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def expected(lively_bundle):
    return {r["input"]: r for r in reference(lively_bundle, WORDS)}


@pytest.fixture(scope="module")
def server(lively_bundle):
    s = Server(lively_bundle, "--workers", "2", "--max-wait-ms", "20", *LIMITS)
    deadline = time.monotonic() + 60  # /readyz answers once one worker is up; wait for both
    while len(workers_of(s)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    yield s
    assert s.stop() == 0, s.output()


def wait_until(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()


def test_two_workers_answer_like_s2s_translate_and_never_import_torch(server, expected):
    pids = workers_of(server)
    assert len(pids) == 2, pids
    status, _, body = server.translate(WORDS)
    assert status == 200 and body["translations"] == [expected[w] for w in WORDS]
    beam = server.translate(["hello"], beam_size=3, n_best=2)[2]["translations"][0]
    assert len(beam["hypotheses"]) == 2
    for pid in [server.proc.pid, *pids]:  # the supervisor and the workers: onnx only
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "onnxruntime" in maps or pid == server.proc.pid
        assert "libtorch" not in maps, pid


def test_metrics_add_up_over_the_workers(server, expected):
    before = server.metric("s2s_serve_inputs_total")
    requests = [[WORDS[i % len(WORDS)], WORDS[(i * 3 + 1) % len(WORDS)]] for i in range(40)]
    for texts, (status, body) in zip(requests, fire(server, requests)):
        assert status == 200 and body["translations"] == [expected[w] for w in texts]
    assert server.metric("s2s_serve_inputs_total") - before == 80
    assert server.metric('s2s_serve_requests_total{path="/v1/translate",status="200"}') >= 40
    assert server.metric("s2s_serve_queue_inputs") == 0
    assert server.request("GET", "/nowhere")[0] == 404
    assert server.metric('s2s_serve_requests_total{path="other",status="404"}') >= 1


def test_a_killed_worker_is_replaced_and_its_queue_no_longer_counts(server, expected):
    old = workers_of(server)
    os.kill(old[0], signal.SIGKILL)
    assert wait_until(lambda: len(set(workers_of(server)) - set(old)) == 1), workers_of(server)
    assert wait_until(lambda: len(workers_of(server)) == 2)
    for _ in range(6):  # whichever worker takes them
        status, _, body = server.translate(WORDS[:3])
        assert status == 200 and body["translations"] == [expected[w] for w in WORDS[:3]]
    assert server.metric("s2s_serve_queue_inputs") == 0


def test_overload_of_every_worker_gets_429s_and_nothing_wrong(lively_bundle, expected):
    s = Server(lively_bundle, *OVERLOAD, "--workers", "2", "--max-batch-size", "2")
    try:
        overload(s, expected)
    finally:
        assert s.stop() == 0


def test_sigterm_drains_every_worker_then_exits_0(lively_bundle, expected):
    s = Server(lively_bundle, "--workers", "2", "--max-batch-size", "1", "--max-wait-ms", "0")
    assert wait_until(lambda: len(workers_of(s)) == 2)
    requests = [[WORDS[(i + j) % len(WORDS)] for j in range(40)] for i in range(6)]
    results: list = []
    thread = threading.Thread(target=lambda: results.extend(fire(s, requests)))
    thread.start()
    assert wait_until(lambda: s.metric("s2s_serve_queue_inputs") >= 60, 20), "nothing was in flight"
    s.proc.send_signal(signal.SIGTERM)
    thread.join(60)
    assert s.proc.wait(30) == 0, s.output()
    for texts, (status, body) in zip(requests, results):
        assert status == 200 and body["translations"] == [expected[w] for w in texts]
    out = s.output()
    assert out.count("Finished server process") == 2 and "Traceback" not in out, out


def test_ctrl_c_stops_every_worker_and_exits_130(lively_bundle):
    s = Server(lively_bundle, "--workers", "2", group=True)
    assert wait_until(lambda: len(workers_of(s)) == 2)
    os.killpg(s.proc.pid, signal.SIGINT)  # what a terminal does: the whole foreground group
    assert s.proc.wait(60) == 130
    out = s.output()
    assert out.rstrip().endswith("Error: interrupted") and "Traceback" not in out, out
    assert out.count("Finished server process") == 2, out


def test_a_worker_that_cannot_load_the_bundle_stops_the_server(lively_bundle):
    """The supervisor checked one bundle; the workers find another (here: a digest they do not match)."""
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "from seq2seq_export.serve import ServeConfig\n"
        "from seq2seq_export.serve.server import WorkerApp, listen, run_workers, WorkerFailed\n"
        f"app = WorkerApp({str(lively_bundle)!r}, 'sha256:' + '0' * 64, 'onnx', 1, ServeConfig())\n"
        "try:\n"
        f"    run_workers(app, 2, listen('127.0.0.1', {free_port()}), log_level='warning')\n"
        "except WorkerFailed as e:\n"
        "    print('Error:', e, file=sys.stderr); sys.exit(2)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines[-1] == "Error: a server worker could not start (its error is above): nothing is served"
    worker = [line for line in lines if line.startswith("Error: worker ")]
    assert worker and "differs from the expected sha256:000" in worker[0], out.stderr
    assert "Traceback" not in out.stderr


def test_workers_and_ray_do_not_mix(lively_bundle):
    from click.testing import CliRunner

    from seq2seq_export.cli import main

    result = CliRunner().invoke(main, ["serve", "--bundle", str(lively_bundle), "--ray", "--workers", "2"])
    assert result.exit_code == 2
    assert result.output.strip() == "Error: --workers runs several plain servers: with --ray, use --replicas"


@pytest.mark.parametrize(
    "lengths, size, pieces",
    [([10, 10, 10], 25, [20, 10]), ([30, 5], 25, [30, 5]), ([5, 5, 5], 15, [15]), ([], 10, [])],
)
def test_access_log_lines_go_out_in_whole_line_pieces_a_pipe_writes_at_once(lengths, size, pieces):
    lines = [str(i) * (n - 1) + "\n" for i, n in enumerate(lengths)]
    got = chunks(lines, size)
    assert [len(p) for p in got] == pieces and "".join(got) == "".join(lines)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_one_line_exit_2_before_the_bundle_loads(lively_bundle, workers):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cmd = [sys.executable, "-m", "seq2seq_export", "serve", "--bundle", str(lively_bundle), "--port", str(port)]
        out = subprocess.run([*cmd, "--workers", workers], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == (
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use: choose another --port or --host, "
        "or stop the process that holds it"
    )
