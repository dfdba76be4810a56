import pytest
import torch
from seed_models import SeedDecoder, SeedEncoder, SeedSeq2Seq

from seq2seq_export.config import ModelConfig
from seq2seq_export.errors import ConfigError
from seq2seq_export.model import Seq2Seq, select_device, sequence_loss


def _model(num_layers=1, seed=0):
    torch.manual_seed(seed)
    return Seq2Seq(
        ModelConfig(src_vocab_size=11, tgt_vocab_size=13, emb_dim=8, hidden_dim=16, num_layers=num_layers)
    ).eval()


@pytest.mark.parametrize("num_layers", [1, 2])
def test_padding_does_not_change_the_encoder_state(num_layers):
    model = _model(num_layers)
    seqs = [[4, 5, 6], [7, 8, 9, 10, 4, 5], [6]]
    batch = torch.zeros(3, 6, dtype=torch.int64)
    for i, s in enumerate(seqs):
        batch[i, : len(s)] = torch.tensor(s)
    with torch.no_grad():
        (together,) = model.encode(batch, torch.tensor([len(s) for s in seqs]))  # (L, 3, H)
        for i, s in enumerate(seqs):
            (alone,) = model.encode(torch.tensor([s]), torch.tensor([len(s)]))  # (L, 1, H)
            torch.testing.assert_close(together[:, i : i + 1], alone, atol=1e-6, rtol=0)
    assert together.shape == (num_layers, 3, 16)


def test_encoder_matches_the_stacked_gru_run_on_the_unpadded_sequence():
    model = _model(2)
    src = torch.tensor([[4, 5, 6, 7]])
    with torch.no_grad():
        _, reference = model.encoder.rnn(model.encoder.embedding(src))
        torch.testing.assert_close(model.encode(src, torch.tensor([4]))[0], reference, atol=1e-6, rtol=0)


def test_state_dict_from_the_seed_layout_loads_unchanged():
    seed = SeedSeq2Seq(SeedEncoder(11, 8, 16, 1), SeedDecoder(13, 8, 16, 1))
    state = seed.state_dict()
    model = Seq2Seq(ModelConfig(src_vocab_size=11, tgt_vocab_size=13, emb_dim=8, hidden_dim=16))
    model.load_state_dict(state, strict=True)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name


def test_decode_step_replays_the_teacher_forced_pass():
    model = _model(2)
    src, lengths = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
    tgt_in = torch.tensor([[2, 5, 6, 7], [2, 9, 4, 0]])
    with torch.no_grad():
        full = model(src, lengths, tgt_in)  # (B, T, V)
        (hidden,) = model.encode(src, lengths)
        for t in range(tgt_in.shape[1]):
            logits, nxt, hidden = model.decode_step(tgt_in[:, t], hidden)
            torch.testing.assert_close(logits, full[:, t], atol=1e-6, rtol=0)
            assert torch.equal(nxt, logits.argmax(-1))


def test_teacher_forcing_ratio_paths_agree_when_every_step_is_forced():
    model = _model()
    src, lengths, tgt_in = torch.tensor([[4, 5]]), torch.tensor([2]), torch.tensor([[2, 7, 8]])
    with torch.no_grad():
        fast = model(src, lengths, tgt_in, 1.0)
        stepwise = model(src, lengths, tgt_in, 0.999999, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(stepwise, fast, atol=1e-6, rtol=0)


def test_sequence_loss_ignores_padding():
    logits = torch.randn(2, 3, 5)
    targets = torch.tensor([[1, 2, 0], [3, 0, 0]])
    padded_garbage = logits.clone()
    padded_garbage[0, 2] = 100.0
    padded_garbage[1, 1:] = -100.0
    assert torch.equal(sequence_loss(logits, targets, 0), sequence_loss(padded_garbage, targets, 0))


def test_label_smoothing_spreads_target_mass_and_still_ignores_padding():
    logits = torch.randn(2, 3, 5)
    targets = torch.tensor([[1, 2, 0], [3, 0, 0]])
    real = targets != 0
    logp = logits.log_softmax(-1)[real]  # (3 real positions, V)
    nll, uniform = -logp.gather(1, targets[real].unsqueeze(1)).mean(), -logp.mean()
    smoothed = sequence_loss(logits, targets, 0, label_smoothing=0.1)
    torch.testing.assert_close(smoothed, 0.9 * nll + 0.1 * uniform)
    assert not torch.isclose(smoothed, sequence_loss(logits, targets, 0))


def test_model_scripts_and_bad_configs_raise():
    torch.jit.script(_model())
    with pytest.raises(ConfigError, match="hidden_dim must be a positive integer"):
        ModelConfig(src_vocab_size=5, tgt_vocab_size=5, hidden_dim=0)
    with pytest.raises(ConfigError, match="unknown field"):
        ModelConfig.from_dict({"src_vocab_size": 5, "tgt_vocab_size": 5, "heads": 2})
    assert select_device("cpu") == torch.device("cpu")
