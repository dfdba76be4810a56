"""Property: for any model configuration the code supports (sizes, layers, GRU or LSTM, one- or
two-way encoder, attention or not) and any batch of 1-16 sources of length 1-64, the exported ONNX
(legacy exporter, for speed) and TorchScript graphs give the eager model's outputs (state, memory,
logits, attention) within atol 1e-5 at every step, and identical greedy tokens."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2seq_export.constants import DEFAULT_ATOL, SPECIAL_TOKENS
from seq2seq_export.iospec import NEXT_TOKENS, PREV_TOKENS, SRC_LENGTHS, SRC_TOKENS
from seq2seq_export.runtime import greedy_decode, open_backend, pad_batch

MAX_LEN = 12  # decoding steps per example: enough for state errors to compound
CONFIGS = st.fixed_dictionaries(
    {
        "src_vocab_size": st.integers(5, 40),
        "tgt_vocab_size": st.integers(5, 40),
        "emb_dim": st.sampled_from((1, 3, 16, 32)),
        "hidden_dim": st.sampled_from((1, 5, 16, 48)),
        "num_layers": st.integers(1, 2),
        "rnn": st.sampled_from(("gru", "lstm")),
        "bidirectional_encoder": st.booleans(),
        "attention": st.sampled_from(("none", "bahdanau", "luong")),
    }
)


def vocab_text(src_size: int, tgt_size: int):
    from seq2seq_export.vocab import TextPipeline, Vocab

    def vocab(prefix: str, size: int) -> Vocab:
        return Vocab(SPECIAL_TOKENS + tuple(f"{prefix}{i}" for i in range(size - len(SPECIAL_TOKENS))), "space")

    return TextPipeline(vocab("s", src_size), vocab("t", tgt_size))


@pytest.fixture(scope="module")
def opened(one_torch_thread, tmp_path_factory):
    """(cache, root): config key -> (bundle, {backend name: backend}); each configuration is exported once."""
    return {}, tmp_path_factory.mktemp("equivalence")


def backends_for(cache, root, cfg: dict):
    import torch

    from seq2seq_export.bundle import export_bundle
    from seq2seq_export.checkpoint import Checkpoint, save_checkpoint
    from seq2seq_export.config import ModelConfig
    from seq2seq_export.manifest import load_bundle
    from seq2seq_export.model import Seq2Seq

    key = tuple(sorted(cfg.items()))
    if key not in cache:
        d = root / f"m{len(cache)}"
        torch.manual_seed(len(cache))
        model = Seq2Seq(ModelConfig(**cfg))
        text = vocab_text(cfg["src_vocab_size"], cfg["tgt_vocab_size"])
        save_checkpoint(d / "checkpoint.pt", Checkpoint(model.config, text, model.state_dict()))
        bundle = load_bundle(export_bundle(d / "checkpoint.pt", d / "bundle", exporter="legacy", max_len=MAX_LEN))
        cache[key] = bundle, {n: open_backend(bundle, n, threads=1) for n in ("eager", "onnx", "torchscript")}
    return cache[key]


def assert_close(outputs: dict[str, dict[str, np.ndarray]], where: str) -> None:
    """Every float output of onnx and torchscript within atol of eager's."""
    for n in ("onnx", "torchscript"):
        for name, want in outputs["eager"].items():
            if want.dtype == np.float32:
                np.testing.assert_allclose(outputs[n][name], want, rtol=0, atol=DEFAULT_ATOL, err_msg=f"{n} {name} {where}")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cfg=CONFIGS, lengths=st.lists(st.integers(1, 64), min_size=1, max_size=16), seed=st.integers(0, 2**16))
def test_exported_graphs_match_eager(opened, cfg, lengths, seed):
    bundle, backends = backends_for(*opened, cfg)
    text, carried = bundle.text, bundle.state + bundle.memory
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(len(SPECIAL_TOKENS), cfg["src_vocab_size"], n).tolist() for n in lengths]
    src, lens = pad_batch(seqs, text.src.pad_id)
    encoded = {n: b.run_graph("encoder", {SRC_TOKENS: src, SRC_LENGTHS: lens}) for n, b in backends.items()}
    assert_close(encoded, "encoder")
    feeds = {n: {e["decoder_input"]: out[e["encoder_output"]] for e in carried} for n, out in encoded.items()}
    prev = np.full(len(seqs), text.tgt.sos_id, dtype=np.int64)
    for step in range(MAX_LEN):  # teacher-forced on eager's argmax; each backend carries its own state and memory
        out = {n: b.run_graph("decoder_step", {PREV_TOKENS: prev, **feeds[n]}) for n, b in backends.items()}
        assert_close(out, f"step {step}")
        for n in backends:
            feeds[n].update({e["decoder_input"]: out[n][e["decoder_output"]] for e in bundle.state})
        prev = out["eager"][NEXT_TOKENS]
    kw = dict(pad_id=text.src.pad_id, start_id=text.tgt.sos_id, end_id=text.tgt.eos_id, max_len=MAX_LEN)
    tokens = {n: greedy_decode(b, seqs, **kw) for n, b in backends.items()}
    assert tokens["onnx"] == tokens["eager"] and tokens["torchscript"] == tokens["eager"]
