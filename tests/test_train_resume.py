"""--resume reads last.pt field by field: a damaged field is one line naming the file and the field, with
what to do, and nothing in the run is changed."""

from __future__ import annotations

import shutil

import pytest
import torch
from click.testing import CliRunner

from seq2seq_export.cli import train_cmd
from seq2seq_export.errors import CheckpointError
from seq2seq_export.train import load_config, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(emb_dim=8, hidden_dim=16, batch_size=512, epochs=2, max_minutes=0.0, ema_decay=0.9, device="cpu")
W = "decoder.fc_out.bias"


def _set(*path_and_value):
    *path, value = path_and_value

    def change(training):
        node = training
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _negate(training):
    training["optimizer"]["state"][0]["exp_avg_sq"] = -training["optimizer"]["state"][0]["exp_avg_sq"] - 1


# (edit of last.pt's training dict, words the one-line error must hold)
DAMAGES = {
    "optimizer not a mapping": (_set("optimizer", "x"), "optimizer: expected a mapping, got str"),
    "optimizer moment shape": (
        _set("optimizer", "state", 0, "exp_avg", torch.zeros(3)),
        "optimizer.state[0]['exp_avg'] has shape (3,), expected",
    ),
    "optimizer lr a string": (_set("optimizer", "param_groups", 0, "lr", "fast"), "optimizer.param_groups[0].lr"),
    "optimizer no groups": (
        _set("optimizer", "param_groups", []),
        "optimizer.param_groups: expected a list of 1 group",
    ),
    "optimizer state key": (_set("optimizer", "state", {"a": {}}), "optimizer.state: key 'a' is not a parameter index"),
    "optimizer step NaN": (
        _set("optimizer", "state", 0, "step", torch.tensor(float("nan"))),
        "optimizer.state[0].step",
    ),
    "optimizer negative moment": (_negate, "optimizer.state[0].exp_avg_sq: holds negative values"),
    "rng short": (
        _set("rng", "torch", torch.zeros(10, dtype=torch.uint8)),
        "rng.torch: expected a 1-D uint8 tensor of 5056 bytes",
    ),
    "rng garbage": (
        _set("rng", "teacher_forcing", torch.full((5056,), 7, dtype=torch.uint8)),
        "rng.teacher_forcing: is not a valid generator state",
    ),
    "rng missing": (_set("rng", None), "rng: expected a mapping, got NoneType"),
    "history not a list": (_set("history", 5), "history: expected a list of validation rows, got int"),
    "history entry short": (_set("history", [{"epoch": 1.0}]), "history[0]: lacks step, count"),
    "history entry value": (_set("history", 0, "valid_loss", "low"), "history[0].valid_loss: expected a finite number"),
    "best a list": (_set("best", []), "best: expected a mapping, got list"),
    "cursor negative step": (_set("cursor", "step", -1), "cursor.step: expected a non-negative integer, got -1"),
    "cursor seconds a string": (_set("cursor", "elapsed_s", "1m"), "cursor.elapsed_s: expected a finite number"),
    "cursor past the epoch": (_set("cursor", "batch", 10**6), "cursor.batch: 1000000 is past the end of an epoch"),
    "train_config a number": (_set("train_config", 5), "train_config: expected a mapping, got int"),
    "average updates": (_set("average", "updates", "many"), "average.updates: expected a non-negative integer"),
    "average shadow shape": (
        _set("average", "shadow", W, torch.zeros(2)),
        f"average.shadow['{W}'] has shape (2,), expected",
    ),
    "average shadow missing": (lambda t: t["average"]["shadow"].pop(W), f"average.shadow: missing key(s) {W}"),
}


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A run stopped after 3 steps: its last.pt holds every resumable field (weight average too)."""
    out = tmp_path_factory.mktemp("interrupted") / "run"
    train(load_config("toy", out=str(out), max_steps=3, **TINY), progress=False)
    return out


def _damaged_copy(interrupted_run, tmp_path, change):
    out = tmp_path / "run"
    shutil.copytree(interrupted_run, out)
    raw = torch.load(out / "last.pt", weights_only=True)
    change(raw["training"])
    torch.save(raw, out / "last.pt")
    return out, {p.name: p.read_bytes() for p in out.iterdir()}


@pytest.mark.parametrize("case", list(DAMAGES))
def test_damaged_last_pt_is_one_line_naming_the_field(interrupted_run, tmp_path, case):
    change, words = DAMAGES[case]
    out, before = _damaged_copy(interrupted_run, tmp_path, change)
    with pytest.raises(CheckpointError) as err:
        train(load_config("toy", out=str(out), **TINY), resume=True, progress=False)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{out / 'last.pt'}: "), message
    assert words in message and "start afresh with --force" in message, message
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing in the run changed


def test_damaged_last_pt_from_s2s_train_is_exit_2(interrupted_run, tmp_path):
    out, _ = _damaged_copy(interrupted_run, tmp_path, DAMAGES["rng short"][0])
    args = ["--preset", "toy", "--out", str(out), "--resume", "--quiet", "--max-steps", "0"]
    args += [a for k, v in TINY.items() for a in (f"--{k.replace('_', '-')}", str(v))]
    result = CliRunner().invoke(train_cmd, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert lines[0].startswith(f"Error: {out / 'last.pt'}: rng.torch: expected a 1-D uint8 tensor")


def test_an_intact_copy_resumes(interrupted_run, tmp_path):
    out, _ = _damaged_copy(interrupted_run, tmp_path, lambda training: None)
    result = train(load_config("toy", out=str(out), max_steps=5, **TINY), resume=True, progress=False)
    assert result.steps == 5 and result.stopped_by == "steps"
