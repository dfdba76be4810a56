"""What the benchmark decodes (source id sequences) and what that costs in FLOPs."""
from __future__ import annotations

import random
from typing import Sequence

from ..config import ModelConfig
from ..errors import ConfigError
from ..iospec import state_names
from ..manifest import Bundle

RANDOM_LENGTHS = (3, 12)  # source lengths drawn uniformly from this range, like cmudict words (chars)
DATA_KINDS = ("random", "toy", "cmudict", "tsv:PATH")


def load_samples(bundle: Bundle, data: str, samples: int, seed: int = 0) -> list[list[int]]:
    """`samples` source id lists: random ids from the bundle's source vocabulary, or a dataset's sources."""
    if data == "random":
        return _random_samples(bundle, samples, seed)
    if data in ("toy", "cmudict") or data.startswith("tsv:"):
        from ..data import load_dataset  # only the dataset path needs the data module

        ds = load_dataset(data, seed=seed)
        sources = [src for src, _ in (*ds.test, *ds.valid, *ds.train)][:samples]  # held-out pairs first
        return [bundle.text.encode_source(s) for s in sources]
    raise ConfigError(f"unknown --data {data!r}: use one of {', '.join(DATA_KINDS)}")


def _random_samples(bundle: Bundle, samples: int, seed: int) -> list[list[int]]:
    src = bundle.text.src
    specials = {src.pad_id, src.unk_id, src.sos_id, src.eos_id}
    ids = [i for i in range(len(src)) if i not in specials] or [int(src.unk_id or 0)]
    rng = random.Random(seed)
    seqs = [[rng.choice(ids) for _ in range(rng.randint(*RANDOM_LENGTHS))] for _ in range(samples)]
    if bundle.text.src_append_eos:
        seqs = [s + [int(src.eos_id or 0)] for s in seqs]  # TextPipeline guarantees an <eos> here
    return seqs


def layer_flops(cfg: ModelConfig) -> int:
    """FLOPs of one unidirectional decoder time step through all layers, without attention: input
    and recurrent GEMMs (3 gates for a GRU, 4 for an LSTM)."""
    h, g = cfg.hidden_dim, _gates(cfg)
    return sum(2 * g * h * ((cfg.emb_dim if layer == 0 else h) + h) for layer in range(cfg.num_layers))


def _gates(cfg: ModelConfig) -> int:
    return 4 if cfg.rnn == "lstm" else 3


def encoder_token_flops(cfg: ModelConfig) -> int:
    """GEMM FLOPs per source token in the encoder: every layer and direction (an LSTM also recomputes
    each layer's gates once more for its final cell), plus Bahdanau's key projection."""
    he, g, dirs = cfg.encoder_dim, _gates(cfg), 2 if cfg.bidirectional_encoder else 1
    per_pass = 2 if cfg.rnn == "lstm" else 1
    flops = sum(per_pass * dirs * 2 * g * he * ((cfg.emb_dim if layer == 0 else dirs * he) + he) for layer in range(cfg.num_layers))
    if cfg.attention == "bahdanau":
        flops += 2 * cfg.encoder_output_dim * cfg.hidden_dim
    return flops


def decoder_step_flops(cfg: ModelConfig, src_len: int) -> int:
    """GEMM FLOPs of one decoder step: the layers, the attention over `src_len` positions, the output layer."""
    h, g, de = cfg.hidden_dim, _gates(cfg), cfg.encoder_output_dim
    flops = layer_flops(cfg) + 2 * h * cfg.tgt_vocab_size
    if cfg.attention == "bahdanau":  # query projection, scores, context, the context's input projection
        flops += 2 * h * h + 2 * src_len * h + 2 * src_len * de + 2 * g * h * de
    elif cfg.attention == "luong":  # (general) query projection, scores, context, combine layer
        flops += (2 * h * de if cfg.attention_score == "general" else 0) + 4 * src_len * de + 2 * (de + h) * h
    return flops


def sequence_flops(cfg: ModelConfig, src_len: int, steps: int) -> int:
    """GEMM FLOPs to translate one sequence; elementwise gate math and embedding lookups are not counted.

    Encoder: every source token through every layer and direction (and Bahdanau's key projection),
    plus a bidirectional encoder's bridge. Decoder: every step (the final <eos> step included)
    through every layer, the attention and the output projection (hidden -> target vocabulary).
    """
    bridge = 0
    if cfg.bidirectional_encoder:
        bridge = len(state_names(cfg)) * cfg.num_layers * 2 * (2 * cfg.encoder_dim) * cfg.hidden_dim
    return src_len * encoder_token_flops(cfg) + bridge + steps * decoder_step_flops(cfg, src_len)


def decoder_steps(outputs: Sequence[Sequence[int]], max_len: int) -> list[int]:
    """Decoder calls each row took: its tokens plus the <eos> step, or max_len if it never ended."""
    return [min(len(toks) + 1, max_len) for toks in outputs]
