"""s2s-bulk: local == ray == s2s-translate line for line; bad inputs; a killed Ray worker; the row check.

One real local Ray (3 logical CPUs: a reading task and two actors) serves the whole module.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from seq2seq_export.bulk import IncompleteOutput, Job, OutRow, write_outputs
from seq2seq_export.bulk_ray import KILL_ONCE_ENV
from seq2seq_export.cli import bulk_cmd, translate_cmd

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ray_local():
    import ray  # the ray extra: `make test` installs it, so this never skips there

    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


def words(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz'-.") for _ in range(rng.choice((0, 1, 4, 7, 12))))
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[Path]:
    """Several files: 1,300 lines (three read chunks) with empty ones, no final newline, empty,
    non-ASCII with a byte-order mark and \\r\\n ends, one lone \\r inside a line."""
    root = tmp_path_factory.mktemp("bulk_inputs")
    files = {
        "many.txt": ("\n".join(words(1300, 0)) + "\n").encode(),
        "no_newline.txt": b"hello\n\nworld\nlast line",
        "empty.txt": b"",
        "utf8.txt": "\ufeffcaf\u00e9\r\nna\u00efve \u4e2d\u6587\r\n\r\nx\ry\n".encode(),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    return [root / name for name in files]


def bulk(bundle: Path, out: Path, *args: str) -> object:
    return CliRunner().invoke(bulk_cmd, ["--bundle", str(bundle), "--output", str(out), "--quiet", *map(str, args)])


def translate_stdin(bundle: Path, path: Path) -> bytes:
    result = CliRunner().invoke(translate_cmd, ["--bundle", str(bundle)], input=path.read_bytes())
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def one_line_error(result: object, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_local_and_ray_equal_translate(lively_bundle, inputs, ray_local, tmp_path):
    local = bulk(lively_bundle, tmp_path / "local", "--batch-size", "7", *inputs)
    assert local.exit_code == 0, local.output
    on_ray = bulk(lively_bundle, tmp_path / "ray", "--engine", "ray", "--num-workers", "2", *inputs)
    assert on_ray.exit_code == 0, on_ray.output
    assert sorted(p.name for p in (tmp_path / "local").iterdir()) == sorted(p.name for p in inputs)
    for path in inputs:
        expected = translate_stdin(lively_bundle, path)
        assert (tmp_path / "local" / path.name).read_bytes() == expected, path.name
        assert (tmp_path / "ray" / path.name).read_bytes() == expected, path.name
    counts = {p.name: (tmp_path / "ray" / p.name).read_text(encoding="utf-8").count("\n") for p in inputs}
    assert counts == {"many.txt": 1300, "no_newline.txt": 4, "empty.txt": 0, "utf8.txt": 4}


def test_killed_worker_batch_is_retried(lively_bundle, inputs, ray_local, tmp_path, monkeypatch):
    marker = tmp_path / "killed"
    monkeypatch.setenv(KILL_ONCE_ENV, str(marker))
    result = bulk(lively_bundle, tmp_path / "out", "--engine", "ray", "--num-workers", "2", inputs[0])
    assert result.exit_code == 0, result.output
    assert marker.exists()  # a worker did die on its first batch
    assert (tmp_path / "out" / inputs[0].name).read_bytes() == translate_stdin(lively_bundle, inputs[0])


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_input_too_long_names_file_and_line(engine, lively_bundle, inputs, tmp_path, request):
    if engine == "ray":
        request.getfixturevalue("ray_local")
    long = tmp_path / "long.txt"
    long.write_text("ok\n" + "a" * 40 + "\n", encoding="utf-8")
    result = bulk(lively_bundle, tmp_path / "out", "--engine", engine, "--max-input-tokens", "10", inputs[1], long)
    one_line_error(result, f"{long} line 2", "--truncate")
    assert [p.name for p in (tmp_path / "out").iterdir()] == [inputs[1].name]  # the file before, complete
    cut = bulk(lively_bundle, tmp_path / "cut", "--engine", engine, "--max-input-tokens", "10", "--truncate", long)
    assert cut.exit_code == 0 and f"{long} line 2: truncated to 10 tokens (it has 40)" in cut.stderr, cut.output
    assert (tmp_path / "cut" / "long.txt").read_text(encoding="utf-8").count("\n") == 2


def test_bad_inputs_are_one_line_errors(lively_bundle, inputs, tmp_path):
    one_line_error(bulk(lively_bundle, tmp_path / "o1", tmp_path / "missing.txt"), "missing.txt: no such input file")
    twin = tmp_path / "twin" / inputs[1].name
    twin.parent.mkdir()
    twin.write_text("a\n", encoding="utf-8")
    one_line_error(bulk(lively_bundle, tmp_path / "o2", inputs[1], twin), "same base name")
    blocker = tmp_path / "a_file"
    blocker.write_text("", encoding="utf-8")
    one_line_error(bulk(lively_bundle, blocker, inputs[1]), f"{blocker}: cannot write", "--output")
    one_line_error(bulk(lively_bundle, inputs[1].parent, inputs[1]), "its output would replace it")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"ok\nd\xe9j\xe0\n")
    one_line_error(bulk(lively_bundle, tmp_path / "o3", bad), "not valid UTF-8")
    assert not (tmp_path / "o3" / "latin1.txt").exists() and not list((tmp_path / "o3").iterdir())
    usage = bulk(lively_bundle, tmp_path / "o4", "--num-workers", "2", inputs[1])
    assert usage.exit_code == 2 and "--num-workers needs --engine ray" in usage.output


def test_missing_ray_extra_names_it(lively_bundle, inputs, tmp_path):
    hide_ray = "import sys; sys.modules['ray'] = None; from seq2seq_export.cli import bulk_cmd; bulk_cmd()"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            hide_ray,
            "--bundle",
            str(lively_bundle),
            "--engine",
            "ray",
            "--output",
            str(tmp_path / "out"),
            str(inputs[1]),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "pip install 'seq2seq-export[ray]'" in proc.stderr


def bulk_process(bundle: Path, out: Path, *args: object, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "seq2seq_export", "bulk", "--bundle", str(bundle), "--output", str(out), "--quiet"]
    return subprocess.run([*cmd, *map(str, args)], env=env, capture_output=True, text=True, timeout=300, check=False)


def test_joins_a_running_cluster_from_ray_address(lively_bundle, inputs, ray_local, tmp_path):
    """Another process (the one s2s-bulk starts) joins this module's Ray as a cluster, via RAY_ADDRESS."""
    env = {**os.environ, "RAY_ADDRESS": ray_local.get_runtime_context().gcs_address}
    proc = bulk_process(lively_bundle, tmp_path / "out", "--engine", "ray", "--num-workers", "1", *inputs[1:3], env=env)
    assert proc.returncode == 0, proc.stderr
    for path in inputs[1:3]:
        assert (tmp_path / "out" / path.name).read_bytes() == translate_stdin(lively_bundle, path)


