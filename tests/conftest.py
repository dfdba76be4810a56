"""Shared fixtures: tiny real models, checkpoints and bundles on disk (no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seq2seq_export.constants import SPECIAL_TOKENS

# The checks s2s-verify runs on every exported backend (the ONNX lint comes on top for onnx).
DECODE_CHECKS = (
    "io.encoder",
    "values.encoder",
    "io.decoder_step",
    "values.decoder_step",
    "teacher_forced",
    "greedy",
    "batch_invariance",
    "beam",
    "beam_invariance",
)

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


def lively_text():
    from seq2seq_export.vocab import TextPipeline, Vocab

    return TextPipeline(Vocab.build([LIVELY_SRC], "char"), Vocab.build([LIVELY_TGT], "space"))


def lively_checkpoint(
    path: Path, text=None, seed: int = 0, scale: float = 4.0, eos_boost: float | None = None, **config
) -> Path:
    """A random model whose greedy decodes differ by input and end at <eos> at mixed lengths.

    Every weight except the embeddings is scaled up (so the input matters) and the <eos> logit is
    raised (so rows finish at different steps), so equality, batching and order tests on it
    cannot pass by accident the way they could on a model that always emits the same token.
    eos_boost None calibrates the raise so that <eos> wins about EOS_RATE of the steps, which keeps
    every variant lively. `config` overrides ModelConfig fields (emb_dim 16, hidden_dim 32 by
    default), e.g. rnn="lstm", num_layers=2, bidirectional_encoder=True, attention="bahdanau".
    """
    import torch

    from seq2seq_export.checkpoint import Checkpoint, save_checkpoint
    from seq2seq_export.config import ModelConfig
    from seq2seq_export.model import Seq2Seq

    text = text or lively_text()
    torch.manual_seed(seed)
    model = Seq2Seq(ModelConfig(len(text.src), len(text.tgt), **{"emb_dim": 16, "hidden_dim": 32, **config})).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "embedding" not in name:
                p.mul_(scale)
        boost = _eos_margin(model, text, EOS_RATE) if eos_boost is None else eos_boost
        model.decoder.fc_out.bias[text.tgt.eos_id] += boost
    save_checkpoint(path, Checkpoint(model.config, text, model.state_dict()))
    return path


EOS_RATE = 0.15  # share of decoder steps lively_checkpoint's calibrated models end at


def _eos_margin(model, text, rate: float) -> float:
    """How much to raise the <eos> logit so that it wins `rate` of the steps of decodes that never
    stop (each step fed the best other token), on random sources."""
    import torch

    from seq2seq_export.iospec import state_names

    n_states, eos = len(state_names(model.config)), text.tgt.eos_id
    gen = torch.Generator().manual_seed(0)
    src = torch.randint(len(SPECIAL_TOKENS), len(text.src), (64, 8), generator=gen)
    out = model.encode(src, torch.randint(1, 9, (64,), generator=gen))
    states, memory = out[:n_states], out[n_states:]
    prev, margins = torch.full((64,), text.tgt.sos_id), []
    for _ in range(8):
        out = model.decode_step(prev, *states, *memory)
        others = out[0].clone()
        others[:, eos] = float("-inf")
        margins.append(others.max(1).values - out[0][:, eos])
        prev, states = others.argmax(1), out[2 : 2 + n_states]
    return float(torch.quantile(torch.cat(margins), rate))


@pytest.fixture(scope="session")
def lively_bundle(tmp_path_factory) -> Path:
    """The baseline (one-layer GRU, no attention) lively_checkpoint, exported with both formats."""
    from seq2seq_export.bundle import export_bundle

    root = tmp_path_factory.mktemp("lively")
    checkpoint = lively_checkpoint(root / "checkpoint.pt", scale=3.0, eos_boost=2.0)
    return export_bundle(checkpoint, root / "bundle", exporter="legacy", max_len=20)


@pytest.fixture(scope="session")
def normalizing_bundle(tmp_path_factory) -> Path:
    """lively_bundle's model with a source that is normalized: NFC, then ASCII lower-casing."""
    from dataclasses import replace

    from seq2seq_export.bundle import export_bundle

    root = tmp_path_factory.mktemp("normalizing")
    text = replace(lively_text(), normalize=("nfc", "lower"))
    checkpoint = lively_checkpoint(root / "checkpoint.pt", text=text, scale=3.0, eos_boost=2.0)
    return export_bundle(checkpoint, root / "bundle", exporter="legacy", max_len=20)


# The issue #8 matrix: every (rnn, layers, bidirectional encoder, attention) combination.
VARIANTS = tuple(
    dict(rnn=rnn, num_layers=layers, bidirectional_encoder=bi, attention=attention)
    for rnn in ("gru", "lstm")
    for layers in (1, 2)
    for bi in (False, True)
    for attention in ("none", "bahdanau", "luong")
)
# The variant the other-language drivers are checked on: every feature at once.
ATTENTION_LSTM_BI = dict(rnn="lstm", num_layers=2, bidirectional_encoder=True, attention="bahdanau")


@pytest.fixture(scope="session")
def variant_bundle(tmp_path_factory):
    """variant_bundle(exporter="legacy", **config) -> a lively bundle (ONNX + TorchScript + reference,
    max_len 12) of that model variant, exported once per session per arguments."""
    from seq2seq_export.bundle import export_bundle

    built: dict[tuple, Path] = {}

    def build(exporter: str = "legacy", **config) -> Path:
        key = (exporter,) + tuple(sorted(config.items()))
        if key not in built:
            root = tmp_path_factory.mktemp("variant")
            ckpt = lively_checkpoint(root / "checkpoint.pt", **config)
            built[key] = export_bundle(ckpt, root / "bundle", exporter=exporter, max_len=12)
        return built[key]

    return build


@pytest.fixture(scope="session")
def attention_bundle(variant_bundle) -> Path:
    """The ATTENTION_LSTM_BI variant (2-layer LSTM, bidirectional encoder, Bahdanau attention)."""
    return variant_bundle(**ATTENTION_LSTM_BI)


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
    group.addoption(
        "--bundle",
        metavar="DIR",
        default=None,
        help="bundle directory to verify: every backend vs the eager reference, check by check",
    )
    group.addoption(
        "--bundle-samples",
        metavar="N",
        type=int,
        default=200,
        help="source sequences decoded per backend (default 200)",
    )
    group.addoption(
        "--bundle-data",
        metavar="SPEC",
        default="random",
        help="sources: random (default), toy, cmudict or tsv:PATH (the test split)",
    )


@pytest.fixture(scope="session")
def toy_checkpoint(tmp_path_factory) -> Path:
    """A small model really trained on the toy task (reverse digits): its decodes end at <eos>.

    Seconds of training, not a good model: most outputs have the right length, many are exact.
    """
    from seq2seq_export.train import load_config, train

    out = tmp_path_factory.mktemp("toy_train")
    cfg = load_config(
        "toy",
        out=str(out),
        emb_dim=16,
        hidden_dim=32,
        num_layers=1,
        batch_size=256,
        epochs=3,
        max_minutes=0.0,
        lr=1e-2,
        threads=1,
        device="cpu",
    )
    return train(cfg, progress=False).checkpoint
