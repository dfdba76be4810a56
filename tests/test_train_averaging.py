"""Training options that change what is optimized or kept: a moving average of the weights, AdamW weight decay."""

from __future__ import annotations

import pytest
import torch

from seq2seq_export.checkpoint import load_checkpoint
from seq2seq_export.config import ModelConfig
from seq2seq_export.model import Seq2Seq
from seq2seq_export.train import load_config, train
from seq2seq_export.train.averaging import WeightAverage
from seq2seq_export.train.state import make_optimizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(emb_dim=8, hidden_dim=16, batch_size=512, epochs=2, max_minutes=0.0, dropout=0.1, teacher_forcing=0.5)


def test_average_follows_the_ramped_decay_and_applied_restores_the_trained_weights():
    model = torch.nn.Linear(3, 2)
    w0 = [p.detach().clone() for p in model.parameters()]
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    w1 = [p.detach().clone() for p in model.parameters()]
    average.update()  # d = min(0.9, 2 / 11)
    d = 2 / 11
    for s, a, b in zip(average.shadow, w0, w1):
        torch.testing.assert_close(s, d * a + (1 - d) * b)
    for _ in range(200):
        average.update()  # d reaches 0.9; the shadow converges on the unchanged weights
    with average.applied():
        for p, b in zip(model.parameters(), w1):
            assert not torch.equal(p, b)
            torch.testing.assert_close(p, b, atol=1e-6, rtol=0)
    for p, b in zip(model.parameters(), w1):
        assert torch.equal(p, b)  # the trained weights are back bit for bit
    restored = WeightAverage(model, 0.9, average.state())
    assert restored.updates == 201 and all(torch.equal(a, b) for a, b in zip(restored.shadow, average.shadow))


def test_best_checkpoint_holds_the_average_not_the_trained_weights(tmp_path):
    result = train(load_config("toy", out=str(tmp_path), ema_decay=0.9, **{**TINY, "epochs": 1}), progress=False)
    best = load_checkpoint(result.checkpoint).state_dict
    last = load_checkpoint(tmp_path / "last.pt")
    shadow = last.training["average"]["shadow"]
    assert last.training["average"]["updates"] == result.steps == 40
    assert best.keys() == shadow.keys() == last.state_dict.keys()
    assert all(torch.equal(best[name], shadow[name]) for name in best)
    assert any(not torch.equal(best[name], last.state_dict[name]) for name in best)


def test_resumed_run_with_average_and_weight_decay_ends_identical(tmp_path):
    options = dict(TINY, ema_decay=0.95, weight_decay=0.1)
    whole = train(load_config("toy", out=str(tmp_path / "whole"), **options), progress=False)
    first = train(load_config("toy", out=str(tmp_path / "cut"), max_steps=55, **options), progress=False)
    assert first.stopped_by == "steps"
    resumed = train(load_config("toy", out=str(tmp_path / "cut"), **options), resume=True, progress=False)
    assert resumed.steps == whole.steps == 80 and resumed.test == whole.test
    for file in ("last.pt", "checkpoint.pt"):
        a, b = load_checkpoint(tmp_path / "whole" / file), load_checkpoint(tmp_path / "cut" / file)
        assert all(torch.equal(t, b.state_dict[name]) for name, t in a.state_dict.items()), file
    a, b = (load_checkpoint(tmp_path / run / "last.pt").training["average"] for run in ("whole", "cut"))
    assert a["updates"] == b["updates"] == 80
    assert all(torch.equal(t, b["shadow"][name]) for name, t in a["shadow"].items())


def test_weight_decay_shrinks_weight_matrices_and_embeddings_but_not_biases():
    model = Seq2Seq(ModelConfig(src_vocab_size=7, tgt_vocab_size=9, emb_dim=4, hidden_dim=6))
    assert type(make_optimizer(model, load_config("toy", lr=0.01))) is torch.optim.Adam
    optimizer = make_optimizer(model, load_config("toy", lr=0.01, weight_decay=0.1))
    assert type(optimizer) is torch.optim.AdamW
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # Adam's own update is then exactly zero: only the decay moves weights
    optimizer.step()
    decayed = 0
    for name, p in model.named_parameters():
        if p.dim() >= 2:
            torch.testing.assert_close(p.detach(), before[name] * (1 - 0.01 * 0.1))
            decayed += 1
        else:
            assert torch.equal(p.detach(), before[name]), name
    assert decayed >= 5 and "decoder.embedding.weight" in before


def test_resume_without_a_stored_average_is_a_one_line_error(tmp_path):
    from seq2seq_export.checkpoint import Checkpoint, save_checkpoint
    from seq2seq_export.errors import CheckpointError

    options = dict(TINY, ema_decay=0.9)
    train(load_config("toy", out=str(tmp_path), max_steps=5, **options), progress=False)
    last = load_checkpoint(tmp_path / "last.pt")
    training = {k: v for k, v in last.training.items() if k != "average"}
    save_checkpoint(tmp_path / "last.pt", Checkpoint(last.config, last.text, last.state_dict, training))
    with pytest.raises(CheckpointError, match="ema_decay is set but the file holds no weight average"):
        train(load_config("toy", out=str(tmp_path), **options), resume=True, progress=False)
    damaged = {"updates": 3, "shadow": {}}
    with pytest.raises(CheckpointError, match="the stored weight average lacks .*weight"):
        WeightAverage(torch.nn.Linear(2, 2), 0.9, damaged)