def test_unreachable_cluster_is_one_line(lively_bundle, inputs, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = bulk_process(
        lively_bundle, tmp_path / "out", "--engine", "ray", "--ray-address", f"127.0.0.1:{port}", inputs[1]
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"the Ray cluster at 127.0.0.1:{port}" in proc.stderr and "nothing answers" in proc.stderr


def rows(*spec: tuple[int, int, bool]) -> list[OutRow]:
    return [OutRow(file, line, last, f"out{line}", "", "") for file, line, last in spec]


@pytest.mark.parametrize(
    "spec, message",
    [
        (((0, 1, False), (0, 3, True)), "expected line 2, got"),  # lost
        (((0, 1, False), (0, 1, False), (0, 2, True)), "expected line 2, got"),  # repeated
        (((0, 1, False),), "lines from 2 on never came back"),  # tail lost
        (((0, 1, True), (0, 1, True)), "came back after every file was complete"),  # repeated at the end
    ],
)
def test_rows_lost_or_repeated_write_nothing(spec, message, tmp_path):
    jobs = [Job(tmp_path / "in.txt", tmp_path / "out" / "in.txt")]
    with pytest.raises(IncompleteOutput, match=message):
        write_outputs(jobs, rows(*spec), log=print)
    if "every file" not in message:
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
