"""Model variants (issue #8): GRU/LSTM x 1/2 layers x uni/bidirectional encoder x no/Bahdanau/Luong
attention. The eager model's two graphs follow the IO spec, never see padding, replay the
teacher-forced pass step by step, decode batch-invariantly through the eager backend, train, and
round-trip through checkpoints."""

from __future__ import annotations

import itertools

import pytest
import torch
from click.testing import CliRunner
from conftest import tiny_text

from seq2seq_export.attention import masked_softmax
from seq2seq_export.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from seq2seq_export.cli import main
from seq2seq_export.config import ModelConfig
from seq2seq_export.constants import EOS_ID, PAD_ID, SOS_ID
from seq2seq_export.data import load_dataset
from seq2seq_export.errors import BundleError, ConfigError
from seq2seq_export.iospec import BATCH, SRC_LEN, carried_entries, graph_specs, memory_names, state_names
from seq2seq_export.model import Seq2Seq, source_mask
from seq2seq_export.runtime.core import DecodeOptions, pad_batch
from seq2seq_export.runtime.eager import EagerBackend
from seq2seq_export.runtime.greedy import greedy_decode
from seq2seq_export.runtime.state import config_memory_flows, config_state_flows, memory_flows
from seq2seq_export.train.batching import EncodedPairs
from seq2seq_export.train.metrics import validation_loss

