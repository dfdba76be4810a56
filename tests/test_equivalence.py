"""Property: for any model configuration the code supports (sizes, layers, GRU or LSTM, one- or
two-way encoder, attention or not) and any batch of 1-16 sources of length 1-64, the exported ONNX
(legacy exporter, for speed) and TorchScript graphs give the eager model's outputs (state, memory,
logits, attention) within atol 1e-5 at every step, and identical greedy tokens."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seq2seq_export.constants import DEFAULT_ATOL, SPECIAL_TOKENS
from seq2seq_export.runtime import (
    DecodeOptions,
    greedy_decode,
    open_backend,
    teacher_forced_steps,
)

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
                np.testing.assert_allclose(
                    outputs[n][name], want, rtol=0, atol=DEFAULT_ATOL, err_msg=f"{n} {name} {where}"
                )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cfg=CONFIGS, lengths=st.lists(st.integers(1, 64), min_size=1, max_size=16), seed=st.integers(0, 2**16))
def test_exported_graphs_match_eager(opened, cfg, lengths, seed):
    bundle, backends = backends_for(*opened, cfg)
    opts = DecodeOptions.from_bundle(bundle)
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(len(SPECIAL_TOKENS), cfg["src_vocab_size"], n).tolist() for n in lengths]
    # Teacher-forced on eager's argmax (no end token: every row runs MAX_LEN steps); each backend
    # carries its own state and memory.
    free = greedy_decode(backends["eager"], seqs, replace(opts, end_id=-1))
    prev = np.array([[opts.start_id] + row[:-1] for row in free], dtype=np.int64)  # (B, MAX_LEN)
    runs = {n: teacher_forced_steps(b, seqs, prev, pad_id=opts.pad_id) for n, b in backends.items()}
    calls = 0
    for step_calls in zip(*runs.values()):
        step = step_calls[0][0]
        assert_close(
            {n: out for n, (_, _, out) in zip(runs, step_calls)}, "encoder" if step is None else f"step {step}"
        )
        calls += 1
    assert calls == 1 + MAX_LEN
    tokens = {n: greedy_decode(b, seqs, opts) for n, b in backends.items()}
    assert tokens["onnx"] == tokens["eager"] and tokens["torchscript"] == tokens["eager"]
