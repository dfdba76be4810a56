"""import_seed: a model built and saved with the seed tutorial's own module layout becomes a checkpoint
whose exported graphs compute what the seed's modules compute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from seed_models import SeedDecoder, SeedEncoder, SeedSeq2Seq

from seq2seq_export.bundle import export_bundle
from seq2seq_export.checkpoint import load_checkpoint, save_checkpoint
from seq2seq_export.errors import SeedImportError
from seq2seq_export.seed import import_seed, read_vocab_file

# Seed-style vocabularies: specials not at our fixed ids; the source has no start token.
SRC_TOKENS = ["a", "b", "c", "<pad>", "d", "<eos>", "<unk>", " "]
TGT_TOKENS = ["<pad>", "X", "<sos>", "Y", "<eos>", "Z"]


def write_seed_model(root: Path, layers: int = 2, seed: int = 0) -> tuple[SeedSeq2Seq, Path, Path, Path]:
    """A random-weight seed model saved as the seed saves it, plus its two vocabulary files."""
    torch.manual_seed(seed)
    model = SeedSeq2Seq(SeedEncoder(len(SRC_TOKENS), 6, 10, layers), SeedDecoder(len(TGT_TOKENS), 6, 10, layers)).eval()
    root.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), root / "seed.pt")
    (root / "src.txt").write_text("".join(t + "\n" for t in SRC_TOKENS), encoding="utf-8")
    (root / "tgt.txt").write_text("".join(t + "\n" for t in TGT_TOKENS), encoding="utf-8")
    return model, root / "seed.pt", root / "src.txt", root / "tgt.txt"


def test_vocab_file_keeps_space_tokens_and_line_ids(tmp_path):
    (tmp_path / "v.txt").write_text("<pad>\r\n \nx\n", encoding="utf-8")
    assert read_vocab_file(tmp_path / "v.txt") == ["<pad>", " ", "x"]


def test_import_reads_dims_and_special_ids_by_name(tmp_path):
    _, sd, src, tgt = write_seed_model(tmp_path, layers=2)
    ckpt = import_seed(sd, src, tgt, src_eos=True, src_tokenizer="char", tgt_tokenizer="space")
    c = ckpt.config
    assert (c.src_vocab_size, c.tgt_vocab_size, c.emb_dim, c.hidden_dim, c.num_layers) == (8, 6, 6, 10, 2)
    s, t = ckpt.text.src, ckpt.text.tgt
    assert (s.pad_id, s.unk_id, s.sos_id, s.eos_id) == (3, 6, None, 5)
    assert (t.pad_id, t.unk_id, t.sos_id, t.eos_id) == (0, None, 2, 4)
    assert ckpt.text.encode_source("ab z") == [0, 1, 7, 6, 5]
    assert ckpt.training is None


def test_imported_model_exports_to_graphs_that_compute_the_seed_model(tmp_path):
    seed_model, sd, src, tgt = write_seed_model(tmp_path, layers=2)
    save_checkpoint(tmp_path / "ck.pt", import_seed(sd, src, tgt))
    bundle = export_bundle(tmp_path / "ck.pt", tmp_path / "bundle", formats=("onnx",), exporter="legacy")
    enc = ort.InferenceSession(str(bundle / "encoder.onnx"), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(bundle / "decoder_step.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for length in (1, 4, 9):
        ids = rng.integers(0, len(SRC_TOKENS), size=(1, length))  # one unpadded sequence: the seed's setting
        with torch.no_grad():
            want_hidden = seed_model.encoder(torch.from_numpy(ids).T)
            prev = torch.tensor([2])
            want_logits, want_next_hidden = seed_model.decoder(prev, want_hidden)
        (hidden,) = enc.run(None, {"src_tokens": ids, "src_lengths": np.array([length])})
        np.testing.assert_allclose(hidden, want_hidden.numpy(), rtol=0, atol=1e-5)
        logits, _, hidden_out = dec.run(None, {"prev_tokens": prev.numpy(), "hidden": hidden})
        np.testing.assert_allclose(logits, want_logits.numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(hidden_out, want_next_hidden.numpy(), rtol=0, atol=1e-5)
    assert load_checkpoint(tmp_path / "ck.pt").config.num_layers == 2


def test_a_side_may_lack_a_token_only_if_it_does_not_need_it(tmp_path):
    _, sd, src, tgt = write_seed_model(tmp_path)
    src.write_text("".join(t + "\n" for t in SRC_TOKENS).replace("<eos>", "!"), encoding="utf-8")
    assert import_seed(sd, src, tgt).text.src.eos_id is None  # no src_eos: the source needs no end token
    with pytest.raises(
        SeedImportError, match=r"src.txt: the source vocabulary has no eos token '<eos>', which it needs"
    ):
        import_seed(sd, src, tgt, src_eos=True)
