"""export_bundle: layout, manifest contents, max_len precedence, and atomic, refuse-to-clobber writes."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import onnx
import pytest
import torch
from bundle_edits import as_format_1
from conftest import make_checkpoint

import seq2seq_export
from seq2seq_export.bundle import export_bundle
from seq2seq_export.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from seq2seq_export.constants import DEFAULT_MAX_LEN, DEFAULT_MAX_SRC_TOKENS, DEFAULT_OPSET, MAX_SRC_TOKENS_CEILING
from seq2seq_export.errors import BundleError, CheckpointError, ExportError
from seq2seq_export.iospec import graph_specs
from seq2seq_export.manifest import load_bundle


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def test_tiny_bundle_is_complete_and_self_describing(tiny_bundle, tiny_checkpoint):
    assert sorted(p.name for p in tiny_bundle.iterdir()) == [
        "checkpoint.pt",
        "decoder_step.onnx",
        "decoder_step.pt",
        "encoder.onnx",
        "encoder.pt",
        "manifest.json",
    ]
    bundle = load_bundle(tiny_bundle)  # checks every sha256 and size
    ckpt = load_checkpoint(tiny_checkpoint)
    m = bundle.manifest
    assert m["producer"] == {
        "package": "seq2seq-export",
        "version": seq2seq_export.__version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "opset": DEFAULT_OPSET,
        "exporter": "legacy",
    }
    assert bundle.formats == ("onnx", "torchscript") and bundle.max_len == DEFAULT_MAX_LEN
    assert m["format_version"] == 2 and m["memory"] == []
    assert (
        m["decoding"]["max_src_tokens"] == bundle.max_src_tokens == DEFAULT_MAX_SRC_TOKENS
    )  # not recorded in training
    assert m["roles"] == {
        "src_tokens": "src_tokens",
        "src_lengths": "src_lengths",
        "prev_tokens": "prev_tokens",
        "logits": "logits",
        "next_tokens": "next_tokens",
        "attention": None,
    }
    assert bundle.digest == "sha256:" + _sha(tiny_bundle / "manifest.json")
    assert bundle.config == ckpt.config and bundle.text == ckpt.text
    assert m["reference"]["sha256"] == _sha(tiny_checkpoint)
    assert bundle.graphs == graph_specs(ckpt.config)
    for graph in ("encoder", "decoder_step"):
        model = onnx.load(str(bundle.graph_file(graph, "onnx")))
        assert [v.name for v in model.graph.input] == bundle.graphs[graph].input_names
        assert model.opset_import[0].version == DEFAULT_OPSET


def test_max_len_precedence(tmp_path):
    ckpt_path = make_checkpoint(tmp_path / "ck.pt")
    ckpt = load_checkpoint(ckpt_path)
    save_checkpoint(ckpt_path, Checkpoint(ckpt.config, ckpt.text, ckpt.state_dict, training={"max_len": 33}))
    opts = dict(formats=("torchscript",), reference=False)
    assert load_bundle(export_bundle(ckpt_path, tmp_path / "a", **opts)).max_len == 33
    assert load_bundle(export_bundle(ckpt_path, tmp_path / "b", max_len=7, **opts)).max_len == 7
    with pytest.raises(ExportError, match="max_len must be a positive integer, got 0"):
        export_bundle(ckpt_path, tmp_path / "c", max_len=0, **opts)
    with pytest.raises(ExportError, match="max_len 4097 is above the ceiling of 4096"):
        export_bundle(ckpt_path, tmp_path / "c", max_len=4097, **opts)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    "recorded, written", [(12, 12), (10**6, MAX_SRC_TOKENS_CEILING), (None, DEFAULT_MAX_SRC_TOKENS)]
)
def test_max_src_tokens_comes_from_training_under_the_ceiling(tmp_path, recorded, written):
    ckpt_path = make_checkpoint(tmp_path / "ck.pt")
    ckpt = load_checkpoint(ckpt_path)
    training = None if recorded is None else {"max_src_tokens": recorded}
    save_checkpoint(ckpt_path, Checkpoint(ckpt.config, ckpt.text, ckpt.state_dict, training=training))
    bundle = load_bundle(export_bundle(ckpt_path, tmp_path / "b", formats=("torchscript",), reference=False))
    assert bundle.manifest["decoding"]["max_src_tokens"] == bundle.max_src_tokens == written


def test_bad_recorded_max_src_tokens_is_a_checkpoint_error(tmp_path):
    ckpt_path = make_checkpoint(tmp_path / "ck.pt")
    ckpt = load_checkpoint(ckpt_path)
    save_checkpoint(ckpt_path, Checkpoint(ckpt.config, ckpt.text, ckpt.state_dict, training={"max_src_tokens": "9"}))
    with pytest.raises(CheckpointError, match="max_src_tokens'\\] must be a positive integer, got '9'"):
        export_bundle(ckpt_path, tmp_path / "b", formats=("torchscript",))
    assert not (tmp_path / "b").exists()


def test_default_out_dir_is_beside_the_checkpoint_and_reference_is_optional(tmp_path):
    ckpt_path = make_checkpoint(tmp_path / "run" / "ck.pt")
    out = export_bundle(ckpt_path, formats=("torchscript",), reference=False)
    assert out == tmp_path / "run" / "bundle"
    bundle = load_bundle(out)
    assert bundle.manifest["reference"] is None and bundle.reference is None
    assert bundle.formats == ("torchscript",)
    assert bundle.manifest["producer"]["opset"] is None and not (out / "checkpoint.pt").exists()


def test_existing_out_without_force_is_refused_and_untouched(tiny_checkpoint, tmp_path):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    before = _snapshot(out)
    with pytest.raises(ExportError, match="already exists; pass --force"):
        export_bundle(tiny_checkpoint, out, exporter="legacy")
    assert _snapshot(out) == before
    with pytest.raises(ExportError, match="is not a bundle directory; refusing to replace it"):
        export_bundle(tiny_checkpoint, out, exporter="legacy", force=True)
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no temp dirs left


def test_force_replaces_a_bundle_whole(tiny_checkpoint, tmp_path):
    out = export_bundle(tiny_checkpoint, tmp_path / "bundle", formats=("torchscript",), max_len=5)
    export_bundle(tiny_checkpoint, out, formats=("onnx",), exporter="legacy", max_len=9, force=True)
    bundle = load_bundle(out)
    assert bundle.formats == ("onnx",) and bundle.max_len == 9
    assert not (out / "encoder.pt").exists()  # nothing of the old bundle survives
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_failure_before_the_rename_leaves_no_bundle_and_keeps_the_old_one(tiny_checkpoint, tmp_path):
    seen = []

    def failing_verify(tmp: Path) -> None:
        seen.append(sorted(p.name for p in tmp.iterdir()))  # complete, but not yet in place
        raise ExportError("verification failed (test)")

    with pytest.raises(ExportError, match="verification failed"):
        export_bundle(tiny_checkpoint, tmp_path / "new", exporter="legacy", verify=failing_verify)
    assert "manifest.json" in seen[0] and "encoder.onnx" in seen[0]
    assert list(tmp_path.iterdir()) == []
    old = export_bundle(tiny_checkpoint, tmp_path / "old", formats=("torchscript",))
    before = _snapshot(old)
    with pytest.raises(ExportError):
        export_bundle(tiny_checkpoint, old, exporter="legacy", force=True, verify=failing_verify)
    assert _snapshot(old) == before and sorted(p.name for p in tmp_path.iterdir()) == ["old"]


def test_verify_hook_sees_a_loadable_bundle(tiny_checkpoint, tmp_path):
    loaded = []
    export_bundle(
        tiny_checkpoint, tmp_path / "b", formats=("torchscript",), verify=lambda d: loaded.append(load_bundle(d))
    )
    assert loaded[0].formats == ("torchscript",)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"formats": ("onnx", "tflite")}, ExportError, r"unknown or no format\(s\) \['tflite'\]"),
        ({"formats": ()}, ExportError, "unknown or no format"),
        ({"exporter": "script"}, ExportError, "unknown ONNX exporter 'script'"),
        ({"opset": 13}, ExportError, "opset 13 is too old"),
    ],
)
def test_bad_options_leave_nothing(kwargs, error, match, tiny_checkpoint, tmp_path):
    with pytest.raises(error, match=match):
        export_bundle(tiny_checkpoint, tmp_path / "b", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_bad_checkpoint_is_a_checkpoint_error(tmp_path):
    (tmp_path / "ck.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        export_bundle(tmp_path / "ck.pt", tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


def test_manifest_is_plain_json_with_relative_paths(tiny_bundle):
    m = json.loads((tiny_bundle / "manifest.json").read_text())
    paths = [f["path"] for g in m["graphs"].values() for f in g["files"].values()] + [m["reference"]["path"]]
    assert all(not Path(p).is_absolute() and "/" not in p for p in paths)


def test_attention_bundle_manifest_describes_state_and_memory(attention_bundle):
    bundle = load_bundle(attention_bundle)
    assert bundle.manifest["state"] == [
        {"encoder_output": "hidden", "decoder_input": "hidden", "decoder_output": "hidden_out"},
        {"encoder_output": "cell", "decoder_input": "cell", "decoder_output": "cell_out"},
    ]
    assert (
        bundle.memory
        == bundle.manifest["memory"]
        == [
            {"encoder_output": "encoder_outputs", "decoder_input": "encoder_outputs"},
            {"encoder_output": "src_mask", "decoder_input": "src_mask"},
            {"encoder_output": "attention_keys", "decoder_input": "attention_keys"},
        ]
    )
    assert bundle.graphs == graph_specs(bundle.config)
    assert bundle.graphs["decoder_step"].output_names[-1] == "attention"


@pytest.mark.parametrize("backend", ["onnx", "torchscript", "eager"])
def test_format_1_bundles_load_and_decode_as_before(attention_bundle, tmp_path, backend):
    """Format 1 (no roles, no decoding.max_src_tokens) loads, with the default input cap, and decodes alike."""
    from seq2seq_export.runtime import Translator

    old = tmp_path / "old"
    shutil.copytree(attention_bundle, old)
    as_format_1(old)
    bundle = load_bundle(old)
    assert bundle.manifest["format_version"] == 1 and "roles" not in bundle.manifest
    assert bundle.max_src_tokens == DEFAULT_MAX_SRC_TOKENS and bundle.memory == load_bundle(attention_bundle).memory
    words = ["abc", "hgfedcba", "", "aaaa", "bad"]
    new = Translator.from_bundle(attention_bundle, backend).translations(words)
    assert Translator.from_bundle(bundle, backend).translations(words) == new


def test_format_1_bundles_without_memory_key_still_load(tiny_bundle, tmp_path):
    """Format-1 bundles written before attention existed have no "memory" key: they load and have none;
    format 2 requires it, and a memory that is not a list is refused."""
    from seq2seq_export.runtime import Translator

    old = tmp_path / "old"
    shutil.copytree(tiny_bundle, old)
    as_format_1(old, drop_memory=True)
    assert load_bundle(old).memory == []
    assert Translator.from_bundle(old).translate(["abc"]) == Translator.from_bundle(tiny_bundle).translate(["abc"])
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["memory"] = {"encoder_output": "encoder_outputs"}
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"manifest.json: memory: \{.*\} is not of type 'array'"):
        load_bundle(old)
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    del manifest["memory"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="manifest.json: top level: 'memory' is a required property"):
        load_bundle(old)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m["memory"].pop(), "decoder_step input 'attention_keys' is fed by no state or memory entry"),
        (lambda m: m["state"].pop(), "decoder_step input 'cell' is fed by no state or memory entry"),
        (lambda m: m["memory"][0].update(encoder_output="keys"), "names no output of the encoder graph"),
    ],
)
def test_state_and_memory_entries_must_connect_the_graphs(attention_bundle, tmp_path, edit, match):
    """Checked at load, so no backend can fail half-way through a decode (or with a traceback)."""
    broken = tmp_path / "b"
    shutil.copytree(attention_bundle, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    edit(manifest)
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=match):
        load_bundle(broken)


def test_a_bundle_whose_io_this_version_does_not_export_is_refused(attention_bundle, tmp_path):
    """A Bahdanau bundle from before attention_keys (memory: encoder_outputs, src_mask only): no
    backend could run it, so load_bundle refuses it and names what to do."""
    from seq2seq_export.runtime.eager import EagerBackend

    old = tmp_path / "old"
    shutil.copytree(attention_bundle, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["memory"] = [m for m in manifest["memory"] if m["encoder_output"] != "attention_keys"]
    for graph, side in (("encoder", "outputs"), ("decoder_step", "inputs")):
        spec = manifest["graphs"][graph]
        spec[side] = [t for t in spec[side] if t["name"] != "attention_keys"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        BundleError,
        match=r"graphs.encoder.outputs .* differ from the ones this version of "
        r"seq2seq-export exports .* re-export it",
    ):
        load_bundle(old)
    EagerBackend.from_bundle(load_bundle(attention_bundle))  # the untouched bundle is fine
