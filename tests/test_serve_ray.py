"""s2s-serve --ray: real Ray Serve on a real local Ray, real server processes, real HTTP requests.

One local Ray, started here with its own temp dir and torch unimportable in its workers, holds the
module's main server: `s2s-serve --ray --ray-address ... --replicas 2`. A second server starts a Ray of
its own (no --ray-address) for the overload and SIGTERM tests, and must leave no process behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("ray.serve")

from serve_client import (
    BAD_REQUESTS,
    LIMITS,
    NO_TORCH,
    OVERLOAD,
    WORDS,
    Server,
    fire,
    overload,
    process_tree,
    reference,
)

START_S = 300  # a Ray, its Serve controller, proxy and replicas on two busy cores
READY_LINE = "replica(s) on Ray Serve"
SERVE_PROCESSES = ("ray::ServeController", "ray::ProxyActor", "ray::ServeReplica")
BEAM = ("--beam-size", "4", "--n-best", "3", "--length-penalty", "0.5")


def wait_for(check, seconds: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


def serve_processes(root: int) -> list[str]:
    return [cmd for cmd in process_tree(root).values() if cmd.startswith(SERVE_PROCESSES)]


def alive(pid: int) -> bool:
    try:
        return not Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray whose workers cannot import torch; yields its address."""
    import ray

    no_torch = tmp_path_factory.mktemp("no_torch")
    (no_torch / "torch").mkdir()
    (no_torch / "torch" / "__init__.py").write_text(
        'raise ModuleNotFoundError("torch is blocked in the Ray workers of test_serve_ray")\n'
    )
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = f"{no_torch}{os.pathsep}{saved or ''}"  # the workers inherit it
    temp = tempfile.mkdtemp(prefix="s2s-ray-")  # short: Ray's socket paths must fit in 107 bytes
    try:
        ray.init(
            address="local",
            num_cpus=3,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            _temp_dir=temp,
        )
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)  # a worker may still be writing its last log line
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def ray_server(bundle: Path, *args: str) -> Server:
    s = Server(bundle, "--ray", *args, timeout=START_S)
    wait_for(lambda: READY_LINE in s.output(), START_S, "every replica")
    return s


@pytest.fixture(scope="module")
def server(lively_bundle, ray_cluster):
    s = ray_server(lively_bundle, "--ray-address", ray_cluster, "--replicas", "2", "--max-wait-ms", "50", *LIMITS)
    yield s
    s.stop(120)


@pytest.fixture(scope="module")
def expected(lively_bundle):
    return {r["input"]: r for r in reference(lively_bundle, WORDS)}


def by_replica(server, names: tuple[str, ...]) -> dict[str, list[float]]:
    """Each replica's values of the `names` samples, scraping /metrics until both replicas have answered."""
    seen: dict[str, list[float]] = {}
    deadline = time.monotonic() + 60
    while len(seen) < 2 and time.monotonic() < deadline:
        lines = server.request("GET", "/metrics")[2].splitlines()
        values = dict(line.rsplit(" ", 1) for line in lines if line and not line.startswith("#"))
        replica = next(k for k in values if k.startswith("s2s_serve_replica_info{"))
        seen[replica] = [float(values.get(name, 0.0)) for name in names]
    assert len(seen) == 2, f"only {list(seen)} answered /metrics"
    return seen


def test_answers_equal_s2s_translate_json(server, expected, lively_bundle):
    status, _, body = server.translate(WORDS)
    assert status == 200 and body["translations"] == [expected[w] for w in WORDS]
    assert server.translate([])[2] == {"translations": []}
    status, _, body = server.translate(["hello", "", "zebra's"], beam_size=4, n_best=3, length_penalty=0.5)
    assert status == 200 and body["translations"] == reference(lively_bundle, ["hello", "", "zebra's"], *BEAM)
    assert len(body["translations"][0]["hypotheses"]) == 3


def test_concurrent_requests_are_batched_on_both_replicas(server, expected):
    names = ("s2s_serve_batch_size_count", 's2s_serve_batch_size_bucket{le="1.0"}', "s2s_serve_inputs_total")
    before = by_replica(server, names)
    requests = [[WORDS[i % len(WORDS)]] for i in range(48)]  # one input each: a batch of more is Ray's batching
    for texts, (status, body) in zip(requests, fire(server, requests)):
        assert status == 200 and body["translations"] == [expected[w] for w in texts]
    after = by_replica(server, names)
    assert after.keys() == before.keys()
    batched = {r: (after[r][0] - after[r][1]) - (before[r][0] - before[r][1]) for r in after}
    assert sum(batched.values()) > 0, f"no batch of more than one input: {batched}"
    answered = {r: after[r][2] - before[r][2] for r in after}
    assert sum(answered.values()) == 48 and all(answered.values()), f"inputs per replica: {answered}"


def test_requests_with_other_search_settings_are_batched_apart(server):
    requests = [[WORDS[i % len(WORDS)], WORDS[(i + 4) % len(WORDS)]] for i in range(12)]
    searches = [{"beam_size": 1 + 2 * (i % 2), "n_best": 1 + (i % 2)} for i in range(12)]
    alone = [server.translate(texts, **s)[2] for texts, s in zip(requests, searches)]
    assert fire(server, requests, searches) == [(200, body) for body in alone]


