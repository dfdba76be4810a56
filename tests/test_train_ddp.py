"""torchrun: two real processes (gloo) sharing each global batch take the steps one process takes; rank 0
alone writes; --resume continues; an error ends every rank with exit 2 and one line."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seq2seq_export.checkpoint import load_checkpoint
from seq2seq_export.data import load_dataset
from seq2seq_export.train import load_config, train
from seq2seq_export.train.batching import EncodedPairs, epoch_batches
from seq2seq_export.train.distributed import Ranks

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]
# A real learning rate after a short warm-up, so a wrong gradient shows in the weights (constant after
# it: a run stopped by its time budget then takes the steps of one stopped by as many --max-steps);
# label smoothing, the weight average and clipping (at 0.3: this model's first gradient norms are 0.3
# to 0.6) must see the same values as in one process; Luong attention reads the sources' padding masks.
PRESET = """
emb_dim = 8
hidden_dim = 16
attention = "luong"
warmup_steps = 4
lr = 0.003
lr_schedule = "constant"
label_smoothing = 0.1
ema_decay = 0.9
clip = 0.3
dropout = 0.0
teacher_forcing = 1.0
max_minutes = 0.0
threads = 1
device = "cpu"
eval_batch_size = 64
"""
TOLERANCE = 1e-5
BUDGET = "0.004"  # CPU-minutes of rank 0: 0.24 s, a few dozen steps of this model
PAIRS = 40  # 34 train pairs (and 2 valid, 4 test): 11 batches of 3 and one of 1 per epoch, 12 steps
BATCH = 3  # odd: the ranks share each batch 2 + 1, and the batch of 1 leaves rank 1 without a pair


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A preset file and a small TSV data set of reversed digit strings."""
    root = tmp_path_factory.mktemp("ddp")
    rng = random.Random(0)
    lines = []
    for _ in range(PAIRS):
        digits = [str(rng.randint(1, 9)) for _ in range(rng.randint(2, 9))]
        lines.append(f"{' '.join(digits)}\t{' '.join(reversed(digits))}\n")
    (root / "pairs.tsv").write_text("".join(lines))
    (root / "ddp.toml").write_text(PRESET)
    return root


def _options(setup: Path, steps: int) -> dict:
    return {"dataset": f"tsv:{setup / 'pairs.tsv'}", "batch_size": BATCH, "max_steps": steps}


def single(setup: Path, out: Path, steps: int) -> Path:
    """The same run in this process, no torchrun."""
    train(load_config(str(setup / "ddp.toml"), out=str(out), **_options(setup, steps)), progress=False)
    return out


# Ranks above 0 SIGKILL themselves at any atomic write (fsutil's fault-test hook), so a write there fails the run.
RANK_0_WRITES = 'if [ "$RANK" != 0 ]; then export S2S_TEST_KILL_AT=file-complete; fi; exec "$@"'
LAUNCHES = {
    "module": ["-m", "seq2seq_export", "train"],  # torchrun -m seq2seq_export train
    "script": ["--no-python", str(Path(sys.executable).with_name("s2s-train"))],  # the console script
    "rank-0-writes": ["--no-python", "sh", "-c", RANK_0_WRITES, "sh", sys.executable, "-m", "seq2seq_export", "train"],
}


def torchrun(setup: Path, out: Path, steps: int, *extra: str, launch: str = "module"):
    """`torchrun --nproc-per-node 2 ... train` on this preset and data, as LAUNCHES[launch] starts it."""
    args = ["--preset", str(setup / "ddp.toml"), "--out", str(out)]
    for key, value in _options(setup, steps).items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone"]
    cmd = [*run, *LAUNCHES[launch], *args, *extra]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)


def assert_same_run(a: Path, b: Path, files: tuple[str, ...] = ("checkpoint.pt", "last.pt")) -> None:
    """Every tensor of the checkpoints (weights; in last.pt also the weight average and Adam's moments)
    within TOLERANCE."""
    for name in files:
        x, y = load_checkpoint(a / name), load_checkpoint(b / name)
        assert x.state_dict.keys() == y.state_dict.keys()
        tensors = {f"{name}:{k}": (v, y.state_dict[k]) for k, v in x.state_dict.items()}
        if name == "last.pt":
            assert x.training["cursor"]["step"] == y.training["cursor"]["step"]
            for k, v in x.training["average"]["shadow"].items():
                tensors[f"average:{k}"] = (v, y.training["average"]["shadow"][k])
            for i, state in x.training["optimizer"]["state"].items():
                for k in ("exp_avg", "exp_avg_sq"):
                    tensors[f"adam[{i}].{k}"] = (state[k], y.training["optimizer"]["state"][i][k])
        for key, (u, v) in tensors.items():
            assert u.shape == v.shape and (u - v).abs().max().item() <= TOLERANCE, key


