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
