"""s2s-export and s2s-import through click: outputs, exit codes and one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from test_seed import SRC_TOKENS, TGT_TOKENS, write_seed_model

from seq2seq_export.cli import export_cmd, import_cmd, main
from seq2seq_export.manifest import load_bundle


def _invoke(cmd, args):
    return CliRunner().invoke(cmd, [str(a) for a in args])


def test_export_prints_what_it_wrote(tiny_checkpoint, tmp_path):
    out = tmp_path / "b"
    r = _invoke(export_cmd, ["--checkpoint", tiny_checkpoint, "--out", out, "--exporter", "legacy", "--max-len", 21])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == f"bundle: {out}"
    assert [line.split()[0] for line in lines[1:7]] == [
        "checkpoint.pt",
        "decoder_step.onnx",
        "decoder_step.pt",
        "encoder.onnx",
        "encoder.pt",
        "manifest.json",
    ]
    assert re.fullmatch(r"formats: onnx, torchscript; max_len 21; exported in \d+\.\d s", lines[7])
    assert lines[8] == f"digest: {load_bundle(out).digest}" and re.fullmatch(r"digest: sha256:[0-9a-f]{64}", lines[8])
    assert lines[9] == "verified: quick s2s-verify passed" and len(lines) == 10  # no exporter chatter
    assert load_bundle(out).manifest["producer"]["exporter"] == "legacy"


def test_export_refuses_existing_out_and_leaves_it(tiny_checkpoint, tmp_path):
    out = tmp_path / "b"
    assert (
        _invoke(export_cmd, ["--checkpoint", tiny_checkpoint, "--out", out, "--format", "torchscript"]).exit_code == 0
    )
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    r = _invoke(export_cmd, ["--checkpoint", tiny_checkpoint, "--out", out, "--format", "onnx", "--exporter", "legacy"])
    assert r.exit_code == 2 and r.output == f"Error: {out}: already exists; pass --force (force=True) to replace it\n"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    r = _invoke(
        export_cmd,
        [
            "--checkpoint",
            tiny_checkpoint,
            "--out",
            out,
            "--format",
            "onnx",
            "--exporter",
            "legacy",
            "--force",
            "--no-reference",
        ],
    )
    assert r.exit_code == 0 and load_bundle(out).formats == ("onnx",) and load_bundle(out).reference is None


@pytest.mark.parametrize(
    "args, message",
    [
        (["--opset", "16"], "Error: opset 16 is too old: recurrent graphs need opset >= 17"),
        (["--exporter", "magic"], "Error: Invalid value for '--exporter'"),
        (["--max-len", "0"], "Error: Invalid value for '--max-len'"),
    ],
)
def test_export_bad_options_exit_2(args, message, tiny_checkpoint, tmp_path):
    r = _invoke(export_cmd, ["--checkpoint", tiny_checkpoint, "--out", tmp_path / "b", *args])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "b").exists()


def test_export_bad_checkpoint_exit_2(tmp_path):
    (tmp_path / "ck.pt").write_text("nope")
    r = _invoke(export_cmd, ["--checkpoint", tmp_path / "ck.pt"])
    assert r.exit_code == 2 and r.output.startswith(f"Error: {tmp_path / 'ck.pt'}: not a readable checkpoint")
    assert len(r.output.splitlines()) == 1


def test_import_then_export_round_trip(tmp_path):
    seed_model, sd, src, tgt = write_seed_model(tmp_path / "seed", layers=1)
    ck = tmp_path / "ck.pt"
    r = _invoke(
        import_cmd, [sd, "--src-vocab", src, "--tgt-vocab", tgt, "--out", ck, "--src-eos", "--tgt-tokenizer", "space"]
    )
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[1] == "model: vocab 8 -> 6, emb 6, hidden 10, 1 layer(s)"
    r = _invoke(main, ["export", "--checkpoint", ck, "--format", "onnx", "--exporter", "legacy"])
    assert r.exit_code == 0, r.output
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.text.src_append_eos and bundle.text.tgt.tokenizer == "space"
    hidden = torch.randn(1, 2, 10)
    dec = ort.InferenceSession(str(bundle.graph_file("decoder_step", "onnx")), providers=["CPUExecutionProvider"])
    logits = dec.run(["logits"], {"prev_tokens": np.array([2, 3]), "hidden": hidden.numpy()})[0]
    with torch.no_grad():
        want = seed_model.decoder(torch.tensor([2, 3]), hidden)[0].numpy()
    np.testing.assert_allclose(logits, want, rtol=0, atol=1e-5)


def _drop_key(sd: Path) -> None:
    d = torch.load(sd)
    del d["decoder.fc_out.bias"]
    torch.save(d, sd)


def _add_key(sd: Path) -> None:
    d = torch.load(sd)
    d["decoder.attention.weight"] = torch.zeros(2, 2)
    torch.save(d, sd)


def _write(path: Path, tokens: list[str]) -> None:
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")


IMPORT_ERRORS = [
    (
        lambda sd, src, tgt: _write(src, SRC_TOKENS[:-1]),
        r"src.txt: 7 tokens but the source embedding has 8 rows; wrong vocabulary file\?",
    ),
    (lambda sd, src, tgt: _write(tgt, TGT_TOKENS + ["W"]), r"tgt.txt: 7 tokens but the target embedding has 6 rows"),
    (lambda sd, src, tgt: _drop_key(sd), r"seed.pt: missing key\(s\) decoder.fc_out.bias \(for 2 layer"),
    (lambda sd, src, tgt: _add_key(sd), r"seed.pt: unexpected key\(s\) decoder.attention.weight"),
    (
        lambda sd, src, tgt: _write(tgt, [t if t != "<sos>" else "<go>" for t in TGT_TOKENS]),
        r"tgt.txt: the target vocabulary has no sos token '<sos>', which it needs",
    ),
    (
        lambda sd, src, tgt: _write(src, [t if t != "<pad>" else "_" for t in SRC_TOKENS]),
        r"src.txt: the source vocabulary has no pad token '<pad>', which it needs",
    ),
    (lambda sd, src, tgt: src.write_text("a\n\nb\n"), r"src.txt: line 2 is empty"),
    (lambda sd, src, tgt: _write(src, ["a", "a"] + SRC_TOKENS[2:]), r"token 'a' appears twice in the vocabulary"),
    (lambda sd, src, tgt: sd.write_bytes(b"garbage"), r"seed.pt: not a readable torch state_dict"),
    (
        lambda sd, src, tgt: torch.save({"model": {"x": torch.zeros(1)}}, sd),
        r"seed.pt: expected torch.save\(model.state_dict\(\)\)",
    ),
]


@pytest.mark.parametrize("edit, message", IMPORT_ERRORS)
def test_import_errors_are_one_line_exit_2(edit, message, tmp_path):
    _, sd, src, tgt = write_seed_model(tmp_path, layers=2)
    edit(sd, src, tgt)
    r = _invoke(import_cmd, [sd, "--src-vocab", src, "--tgt-vocab", tgt, "--out", tmp_path / "ck.pt"])
    assert r.exit_code == 2, r.output
    assert len(r.output.splitlines()) == 1 and re.search(message, r.output), r.output
    assert not (tmp_path / "ck.pt").exists()


def test_import_typo_in_a_special_token_name(tmp_path):
    _, sd, src, tgt = write_seed_model(tmp_path)
    r = _invoke(import_cmd, [sd, "--src-vocab", src, "--tgt-vocab", tgt, "--out", tmp_path / "ck.pt", "--unk", "<UNK>"])
    assert r.exit_code == 2 and "unk token '<UNK>' is in neither" in r.output


def test_import_mismatched_decoder_dims(tmp_path):
    _, sd, src, tgt = write_seed_model(tmp_path, layers=1)
    d = torch.load(sd)
    d["decoder.embedding.weight"] = torch.zeros(len(TGT_TOKENS), 7)  # decoder emb 7, encoder emb 6
    torch.save(d, sd)
    r = _invoke(import_cmd, [sd, "--src-vocab", src, "--tgt-vocab", tgt, "--out", tmp_path / "ck.pt"])
    assert r.exit_code == 2 and "decoder.embedding.weight has shape (6, 7), expected (6, 6)" in r.output


@pytest.mark.parametrize("cmd", [export_cmd, import_cmd])
def test_every_option_has_help(cmd):
    for param in cmd.params:
        if param.param_type_name == "option":
            assert param.help, param.name
    assert cmd.help