def test_shares_cover_each_batch_once_and_differ_by_at_most_one():
    for world in (1, 2, 3, 4):
        for size in range(0, 11):
            rows = list(range(100, 100 + size))
            shares = [list(Ranks(world, r, "gloo").share(rows)) for r in range(world)]
            assert sum(shares, []) == rows
            assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_the_data_has_a_batch_smaller_than_the_ranks(setup):
    data = load_dataset(f"tsv:{setup / 'pairs.tsv'}", 0)
    pairs = EncodedPairs([[0]] * len(data.train), [[0]] * len(data.train))  # batch sizes depend on the count alone
    for epoch in (0, 1):
        assert sorted(map(len, epoch_batches(pairs, BATCH, 0, epoch)))[:2] == [1, 3]


@pytest.fixture(scope="module")
def ddp_run(setup):
    """Two ranks until rank 0's CPU budget ends the run (a rank that stepped on alone would wait forever);
    rank 1 dies if it writes anything. Returns the run's directory, the process and its steps."""
    out = setup / "ddp"
    proc = torchrun(setup, out, 0, "--max-minutes", BUDGET, launch="rank-0-writes")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped_by"] == "time" and metrics["steps"] > 12, metrics  # past the first epoch
    return out, proc, metrics["steps"]


def test_two_ranks_take_the_single_process_steps(setup, ddp_run):
    out, _, steps = ddp_run
    assert_same_run(single(setup, setup / "single", steps), out)
    rows = [load_checkpoint(run / "last.pt").training["history"] for run in (out, setup / "single")]
    assert [row["step"] for row in rows[0]] == [row["step"] for row in rows[1]]  # each epoch's end, the stop
    for x, y in zip(*rows):
        assert x == {**y, "valid_loss": pytest.approx(y["valid_loss"], abs=TOLERANCE)}


def test_only_rank_0_prints_and_writes(ddp_run):
    out, proc, steps = ddp_run
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "last.pt", "metrics.json"]
    assert proc.stdout.count("checkpoint: ") == 1 and f" {steps} steps in " in proc.stdout, proc.stdout
    assert proc.stdout.count("(stopped by time)") == 1, proc.stdout
    assert proc.stderr.count("distributed: 2 ranks (gloo), global batch 3, per-rank ~1.5") == 1, proc.stderr
    validations = len(load_checkpoint(out / "last.pt").training["history"])
    assert proc.stderr.count("valid loss") == validations == -(-steps // 12), proc.stderr  # epoch ends, the stop


def test_resumed_under_torchrun_takes_the_single_process_steps(setup, ddp_run, tmp_path):
    """The run above, then --resume for 12 steps more (s2s-train as torchrun's script) = one process's run."""
    out, _, steps = ddp_run
    shutil.copytree(out, tmp_path / "resumed")
    resumed = torchrun(setup, tmp_path / "resumed", steps + 12, "--resume", "--max-minutes", "0", launch="script")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming at step {steps}" in resumed.stderr
    # The best checkpoints may differ: the interrupted run also validated where it stopped.
    assert_same_run(single(setup, tmp_path / "single", steps + 12), tmp_path / "resumed", files=("last.pt",))


def test_an_error_ends_every_rank_with_one_line(setup, ddp_run):
    out = ddp_run[0]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = torchrun(setup, out, 14)  # the run is there and neither --resume nor --force is given
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert errors == [
        f"Error: {out} already holds a run (checkpoint.pt, last.pt, metrics.json): pass --out DIR "
        "for a new run, --resume to continue it, or --force to replace it"
    ], proc.stderr
    # torchrun exits 1 after its report of the ranks: both ranks exit 2 once the error is shared, and
    # torchrun names whichever it saw end first as the root cause, then ends the other (SIGTERM) unless
    # it had exited 2 already.
    assert proc.returncode == 1
    root_cause = proc.stderr.split("Root Cause")[1]
    assert "exitcode  : 2" in root_cause and "rank      : " in root_cause, proc.stderr
    assert "seq2seq_export" not in "".join(line for line in proc.stderr.splitlines() if line.startswith("  File"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
