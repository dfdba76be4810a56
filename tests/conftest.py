"""Shared fixtures: tiny real models, checkpoints and bundles on disk (no mocks)."""
from __future__ import annotations

from pathlib import Path

import pytest

TINY_SRC = "abcdefgh"
TINY_TGT = "A B C D E F G H"


def tiny_text():
    from seq2seq_export.vocab import TextPipeline, Vocab

    return TextPipeline(Vocab.build([TINY_SRC], "char"), Vocab.build([TINY_TGT], "space"))


def make_checkpoint(path: Path, seed: int = 0, **config_overrides) -> Path:
    """A random-weight model (tiny dims by default) saved as a project checkpoint at `path`."""
    import torch

    from seq2seq_export.checkpoint import Checkpoint, save_checkpoint
    from seq2seq_export.config import ModelConfig
    from seq2seq_export.model import Seq2Seq

    text = tiny_text()
    fields = dict(src_vocab_size=len(text.src), tgt_vocab_size=len(text.tgt), emb_dim=8, hidden_dim=16)
    fields.update(config_overrides)
    torch.manual_seed(seed)
    model = Seq2Seq(ModelConfig(**fields))
    save_checkpoint(path, Checkpoint(model.config, text, model.state_dict()))
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("tiny") / "checkpoint.pt")


@pytest.fixture(scope="session")
def tiny_bundle(tiny_checkpoint, tmp_path_factory) -> Path:
    """The tiny checkpoint exported with both formats (legacy ONNX exporter: fast) and the reference."""
    from seq2seq_export.bundle import export_bundle

    out = tmp_path_factory.mktemp("tiny_bundle") / "bundle"
    return export_bundle(tiny_checkpoint, out, formats=("onnx", "torchscript"), exporter="legacy")


LIVELY_SRC = "abcdefghijklmnopqrstuvwxyz'-."  # cmudict-shaped: ~30 source characters
LIVELY_TGT = " ".join(f"P{i}" for i in range(66))  # and ~70 target tokens


@pytest.fixture(scope="session")
def lively_bundle(tmp_path_factory) -> Path:
    """A random model whose greedy decodes differ by input and end at <eos> at mixed lengths.

    Recurrent and output weights are scaled up (so the input matters) and the <eos> logit is
    raised (so rows finish at different steps), so equality, batching and order tests on it
    cannot pass by accident the way they could on a model that always emits the same token.
    """
    import torch

    from seq2seq_export.bundle import export_bundle
    from seq2seq_export.checkpoint import Checkpoint, save_checkpoint
    from seq2seq_export.config import ModelConfig
    from seq2seq_export.model import Seq2Seq
    from seq2seq_export.vocab import TextPipeline, Vocab

    text = TextPipeline(Vocab.build([LIVELY_SRC], "char"), Vocab.build([LIVELY_TGT], "space"))
    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(len(text.src), len(text.tgt), emb_dim=16, hidden_dim=32))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "rnn" in name or "fc_out" in name:
                p.mul_(3.0)
        model.decoder.fc_out.bias[text.tgt.eos_id] += 2.0
    root = tmp_path_factory.mktemp("lively")
    save_checkpoint(root / "checkpoint.pt", Checkpoint(model.config, text, model.state_dict()))
    return export_bundle(root / "checkpoint.pt", root / "bundle", exporter="legacy", max_len=20)


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one intra-op thread for a module, then restored: on this shared 2-core machine torch's
    default two threads run small models 10-20x slower when other processes compete for the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_addoption(parser):
    """`pytest --bundle DIR`: run the equivalence suite (tests/test_user_bundle.py) on your own bundle."""
    group = parser.getgroup("seq2seq-export", "checking your own bundle (tests/test_user_bundle.py)")
    group.addoption("--bundle", metavar="DIR", default=None,
                    help="bundle directory to verify: every backend vs the eager reference, check by check")
    group.addoption("--bundle-samples", metavar="N", type=int, default=200,
                    help="source sequences decoded per backend (default 200)")
    group.addoption("--bundle-data", metavar="SPEC", default="random",
                    help="sources: random (default), toy, cmudict or tsv:PATH (the test split)")


@pytest.fixture(scope="session")
def toy_checkpoint(tmp_path_factory) -> Path:
    """A small model really trained on the toy task (reverse digits): its decodes end at <eos>.

    Seconds of training, not a good model: most outputs have the right length, many are exact.
    """
    from seq2seq_export.train import load_config, train

    out = tmp_path_factory.mktemp("toy_train")
    cfg = load_config("toy", out=str(out), emb_dim=16, hidden_dim=32, num_layers=1, batch_size=256, epochs=3,
                      max_minutes=0.0, lr=1e-2, threads=1, device="cpu")
    return train(cfg, progress=False).checkpoint
