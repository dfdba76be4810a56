"""Property: for any model configuration the code supports and any batch of 1-16 sources of length
1-64, the exported ONNX (legacy exporter, for speed) and TorchScript graphs give the eager model's
logits and states within atol 1e-5 at every step, and identical greedy tokens."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2seq_export.constants import DEFAULT_ATOL, SPECIAL_TOKENS
from seq2seq_export.iospec import LOGITS, NEXT_TOKENS, PREV_TOKENS, SRC_LENGTHS, SRC_TOKENS
from seq2seq_export.runtime import greedy_decode, open_backend, pad_batch

MAX_LEN = 12  # decoding steps per example: enough for state errors to compound
CONFIGS = st.fixed_dictionaries(
    {
        "src_vocab_size": st.integers(5, 40),
        "tgt_vocab_size": st.integers(5, 40),
        "emb_dim": st.sampled_from((1, 3, 16, 32)),
        "hidden_dim": st.sampled_from((1, 5, 16, 48)),
        "num_layers": st.integers(1, 2),
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


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cfg=CONFIGS, lengths=st.lists(st.integers(1, 64), min_size=1, max_size=16), seed=st.integers(0, 2**16))
def test_exported_graphs_match_eager(opened, cfg, lengths, seed):
    bundle, backends = backends_for(*opened, cfg)
    text, (flow,) = bundle.text, bundle.state
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(len(SPECIAL_TOKENS), cfg["src_vocab_size"], n).tolist() for n in lengths]
    src, lens = pad_batch(seqs, text.src.pad_id)
    state = {n: b.run_graph("encoder", {SRC_TOKENS: src, SRC_LENGTHS: lens})[flow["encoder_output"]] for n, b in backends.items()}
    for n in ("onnx", "torchscript"):
        np.testing.assert_allclose(state[n], state["eager"], rtol=0, atol=DEFAULT_ATOL, err_msg=f"{n} encoder")
    prev = np.full(len(seqs), text.tgt.sos_id, dtype=np.int64)
    for step in range(MAX_LEN):  # teacher-forced on eager's argmax; each backend carries its own state
        out = {n: b.run_graph("decoder_step", {PREV_TOKENS: prev, flow["decoder_input"]: state[n]}) for n, b in backends.items()}
        for n in ("onnx", "torchscript"):
            for name in (LOGITS, flow["decoder_output"]):
                np.testing.assert_allclose(out[n][name], out["eager"][name], rtol=0, atol=DEFAULT_ATOL, err_msg=f"{n} {name} step {step}")
        state = {n: o[flow["decoder_output"]] for n, o in out.items()}
        prev = out["eager"][NEXT_TOKENS]
    kw = dict(pad_id=text.src.pad_id, start_id=text.tgt.sos_id, end_id=text.tgt.eos_id, max_len=MAX_LEN)
    tokens = {n: greedy_decode(b, seqs, **kw) for n, b in backends.items()}
    assert tokens["onnx"] == tokens["eager"] and tokens["torchscript"] == tokens["eager"]
