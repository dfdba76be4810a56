"""Malformed and hostile checkpoints and seed state dicts: each is one line naming the file (exit 2 from the
CLI, no traceback, nothing written), refused before any tensor is used or any model is allocated."""
from __future__ import annotations

import pickle
import resource
import time
import zipfile
from fractions import Fraction

import pytest
import torch
from click.testing import CliRunner
from conftest import VARIANTS, make_checkpoint
from test_seed import write_seed_model

from seq2seq_export.checkpoint import load_checkpoint
from seq2seq_export.cli import export_cmd, import_cmd
from seq2seq_export.config import ModelConfig
from seq2seq_export.errors import CheckpointError, SeedImportError
from seq2seq_export.model import Seq2Seq
from seq2seq_export.seed import import_seed
from seq2seq_export.weights import expected_shapes


def _edit(path, change):
    raw = torch.load(path, weights_only=True)
    change(raw)
    torch.save(raw, path)
    return path


def _set(section, key, value):
    return lambda raw: raw[section].__setitem__(key, value)


def _replace(key, value):
    return lambda raw: raw.__setitem__(key, value)


ENC_W = "encoder.embedding.weight"
# (edit of the raw checkpoint dict, words the one-line error must hold)
CHECKPOINT_CASES = {
    "config hidden 16, weights 32": (_set("model_config", "hidden_dim", 16),
                                     "state_dict['encoder.rnn.weight_ih_l0'] has shape (96, 8), expected (48, 8) for the model config"),
    "int state_dict": (_replace("state_dict", 7), "state_dict is a int, expected a mapping"),
    "list state_dict": (_replace("state_dict", [torch.zeros(2)]), "state_dict is a list, expected a mapping"),
    "string hidden_dim": (_set("model_config", "hidden_dim", "16"), "hidden_dim must be a positive integer, got '16'"),
    "string dropout": (_set("model_config", "dropout", "0.1"), "dropout must be a number in [0, 1), got '0.1'"),
    "hidden 200000": (_set("model_config", "hidden_dim", 200_000),
                      "hidden_dim 200000 is over the ceiling 16384 (needs 960 GB of weights); refusing"),
    "too many parameters": (lambda raw: raw["model_config"].update(emb_dim=16384, hidden_dim=16384, num_layers=8),
                            "has 25771966476 parameters (needs 103 GB of weights), over the ceiling 2000000000; refusing"),
    "num_layers 10**6": (_set("model_config", "num_layers", 10**6), "num_layers 1000000 is over the ceiling 64"),
    "1-D weight": (_set("state_dict", ENC_W, torch.zeros(5)), f"state_dict['{ENC_W}'] has shape (5,)"),
    "0-D weight": (_set("state_dict", ENC_W, torch.tensor(1.0)), f"state_dict['{ENC_W}'] has shape ()"),
    "int key": (_set("state_dict", 3, torch.zeros(2)), "state_dict key 3 is a int, expected a parameter name"),
    "string value": (_set("state_dict", ENC_W, "weights"), f"state_dict['{ENC_W}'] is a str, expected a dense tensor"),
    "missing key": (lambda raw: raw["state_dict"].pop("decoder.fc_out.bias"),
                    "state_dict: missing key(s) decoder.fc_out.bias for the model config"),
    "unexpected key": (_set("state_dict", "decoder.extra", torch.zeros(1)), "unexpected key(s) decoder.extra"),
    "int64 weights": (lambda raw: raw["state_dict"].__setitem__(ENC_W, raw["state_dict"][ENC_W].long()),
                      "has dtype int64; accepted: float32"),
    "NaN weight": (lambda raw: raw["state_dict"]["decoder.fc_out.bias"].__setitem__(0, float("nan")),
                   "state_dict['decoder.fc_out.bias'] holds NaN or infinite values"),
    "vocabulary token not a string": (lambda raw: raw["vocabularies"]["src"]["tokens"].__setitem__(4, 4),
                                      "vocabularies.src['tokens'][4]: 4 is not of type 'string'"),
    "vocabulary token with a newline": (lambda raw: raw["vocabularies"]["tgt"]["tokens"].__setitem__(5, "a\nb"),
                                        "vocabularies.tgt['tokens'][5]: 'a\\nb' does not match"),
    "special id a string": (lambda raw: raw["vocabularies"]["src"]["specials"].__setitem__("pad", "0"),
                            "vocabularies.src['specials']['pad']: '0' is not valid"),
    "src_append_eos a string": (_set("vocabularies", "src_append_eos", "false"),
                                "vocabularies.src_append_eos must be true or false, got 'false'"),
    "normalize not a list": (_set("vocabularies", "normalize", "lower"), "vocabularies.normalize: 'lower' is not of type 'array'"),
    "normalize unknown step": (_set("vocabularies", "normalize", ["upper"]), "vocabularies.normalize[0]: 'upper' is not one of"),
    "normalize step twice": (_set("vocabularies", "normalize", ["lower", "lower"]), "vocabularies.normalize: ['lower', 'lower'] has non-unique"),
    "unknown vocabularies field": (_set("vocabularies", "casing", "lower"), "vocabularies must be a mapping of src, tgt, src_append_eos"),
    "training a list": (_replace("training", [1, 2]), "training is a list, expected a mapping"),
    "string max_len": (_replace("training", {"max_len": "50"}), "training['max_len'] must be a positive integer"),
}


