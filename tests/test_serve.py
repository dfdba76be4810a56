"""s2s-serve: a real server process (torch unimportable in it) on 127.0.0.1, real HTTP requests."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from serve_client import BAD_REQUESTS, LIMITS, OVERLOAD, WORDS, Server, fire, overload, reference

BATCH_SAMPLES = 's2s_serve_batch_size_bucket{le="1.0"}'


@pytest.fixture(scope="module")
def server(lively_bundle):
    s = Server(lively_bundle, "--max-wait-ms", "50", *LIMITS)
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture(scope="module")
def expected(lively_bundle):
    return {r["input"]: r for r in reference(lively_bundle, WORDS)}


def test_answers_equal_s2s_translate_json(server, expected):
    status, _, body = server.translate(WORDS)
    assert status == 200
    assert body["translations"] == [expected[w] for w in WORDS]
    assert server.translate([])[2] == {"translations": []}


def test_beam_answers_carry_scores_and_n_best(server, expected):
    status, _, body = server.translate(["hello", ""], beam_size=4, n_best=3, length_penalty=0.5)
    assert status == 200
    hello, empty = body["translations"]
    assert len(hello["hypotheses"]) == 3 and hello["hypotheses"][0]["ids"] == hello["ids"]
    assert [h["score"] for h in hello["hypotheses"]] == sorted((h["score"] for h in hello["hypotheses"]), reverse=True)
    assert empty["output"] == "" and empty["ids"] == []
    # beam 1 scored is still greedy's answer
    assert server.translate(["hello"], beam_size=1)[2]["translations"][0] == expected["hello"]


def test_concurrent_requests_are_batched_and_answered_right(server, expected):
    before = server.metric("s2s_serve_batch_size_count") - server.metric(BATCH_SAMPLES)
    requests = [[WORDS[i % len(WORDS)], WORDS[(i * 3 + 1) % len(WORDS)]] for i in range(24)]
    results = fire(server, requests)
    for texts, (status, body) in zip(requests, results):
        assert status == 200 and body["translations"] == [expected[w] for w in texts]
    after = server.metric("s2s_serve_batch_size_count") - server.metric(BATCH_SAMPLES)
    assert after > before, "no batch of more than one input was recorded"


def test_requests_with_other_search_settings_are_batched_apart(server):
    requests = [[WORDS[i % len(WORDS)], WORDS[(i + 4) % len(WORDS)]] for i in range(12)]
    searches = [{"beam_size": 1 + 2 * (i % 2), "n_best": 1 + (i % 2)} for i in range(12)]
    alone = [server.translate(texts, **s)[2] for texts, s in zip(requests, searches)]
    assert fire(server, requests, searches) == [(200, body) for body in alone]


def test_not_ready_before_the_lifespan_starts(lively_bundle):
    import asyncio

    import httpx

    from seq2seq_export.runtime.translator import Translator
    from seq2seq_export.serve import create_app

    app = create_app(Translator.from_bundle(lively_bundle))  # lifespan not run: the batcher never started

    async def get():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
            return await client.get("/readyz"), await client.get("/healthz")

    ready, alive = asyncio.run(get())
    assert ready.status_code == 503 and "not ready" in ready.json()["error"]
    assert alive.status_code == 200


@pytest.mark.parametrize("body, status, words", BAD_REQUESTS)
def test_bad_requests_get_a_4xx_naming_the_problem(server, body, status, words):
    got, _, answer = server.request("POST", "/v1/translate", body)
    assert got == status and words in answer["error"], answer


def test_over_long_inputs_are_refused(server):
    got, _, answer = server.translate(["b", "a" * 1500])
    assert got == 422 and "inputs[1] has 1500 tokens" in answer["error"] and "limit of 1024" in answer["error"]
    got, _, answer = server.translate(["a" * 2001])
    assert got == 422 and "inputs[0] has 2001 characters, over the limit of 2000" in answer["error"]


def test_health_readiness_routes_metrics_and_openapi(server):
    assert server.request("GET", "/healthz")[:3:2] == (200, {"status": "alive"})
    assert server.request("GET", "/readyz")[0] == 200
    got, _, answer = server.request("GET", "/v1/translate")
    assert got == 405 and "Method Not Allowed" in answer["error"]
    assert server.request("GET", "/nowhere")[0] == 404
    text = server.request("GET", "/metrics")[2]
    for name in (
        "s2s_serve_requests_total",
        "s2s_serve_request_seconds_bucket",
        "s2s_serve_batch_size_bucket",
        "s2s_serve_queue_inputs",
    ):
        assert name in text
    assert server.metric('s2s_serve_requests_total{path="other",status="404"}') >= 1
    schema = server.request("GET", "/openapi.json")[2]
    assert schema["openapi"].startswith("3.") and "/v1/translate" in schema["paths"]
    assert schema["components"]["schemas"]["TranslateRequest"]["properties"]["inputs"]["maxItems"] == 16
    assert server.translate(["hello"])[0] == 200
    deadline = time.monotonic() + 10  # uvicorn's access log reaches the pipe a moment after the answer
    while '"POST /v1/translate HTTP/1.1" 200' not in server.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert '"POST /v1/translate HTTP/1.1" 200' in server.output()


def test_overload_gets_429_with_retry_after_and_nothing_wrong(lively_bundle, expected):
    s = Server(lively_bundle, *OVERLOAD, "--max-batch-size", "2")
    try:
        statuses = overload(s, expected)
        assert "POST /v1/translate" not in s.output()  # --no-access-log
        assert s.metric('s2s_serve_requests_total{path="/v1/translate",status="429"}') == statuses.count(429)
    finally:
        assert s.stop() == 0


def test_sigterm_answers_every_request_in_flight_then_exits_0(lively_bundle, expected):
    s = Server(lively_bundle, "--max-batch-size", "1", "--max-wait-ms", "0")
    requests = [[WORDS[(i + j) % len(WORDS)] for j in range(40)] for i in range(6)]
    results = [None] * len(requests)
    thread = threading.Thread(target=lambda: results.__setitem__(slice(None), fire(s, requests)))
    thread.start()
    deadline = time.monotonic() + 20
    while (queued := s.metric("s2s_serve_queue_inputs")) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    s.proc.send_signal(signal.SIGTERM)
    assert queued >= 100, "the requests were not in flight when SIGTERM came"
    thread.join(60)
    assert s.proc.wait(30) == 0, s.output()
    for texts, (status, body) in zip(requests, results):
        assert status == 200 and body["translations"] == [expected[w] for w in texts]
    assert "Waiting for application shutdown" in s.output()


def test_missing_extra_is_one_line_naming_it(lively_bundle):
    block = (
        "import sys; sys.modules['uvicorn'] = None; import importlib.util as u; f = u.find_spec; "
        "u.find_spec = lambda n, *a: None if n == 'uvicorn' else f(n, *a); "
        "from seq2seq_export.cli import main; main(prog_name='s2s-serve')"
    )
    out = subprocess.run(
        [sys.executable, "-c", block, "serve", "--bundle", str(lively_bundle)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == ("Error: s2s-serve needs uvicorn, not installed: pip install 'seq2seq-export[serve]'")


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--max-inputs", "10", "--max-queue", "5"],
            "Error: max_inputs (--max-inputs 10) must be at most max_queue (--max-queue 5)",
        ),
        (["--expect-digest", "sha256:" + "0" * 64], "Error: "),
    ],
)
def test_bad_options_and_bundles_stop_before_serving(lively_bundle, args, message):
    from click.testing import CliRunner

    from seq2seq_export.cli import main

    result = CliRunner().invoke(main, ["serve", "--bundle", str(lively_bundle), *args])
    assert result.exit_code == 2 and result.output.startswith(message), result.output
    assert len(result.output.strip().splitlines()) == 1