@pytest.mark.parametrize("body, status, words", BAD_REQUESTS)
def test_bad_requests_get_the_plain_servers_4xx(server, body, status, words):
    got, _, answer = server.request("POST", "/v1/translate", body)
    assert got == status and words in answer["error"], answer


def test_health_readiness_routes_metrics_and_openapi(server):
    assert server.request("GET", "/healthz")[:3:2] == (200, {"status": "alive"})
    assert server.request("GET", "/readyz")[:3:2] == (200, {"status": "ready", "queued_inputs": 0})
    got, _, answer = server.request("GET", "/v1/translate")
    assert got == 405 and "Method Not Allowed" in answer["error"]
    assert server.request("GET", "/nowhere")[0] == 404
    schema = server.request("GET", "/openapi.json")[2]
    assert schema["components"]["schemas"]["TranslateRequest"]["properties"]["inputs"]["maxItems"] == 16
    text = server.request("GET", "/metrics")[2]
    for name in ("s2s_serve_requests_total", "s2s_serve_request_seconds_bucket", "s2s_serve_queue_inputs"):
        assert name in text
    wait_for(lambda: "POST /v1/translate 200" in server.output(), 30, "Ray Serve's access log line")


def test_a_second_server_on_the_same_cluster_is_refused(server, lively_bundle, ray_cluster):
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_TORCH,
            "serve",
            "--bundle",
            str(lively_bundle),
            "--ray",
            "--ray-address",
            ray_cluster,
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=START_S,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "Error: an app named 's2s-serve' already runs on this Ray cluster: stop that s2s-serve first "
        "(or `serve delete s2s-serve`)"
    )
    assert server.translate(["hello"])[0] == 200  # the first one runs on


def test_stopping_a_joined_cluster_leaves_the_cluster_and_removes_serve(server):
    assert len(serve_processes(os.getpid())) == 4  # controller, proxy, two replicas
    assert server.stop(120) == 0, server.output()
    wait_for(lambda: not serve_processes(os.getpid()), 60, "Ray Serve's processes to end")
    import ray

    assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 3  # the cluster itself stays


def test_overload_then_sigterm_with_requests_in_flight(lively_bundle, expected, monkeypatch):
    temp = tempfile.mkdtemp(prefix="s2s-own-")  # short, as ray_cluster's
    monkeypatch.setenv("RAY_TMPDIR", temp)  # the Ray this server starts
    s = ray_server(lively_bundle, *OVERLOAD, "--max-batch-size", "1")
    try:
        overload(s, expected)
        tree = process_tree(s.proc.pid)
        assert sum(cmd.startswith(SERVE_PROCESSES) for cmd in tree.values()) == 3, tree
        assert any("raylet" in cmd for cmd in tree.values()), tree
        held: list = []  # a slow request (beam 16, one input a batch), in flight when SIGTERM comes
        slow = [WORDS[:8]]
        thread = threading.Thread(target=lambda: held.extend(fire(s, slow, [{"beam_size": 16}])))
        thread.start()
        in_flight = lambda: s.request("GET", "/readyz")[2].get("queued_inputs", 0) > 0  # noqa: E731
        wait_for(in_flight, 30, f"a request in flight (got {held})", every=0.01)
        s.proc.send_signal(signal.SIGTERM)
        thread.join(120)
        assert s.proc.wait(120) == 0, s.output()
        assert "POST /v1/translate" not in s.output()  # --no-access-log
    finally:
        s.stop(120)
    assert held == [(200, {"translations": reference(lively_bundle, slow[0], "--beam-size", "16")})]
    wait_for(lambda: not any(alive(pid) for pid in tree), 30, "every process of the server's own Ray to end")
    shutil.rmtree(temp)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--replicas", "2"], "Error: --replicas needs --ray"),
        (["--ray-address", "127.0.0.1:1"], "Error: --ray-address needs --ray"),
        (["--ray", "--backend", "eager"], "Error: --backend eager: with --ray the replicas run the onnx backend only"),
    ],
)
def test_options_that_need_or_exclude_ray_are_one_line_errors(lively_bundle, args, message):
    from click.testing import CliRunner

    from seq2seq_export.cli import main

    result = CliRunner().invoke(main, ["serve", "--bundle", str(lively_bundle), *args])
    assert result.exit_code == 2 and result.output.startswith(message), result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_ray_is_one_line_naming_the_extra(lively_bundle):
    block = "import sys; sys.modules['ray'] = None; " + NO_TORCH.split("; ", 2)[2]
    out = subprocess.run(
        [sys.executable, "-c", block, "serve", "--bundle", str(lively_bundle), "--ray"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("Error: s2s-serve --ray needs Ray Serve, which is not installed (")
    assert out.stderr.strip().endswith(": pip install 'seq2seq-export[ray]'") and out.stderr.count("\n") == 1