@pytest.fixture
def checkpoint(tmp_path):
    return make_checkpoint(tmp_path / "c.pt", hidden_dim=32)


def _one_line(error_type, fn, path):
    with pytest.raises(error_type) as err:
        fn()
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)), message
    return message


@pytest.mark.parametrize("case", list(CHECKPOINT_CASES))
def test_malformed_checkpoint_is_one_line_in_the_library(checkpoint, case):
    change, words = CHECKPOINT_CASES[case]
    _edit(checkpoint, change)
    assert words in _one_line(CheckpointError, lambda: load_checkpoint(checkpoint), checkpoint)


def _export_refuses(path, tmp_path):
    out = tmp_path / "bundle"
    result = CliRunner().invoke(export_cmd, ["--checkpoint", str(path), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}"), result.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    return lines[0]


@pytest.mark.parametrize("case", ["config hidden 16, weights 32", "int state_dict", "list state_dict",
                                  "string hidden_dim", "hidden 200000", "1-D weight", "0-D weight", "int key"])
def test_malformed_checkpoint_is_exit_2_from_s2s_export(checkpoint, tmp_path, case):
    change, words = CHECKPOINT_CASES[case]
    _edit(checkpoint, change)
    assert words in _export_refuses(checkpoint, tmp_path)


def test_absurd_size_is_refused_fast_without_allocating(checkpoint):
    _edit(checkpoint, lambda raw: raw["model_config"].update(hidden_dim=200_000, emb_dim=200_000))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="over the ceiling"):
        load_checkpoint(checkpoint)
    assert time.perf_counter() - start < 0.5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 50_000  # under 50 MB more at peak


def test_checkpoint_from_checked_bytes_names_the_path(checkpoint, tmp_path):
    data = checkpoint.read_bytes()
    elsewhere = tmp_path / "never-written.pt"
    assert load_checkpoint(elsewhere, data=data).config.hidden_dim == 32
    _edit(checkpoint, CHECKPOINT_CASES["int key"][0])
    assert "state_dict key 3" in _one_line(CheckpointError, lambda: load_checkpoint(elsewhere, checkpoint.read_bytes()),
                                           elsewhere)


def _foreign_files(tmp_path):
    """A text file, a pickle of a foreign class, a zip that is not a torch file, a plain pickle."""
    text = tmp_path / "README.md"
    text.write_text("# seq2seq-export\n\nNot a checkpoint.\n")
    foreign = tmp_path / "fraction.pt"
    torch.save({"format_version": 1, "x": Fraction(1, 3)}, foreign)
    archive = tmp_path / "notes.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("notes.txt", "hello")
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(Fraction(2, 3)))
    return [text, foreign, archive, plain]


def test_foreign_files_never_advise_weights_only_false(tmp_path):
    for path in _foreign_files(tmp_path):
        message = _one_line(CheckpointError, lambda path=path: load_checkpoint(path), path)
        assert "not a readable checkpoint" in message and "weights_only" not in message, message
        assert "pass a file written by s2s-train" in message
    fraction = _one_line(CheckpointError, lambda: load_checkpoint(tmp_path / "fraction.pt"), tmp_path / "fraction.pt")
    assert "Python objects (fractions.Fraction) other than tensors" in fraction
    assert "truncated or not a torch file" in _one_line(CheckpointError, lambda: load_checkpoint(tmp_path / "README.md"),
                                                         tmp_path / "README.md")


def test_foreign_files_from_s2s_export_and_s2s_import(tmp_path):
    for path in _foreign_files(tmp_path):
        folder = tmp_path / path.stem
        folder.mkdir()
        moved = path.rename(folder / path.name)
        line = _export_refuses(moved, folder)
        assert "not a readable checkpoint" in line and "weights_only" not in line
        _, _, src, tgt = write_seed_model(tmp_path / "seed")
        line = _import_refuses(moved, src, tgt, tmp_path / "out.pt")
        assert "not a readable torch state_dict" in line and "weights_only" not in line


