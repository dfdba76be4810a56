import pytest
import torch
from conftest import make_checkpoint, tiny_text

from seq2seq_export.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from seq2seq_export.errors import CheckpointError


def test_round_trip_keeps_config_vocabularies_weights_and_training_state(tmp_path):
    path = make_checkpoint(tmp_path / "a.pt", num_layers=2)
    ckpt = load_checkpoint(path)
    training = {"epoch": 3, "rng": torch.get_rng_state(), "metrics": {"exact_match": 0.5}, "history": [1.0, 2.0]}
    save_checkpoint(tmp_path / "b.pt", Checkpoint(ckpt.config, ckpt.text, ckpt.state_dict, training))
    again = load_checkpoint(tmp_path / "b.pt")
    assert again.config == ckpt.config and again.config.num_layers == 2
    assert again.text == tiny_text()
    assert again.state_dict.keys() == ckpt.state_dict.keys()
    assert all(torch.equal(again.state_dict[k], v) for k, v in ckpt.state_dict.items())
    assert again.training["epoch"] == 3 and torch.equal(again.training["rng"], training["rng"])
    model = again.build_model()
    assert not model.training and model.config == ckpt.config
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt"]  # no temp files left behind


def _one_line_error(path):
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def test_unknown_format_version(tmp_path):
    path = make_checkpoint(tmp_path / "c.pt")
    raw = torch.load(path, weights_only=True)
    raw["format_version"] = 99
    torch.save(raw, path)
    assert "format version 99 is not supported" in _one_line_error(path)


def test_truncated_file(tmp_path):
    path = make_checkpoint(tmp_path / "c.pt")
    path.write_bytes(path.read_bytes()[:200])
    assert "not a readable checkpoint" in _one_line_error(path)


def test_foreign_files(tmp_path):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello\n")
    assert "not a readable checkpoint" in _one_line_error(text_file)
    plain = tmp_path / "weights.pt"
    torch.save({"encoder.embedding.weight": torch.zeros(2, 2)}, plain)
    assert "not a seq2seq-export checkpoint" in _one_line_error(plain)
    assert "no such checkpoint file" in _one_line_error(tmp_path / "missing.pt")


def test_mismatched_weights_and_vocabulary(tmp_path):
    path = make_checkpoint(tmp_path / "c.pt")
    raw = torch.load(path, weights_only=True)
    raw["model_config"]["src_vocab_size"] += 1
    torch.save(raw, path)
    assert "do not match the model config" in _one_line_error(path)