VARIANTS = [
    dict(rnn=rnn, num_layers=layers, bidirectional_encoder=bi, attention=att)
    for rnn, layers, bi, att in itertools.product(("gru", "lstm"), (1, 2), (False, True), ("none", "bahdanau", "luong"))
] + [
    dict(rnn="lstm", num_layers=2, attention="luong", attention_score="dot"),
    dict(rnn="gru", num_layers=2, bidirectional_encoder=True, attention="bahdanau", encoder_hidden_dim=5),
]
IDS = ["-".join(str(v) for v in variant.values()) for variant in VARIANTS]
SEQS = [[4, 5, 6, 7, 8, 9], [7, 8], [], [9, 4, 5]]  # mixed lengths, one empty source
PAD, SOS, EOS = PAD_ID, SOS_ID, EOS_ID


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test here on one torch thread (the shared machine's fastest setting)."""


def _model(variant: dict, seed: int = 0) -> Seq2Seq:
    """A tiny random model whose weights are scaled up, so its outputs depend on its inputs."""
    torch.manual_seed(seed)
    text = tiny_text()  # 12 source and 12 target ids, so checkpoints of these models carry real vocabularies
    model = Seq2Seq(ModelConfig(len(text.src), len(text.tgt), emb_dim=8, hidden_dim=16, **variant)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    return model


def _first_step(model: Seq2Seq, seqs: list[list[int]]) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Encoder outputs and the first decoder step's outputs for padded `seqs`."""
    src, lengths = (torch.from_numpy(a) for a in pad_batch(seqs, PAD))
    with torch.no_grad():
        enc = model.encode(src, lengths)
        step = model.decode_step(torch.full((len(seqs),), SOS), *enc)
    return enc, step


def test_config_options_properties_and_bad_combinations():
    base = dict(src_vocab_size=5, tgt_vocab_size=6, hidden_dim=8)
    cfg = ModelConfig(**base, rnn="lstm", bidirectional_encoder=True, attention="bahdanau")
    assert (state_names(cfg), memory_names(cfg), cfg.encoder_output_dim) == (
        ("hidden", "cell"),
        ("encoder_outputs", "src_mask", "attention_keys"),
        16,
    )
    assert memory_names(ModelConfig(**base, attention="luong")) == ("encoder_outputs", "src_mask")
    baseline = ModelConfig(**base)
    assert (state_names(baseline), memory_names(baseline), baseline.encoder_output_dim) == (("hidden",), (), 8)
    assert ModelConfig.from_dict(dict(base, num_layers=1, dropout=0.0, rnn="gru")) == baseline  # a pre-#8 dict
    narrow = ModelConfig(**base, bidirectional_encoder=True, attention="bahdanau", encoder_hidden_dim=3)
    assert (narrow.encoder_dim, narrow.encoder_output_dim, baseline.encoder_dim) == (3, 6, 8)
    assert ModelConfig(**base, encoder_hidden_dim=8).encoder_dim == 8  # the decoder's size: allowed unidirectional
    for bad, message in [
        (dict(rnn="rnn"), "rnn must be one of gru, lstm"),
        (dict(attention="luong", attention_score="cosine"), "attention_score must be one of general, dot"),
        (dict(attention="multihead"), "attention must be one of none, bahdanau, luong"),
        (dict(attention="bahdanau", attention_score="dot"), "applies to luong attention only"),
        (
            dict(attention="luong", attention_score="dot", bidirectional_encoder=True),
            "need encoder outputs of hidden_dim",
        ),
        (dict(bidirectional_encoder="yes"), "bidirectional_encoder must be true or false"),
        (dict(encoder_hidden_dim=4), "may differ from hidden_dim only with a bidirectional encoder"),
        (dict(bidirectional_encoder=True, encoder_hidden_dim=0), "encoder_hidden_dim must be a positive integer"),
        (dict(bidirectional_encoder=True, encoder_hidden_dim=True), "encoder_hidden_dim must be a positive integer"),
    ]:
        with pytest.raises(ConfigError, match=message):
            ModelConfig(**base, **bad)


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_encode_and_decode_step_follow_the_io_spec(variant):
    model = _model(variant)
    enc, step = _first_step(model, SEQS)
    sizes = {BATCH: len(SEQS), SRC_LEN: max(map(len, SEQS))}
    specs = graph_specs(model.config)
    for tensors, spec in ((enc, specs["encoder"].outputs), (step, specs["decoder_step"].outputs)):
        assert len(tensors) == len(spec)
        for t, s in zip(tensors, spec):
            assert tuple(t.shape) == tuple(sizes.get(d, d) for d in s.shape), s.name
            assert str(t.dtype) == f"torch.{s.dtype}", s.name
            assert not t.isnan().any(), s.name
    assert [t.name for t in specs["decoder_step"].inputs][1:] == [t.name for t in specs["encoder"].outputs]
    logits, next_tokens = step[:2]
    assert torch.equal(next_tokens, logits.argmax(-1))
    named = dict(zip(specs["encoder"].output_names, enc))
    if memory_names(model.config):  # src_mask: 1.0 exactly at real positions
        assert named["src_mask"].tolist() == [[float(j < len(s)) for j in range(sizes[SRC_LEN])] for s in SEQS]
    if model.config.attention == "bahdanau":  # the keys, computed once by the encoder, are the key projection
        assert torch.equal(named["attention_keys"], model.decoder.attention.key_proj(named["encoder_outputs"]))


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_padding_never_changes_a_row(variant):
    """Each row alone == the same row in a mixed-length batch: encoder outputs, states, step outputs."""
    model = _model(variant)
    cfg = model.config
    n_states = len(state_names(cfg))
    enc, step = _first_step(model, SEQS)
    for i, seq in enumerate(SEQS):
        enc_alone, step_alone = _first_step(model, [seq])
        width = max(1, len(seq))
        for together, alone in zip(
            enc[:n_states] + step[2 : 2 + n_states], enc_alone[:n_states] + step_alone[2 : 2 + n_states]
        ):
            torch.testing.assert_close(together[:, i : i + 1], alone, atol=1e-6, rtol=0)  # (L, 1, H)
        torch.testing.assert_close(step[0][i : i + 1], step_alone[0], atol=1e-6, rtol=0)  # logits
        if memory_names(cfg):
            outputs, mask, attention = enc[n_states], enc[n_states + 1], step[-1]
            torch.testing.assert_close(outputs[i : i + 1, :width], enc_alone[n_states], atol=1e-6, rtol=0)
            torch.testing.assert_close(attention[i : i + 1, :width], step_alone[-1], atol=1e-6, rtol=0)
            assert torch.equal(mask[i], (torch.arange(mask.shape[1]) < len(seq)).float())
            assert not outputs[i, len(seq) :].any()  # exact zeros at padding
            assert not attention[i, len(seq) :].any()


@pytest.mark.parametrize(
    "variant",
    [v for v in VARIANTS if v["attention"] != "none"],
    ids=[i for i, v in zip(IDS, VARIANTS) if v["attention"] != "none"],
)
def test_attention_weights_cover_only_real_positions(variant):
    model = _model(variant)
    src, lengths = (torch.from_numpy(a) for a in pad_batch(SEQS, PAD))
    with torch.no_grad():
        state = model.encode(src, lengths)
        n_states = len(state_names(model.config))
        for token in (SOS, 5, 7):  # a few steps, so the queries differ
            *out, attention = model.decode_step(torch.full((len(SEQS),), token), *state)
            state = tuple(out[2:]) + state[n_states:]
            assert (attention >= 0).all() and not attention.isnan().any()
            for i, seq in enumerate(SEQS):
                assert not attention[i, len(seq) :].any()
                assert float(attention[i].sum()) == pytest.approx(1.0 if seq else 0.0, abs=1e-6)


def test_masked_softmax_of_an_all_padding_row_is_zero():
    scores = torch.tensor([[[3.0, -1.0, 200.0]], [[1.0, 2.0, 3.0]]])  # (B=2, T=1, S=3)
    mask = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    weights = masked_softmax(scores, mask)
    want = torch.cat([torch.softmax(torch.tensor([3.0, -1.0]), 0), torch.zeros(1)])
    torch.testing.assert_close(weights[0, 0], want, atol=1e-7, rtol=0)
    assert torch.equal(weights[1], torch.zeros(1, 3))


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_teacher_forced_pass_equals_step_by_step_decoding(variant):
    model = _model(variant)
    src, lengths = (torch.from_numpy(a) for a in pad_batch(SEQS, PAD))
    tgt_in = torch.tensor([[SOS, 5, 6, 7], [SOS, 9, 4, PAD], [SOS, 8, PAD, PAD], [SOS, 4, 4, 10]])
    n_states = len(state_names(model.config))
    with torch.no_grad():
        full = model(src, lengths, tgt_in, 1.0)  # (B, T, V)
        state = model.encode(src, lengths)
        for t in range(tgt_in.shape[1]):
            logits, _, *rest = model.decode_step(tgt_in[:, t], *state)
            torch.testing.assert_close(logits, full[:, t], atol=1e-5, rtol=0)
            state = tuple(rest[:n_states]) + state[n_states:]
        mixed = model(src, lengths, tgt_in, 0.999999, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(mixed, full, atol=1e-5, rtol=0)


def _lively_backend(variant: dict) -> tuple[EagerBackend, int]:
    """The eager backend of a random model of this variant plus an end token on which the rows of
    SEQS finish at three or more different steps, so finished rows really leave the batch.

    The end token is picked from a decode that never ends: the token whose first occurrences are
    spread over the most steps; a few seeds are tried until the spread is wide enough.
    """
    for seed in range(10):
        backend = EagerBackend(_model(variant, seed), "cpu")
        free = greedy_decode(backend, SEQS, DecodeOptions(PAD, SOS, end_id=-1, max_len=8))  # every row: 8 steps
        spread = {tok: len({row.index(tok) if tok in row else 8 for row in free}) for tok in range(12)}
        end = max(spread, key=spread.get)
        if spread[end] >= 3:
            return backend, end
    raise AssertionError(f"no seed gives {variant} rows that end at different steps")


@pytest.mark.parametrize("variant", VARIANTS, ids=IDS)
def test_eager_greedy_decoding_is_batch_invariant(variant):
    backend, end = _lively_backend(variant)
    opts = DecodeOptions(PAD, SOS, end_id=end, max_len=8)
    together = greedy_decode(backend, SEQS, opts)
    assert len({len(row) for row in together}) >= 3
    assert together == [greedy_decode(backend, [s], opts)[0] for s in SEQS]
    # select() keeps the right rows of every state and memory tensor, whatever its batch axis
    state = backend.encode(*pad_batch(SEQS, PAD))
    _, state = backend.step(torch.full((len(SEQS),), SOS).numpy(), state)
    rows = torch.tensor([0, 3]).numpy()
    kept = backend.select(state, rows)
    alone = backend.step(torch.full((1,), SOS).numpy(), backend.encode(*pad_batch([SEQS[3]], PAD)))[1]
    n = len(backend.flows)
    assert len(kept) == len(alone) == n + len(memory_names(backend.model.config))
    for got, want in zip(kept[:n], alone[:n]):  # states (L, 2, H): batch axis 1
        torch.testing.assert_close(got[:, 1:2], want, atol=1e-6, rtol=0)
    for got, want in zip(kept[n:], alone[n:]):  # memory (2, S, De) and (2, S): batch axis 0
        torch.testing.assert_close(got[1:2, : len(SEQS[3])], want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_encoder_matches_torch_rnn_on_an_unpadded_row(rnn, bidirectional):
    model = _model(dict(rnn=rnn, num_layers=2, bidirectional_encoder=bidirectional, attention="luong"))
    src = torch.tensor([[4, 5, 6, 7, 8, 9, 10, 4]])
    with torch.no_grad():
        outputs, states = model.encoder(src, torch.tensor([8]))
        ref_outputs, ref_states = model.encoder.rnn(model.encoder.embedding(src))
    torch.testing.assert_close(outputs, ref_outputs, atol=1e-6, rtol=0)
    if not bidirectional:  # the bidirectional finals go through the learned bridge
        for got, want in zip(states, ref_states if rnn == "lstm" else [ref_states]):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("variant", [VARIANTS[i] for i in (0, -3, -2, -1)], ids=[IDS[i] for i in (0, -3, -2, -1)])
def test_scripted_encoder_and_decoder_step_match_eager(variant):
    """Exporters script Encoder.forward and Decoder.step: every variant's branches must compile."""
    model = _model(variant)
    scripted = torch.jit.script(model)
    src, lengths = (torch.from_numpy(a) for a in pad_batch(SEQS, PAD))
    with torch.no_grad():
        memory, states = model.encoder(src, lengths)
        s_memory, s_states = scripted.encoder(src, lengths)
        mask = source_mask(lengths, src.shape[1]) if memory_names(model.config) else None
        bahdanau = model.config.attention == "bahdanau"
        keys = model.decoder.attention_keys(memory) if bahdanau else None
        s_keys = scripted.decoder.attention_keys(s_memory) if bahdanau else None
        eager_step = model.decoder.step(torch.full((len(SEQS),), SOS), states, memory, mask, keys)
        scripted_step = scripted.decoder.step(torch.full((len(SEQS),), SOS), s_states, s_memory, mask, s_keys)
    for got, want in zip(
        [s_memory, *s_states, scripted_step[0], *scripted_step[1]], [memory, *states, eager_step[0], *eager_step[1]]
    ):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert (scripted_step[2] is None) == (eager_step[2] is None) == (not memory_names(model.config))


def test_the_baseline_keeps_the_seed_parameter_names():
    assert list(Seq2Seq(ModelConfig(5, 6)).state_dict()) == [
        f"{side}.{name}"
        for side, names in (
            (
                "encoder",
                ["embedding.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"],
            ),
            (
                "decoder",
                [
                    "embedding.weight",
                    "rnn.weight_ih_l0",
                    "rnn.weight_hh_l0",
                    "rnn.bias_ih_l0",
                    "rnn.bias_hh_l0",
                    "fc_out.weight",
                    "fc_out.bias",
                ],
            ),
        )
        for name in names
    ]


def test_memory_flows_from_config_and_manifest_entries():
    cfg = ModelConfig(5, 6, hidden_dim=8, attention="luong", rnn="lstm")
    decoder = graph_specs(cfg)["decoder_step"]
    flows = config_memory_flows(cfg, decoder)
    assert [(f.encoder_output, f.decoder_input, f.batch_axis) for f in flows] == [
        ("encoder_outputs", "encoder_outputs", 0),
        ("src_mask", "src_mask", 0),
    ]
    assert config_memory_flows(ModelConfig(5, 6), graph_specs(ModelConfig(5, 6))["decoder_step"]) == ()
    # One function writes the manifest's entries and the flows a backend built from a model uses.
    assert carried_entries(cfg) == {
        "state": [{"encoder_output": n, "decoder_input": n, "decoder_output": n + "_out"} for n in ("hidden", "cell")],
        "memory": [{"encoder_output": n, "decoder_input": n} for n in ("encoder_outputs", "src_mask")],
    }
    assert [f.decoder_output for f in config_state_flows(cfg, decoder)] == ["hidden_out", "cell_out"]
    with pytest.raises(BundleError, match="lacks encoder_output/decoder_input"):
        memory_flows([{"encoder_output": "encoder_outputs"}], decoder)
    with pytest.raises(BundleError, match="does not match the decoder_step graph"):
        memory_flows([{"encoder_output": "encoder_outputs", "decoder_input": "keys"}], decoder)


def test_variant_checkpoint_round_trip_and_old_checkpoints_load(tmp_path):
    variant = dict(rnn="lstm", num_layers=2, bidirectional_encoder=True, attention="bahdanau", dropout=0.1)
    model = _model(variant)
    save_checkpoint(tmp_path / "v.pt", Checkpoint(model.config, tiny_text(), model.state_dict()))
    loaded = load_checkpoint(tmp_path / "v.pt")
    assert loaded.config == model.config
    _, step = _first_step(model, SEQS)
    _, step_loaded = _first_step(loaded.build_model(), SEQS)
    for a, b in zip(step, step_loaded):
        assert torch.equal(a, b)
    # a checkpoint written before the variant fields existed loads as the baseline
    raw = torch.load(tmp_path / "v.pt", weights_only=True)
    base = Seq2Seq(ModelConfig(model.config.src_vocab_size, model.config.tgt_vocab_size, emb_dim=8, hidden_dim=16))
    old = {
        k: v
        for k, v in base.config.to_dict().items()
        if k not in ("bidirectional_encoder", "attention", "attention_score")
    }
    torch.save({**raw, "model_config": old, "state_dict": base.state_dict()}, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt").config == base.config


def test_s2s_train_trains_an_attention_lstm_bidirectional_model(tmp_path):
    """A few steps on the toy task through the CLI options: the loss goes down and the checkpoint
    records the variant."""
    out = tmp_path / "run"
    args = [
        "train",
        "--preset",
        "toy",
        "--out",
        str(out),
        "--rnn",
        "lstm",
        "--bidirectional",
        "--attention",
        "luong",
        "--layers",
        "2",
        "--dropout",
        "0.1",
        "--emb-dim",
        "16",
        "--hidden-dim",
        "32",
        "--batch-size",
        "64",
        "--lr",
        "1e-2",
        "--max-steps",
        "40",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--quiet",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(out / "checkpoint.pt")
    cfg = ckpt.config
    assert (cfg.rnn, cfg.num_layers, cfg.bidirectional_encoder, cfg.attention) == ("lstm", 2, True, "luong")
    # the same model before training: train() seeds torch with --seed (0) right before building it
    torch.manual_seed(0)
    untrained = Seq2Seq(cfg)
    valid = EncodedPairs.from_text(ckpt.text, load_dataset("toy", 0).valid)
    before = validation_loss(untrained, valid, ckpt.text.tgt.pad_id, 512, torch.device("cpu"))
    after = ckpt.training["valid"]["valid_loss"]
    assert after < 0.8 * before, (before, after)
    bad = CliRunner().invoke(
        main, ["train", "--preset", "toy", "--out", str(out), "--attention", "bahdanau", "--attention-score", "dot"]
    )
    assert bad.exit_code == 2 and "applies to luong attention only" in bad.output