# --- s2s-import: the seed layout's state dict --------------------------------------------------------

SEED_CASES = {
    "1-D embedding": (lambda sd: sd.__setitem__(ENC_W, torch.zeros(5)),
                      f"{ENC_W} has shape (5,), expected a matrix (2-D)"),
    "0-D hidden weight": (lambda sd: sd.__setitem__("encoder.rnn.weight_hh_l0", torch.tensor(0.5)),
                          "encoder.rnn.weight_hh_l0 has shape (), expected a matrix"),
    "1-D decoder weight": (lambda sd: sd.__setitem__("decoder.fc_out.weight", torch.zeros(60)),
                           "decoder.fc_out.weight has shape (60,), expected (6, 10) (for 2 layer(s) read from the encoder)"),
    "int key": (lambda sd: sd.__setitem__(7, torch.zeros(1)), "state_dict key 7 is a int"),
    "list value": (lambda sd: sd.__setitem__("decoder.fc_out.bias", [0.0] * 6), "expected torch.save(model.state_dict()), a mapping of names to tensors, found 'decoder.fc_out.bias' holding a list"),
    "layer 1 of another size": (lambda sd: sd.__setitem__("encoder.rnn.weight_hh_l1", torch.zeros(33, 11)),
                                "encoder.rnn.weight_hh_l1 has shape (33, 11), expected (30, 10)"),
    "float64": (lambda sd: sd.__setitem__("decoder.fc_out.bias", sd["decoder.fc_out.bias"].double()),
                "has dtype float64; accepted: float32"),
    "100 layers": (lambda sd: sd.update({f"encoder.rnn.weight_ih_l{i}": torch.zeros(1) for i in range(100)}),
                   "num_layers 100 is over the ceiling 64"),
    "huge hidden": (lambda sd: sd.__setitem__("encoder.rnn.weight_hh_l0", torch.zeros(1, 20_000)),
                    "hidden_dim 20000 is over the ceiling 16384"),
}


def _seed_with(tmp_path, change):
    _, sd_path, src, tgt = write_seed_model(tmp_path, layers=2)
    raw = torch.load(sd_path, weights_only=True)
    change(raw)
    torch.save(raw, sd_path)
    return sd_path, src, tgt


def _import_refuses(sd_path, src, tgt, out):
    result = CliRunner().invoke(import_cmd, [str(sd_path), "--src-vocab", str(src), "--tgt-vocab", str(tgt),
                                             "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {sd_path}"), result.stderr
    assert not out.exists()
    return lines[0]


@pytest.mark.parametrize("case", list(SEED_CASES))
def test_malformed_seed_state_dict_is_one_line(tmp_path, case):
    change, words = SEED_CASES[case]
    sd_path, src, tgt = _seed_with(tmp_path, change)
    assert words in _one_line(SeedImportError, lambda: import_seed(sd_path, src, tgt), sd_path)
    assert words in _import_refuses(sd_path, src, tgt, tmp_path / "out.pt")


@pytest.mark.parametrize("value, words", [(3, "mapping of names to tensors, found a int"), ([torch.zeros(2)], "found a list")])
def test_seed_file_that_is_not_a_mapping(tmp_path, value, words):
    _, sd_path, src, tgt = write_seed_model(tmp_path)
    torch.save(value, sd_path)
    assert words in _import_refuses(sd_path, src, tgt, tmp_path / "out.pt")


@pytest.mark.parametrize("variant", VARIANTS + (dict(bidirectional_encoder=True, encoder_hidden_dim=12),
                                                dict(attention="luong", attention_score="dot")))
def test_expected_shapes_are_those_of_the_real_model(variant):
    cfg = ModelConfig(11, 13, emb_dim=8, hidden_dim=16, **variant)
    real = {name: tuple(t.shape) for name, t in Seq2Seq(cfg).state_dict().items()}
    assert expected_shapes(cfg) == real
    assert torch.nn.Linear(2, 2).weight.device.type == "cpu"  # the meta device and skipped init stay inside


def test_seed_vocabulary_token_a_bundle_could_not_hold(tmp_path):
    _, sd_path, src, tgt = write_seed_model(tmp_path)
    tgt.write_text("<pad>\nX\n<sos>\nY\x1b[31m\n<eos>\nZ\n", encoding="utf-8")  # a terminal escape in a token
    with pytest.raises(SeedImportError) as err:
        import_seed(sd_path, src, tgt)
    assert str(err.value).startswith(f"{src}, {tgt}: vocabularies.tgt['tokens'][3]: 'Y\\x1b[31m' does not match")
