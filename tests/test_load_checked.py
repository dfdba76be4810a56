"""Load what you checked: every backend parses the very bytes whose sha256 it checked, never the path
again, and an ONNX graph's external data is read only from files the manifest lists (and checks).

The impostor is a valid bundle of the same model config and vocabularies with other weights, so a
swapped file passes every check but the checksum, and would decode differently if it ever ran.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import onnx
import onnxruntime
import pytest
import torch
from bundle_edits import rehash
from click.testing import CliRunner
from conftest import lively_checkpoint

from seq2seq_export.bundle import export_bundle
from seq2seq_export.cli import translate_cmd
from seq2seq_export.constants import (
    DECODER_ONNX,
    DECODER_TS,
    ENCODER_ONNX,
    ENCODER_TS,
    MANIFEST_FILE,
    REFERENCE_CHECKPOINT,
)
from seq2seq_export.errors import BundleError
from seq2seq_export.manifest import file_entry, load_bundle
from seq2seq_export.runtime import Translator, open_backend

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WORDS = ["abc", "hello", "zzz", "quixotic", "it's", "x-ray", "abcdefghij", "mnop", "q", "lorem"]
FILES = {
    "onnx": (ENCODER_ONNX, DECODER_ONNX),
    "torchscript": (ENCODER_TS, DECODER_TS),
    "eager": (REFERENCE_CHECKPOINT,),
}


@pytest.fixture(scope="module")
def impostor(tmp_path_factory) -> Path:
    """lively_bundle's model config and vocabularies, other weights."""
    root = tmp_path_factory.mktemp("impostor")
    checkpoint = lively_checkpoint(root / "checkpoint.pt", seed=1, scale=3.0, eos_boost=2.0)
    return export_bundle(checkpoint, root / "bundle", exporter="legacy", max_len=20)


@pytest.fixture(scope="module")
def expected(lively_bundle) -> dict[str, list[str]]:
    return {b: Translator.from_bundle(lively_bundle, b).translate(WORDS) for b in FILES}


def test_the_impostor_would_decode_differently(lively_bundle, impostor, expected):
    """Else the tests below could pass with the swapped files running."""
    mine, other = load_bundle(lively_bundle), load_bundle(impostor)
    assert (mine.config, mine.text, mine.graphs) == (other.config, other.text, other.graphs)
    for backend in FILES:
        assert Translator.from_bundle(impostor, backend).translate(WORDS) != expected[backend], backend


@pytest.mark.parametrize("backend, name", [(b, n) for b, names in FILES.items() for n in names])
def test_a_file_swapped_after_load_bundle_is_refused(backend, name, lively_bundle, impostor, tmp_path):
    """Through the Python API a Bundle is checked at one time and opened later: the gap is closed."""
    root = shutil.copytree(lively_bundle, tmp_path / "b")
    bundle = load_bundle(root)
    shutil.copyfile(impostor / name, root / name)  # a valid file of the same model, but not the checked one
    with pytest.raises(BundleError, match=rf"{name}: checksum mismatch \(.*\): the file was changed"):
        open_backend(bundle, backend)


@pytest.mark.parametrize(
    "backend, module, attribute",
    [("onnx", onnxruntime, "InferenceSession"), ("torchscript", torch.jit, "load"), ("eager", torch, "load")],
)
def test_a_file_swapped_between_check_and_parse_never_runs(
    backend, module, attribute, lively_bundle, impostor, expected, tmp_path, monkeypatch
):
    """The race, forced: just before the parser is called, the file it is about to parse is replaced."""
    root = shutil.copytree(lively_bundle, tmp_path / "b")
    real, pending, swapped = getattr(module, attribute), list(FILES[backend]), []

    def swap_then_parse(*args, **kwargs):
        if pending:  # each call parses the next graph; swap that graph's file on disk first
            name = pending.pop(0)
            shutil.copyfile(impostor / name, root / name)
            swapped.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, attribute, swap_then_parse)
    got = Translator.from_bundle(root, backend).translate(WORDS)
    assert swapped == list(FILES[backend])
    assert all((root / n).read_bytes() == (impostor / n).read_bytes() for n in swapped)  # a path load would run these
    assert got == expected[backend]


# --- ONNX external data --------------------------------------------------------------------------------


def _externalize(root: Path, listed: bool, location: str = "encoder.weights") -> None:
    """Move every tensor of encoder.onnx (initializers and Constant attributes) into `location`;
    re-hash the graph, and list the external file in its FILE record when `listed`."""
    model = onnx.load(str(root / ENCODER_ONNX))
    onnx.save_model(
        model,
        str(root / ENCODER_ONNX),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=location,
        size_threshold=0,
        convert_attribute=True,
    )
    rehash(root)
    if listed:
        manifest = json.loads((root / MANIFEST_FILE).read_text())
        manifest["graphs"]["encoder"]["files"]["onnx"]["external_data"] = [file_entry(root, location)]
        (root / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_external_data_in_an_unlisted_file_is_refused(lively_bundle, tmp_path):
    root = shutil.copytree(lively_bundle, tmp_path / "b")
    _externalize(root, listed=False)
    assert (root / "encoder.weights").stat().st_size > 1000
    message = (
        f"{root / ENCODER_ONNX}: tensor '.*' keeps its data in 'encoder.weights', a file the manifest does not "
        r"list \(graphs.encoder.files.onnx.external_data\); refusing unchecked weights"
    )
    bundle = load_bundle(root)  # every listed file is fine; the graph itself says where its weights are
    with pytest.raises(BundleError, match=message):
        open_backend(bundle, "onnx")
    result = CliRunner().invoke(translate_cmd, ["--bundle", str(root), "abc"])
    assert result.exit_code == 2 and result.stdout == "" and result.stderr.count("\n") == 1, result.output
    assert "a file the manifest does not list" in result.stderr and "Traceback" not in result.output


def test_listed_external_data_is_checked_and_decodes_like_the_original(lively_bundle, expected, tmp_path, monkeypatch):
    root = shutil.copytree(lively_bundle, tmp_path / "b")
    _externalize(root, listed=True)
    initializers = onnx.load(str(root / ENCODER_ONNX), load_external_data=False).graph.initializer
    assert initializers and all(t.data_location == onnx.TensorProto.EXTERNAL for t in initializers)
    # onnxruntime resolves a model-from-bytes' external files against the current directory: make
    # a same-sized decoy there, which must never be read.
    decoy = tmp_path / "cwd"
    decoy.mkdir()
    (decoy / "encoder.weights").write_bytes(b"\0" * (root / "encoder.weights").stat().st_size)
    monkeypatch.chdir(decoy)
    assert Translator.from_bundle(root, "onnx").translate(WORDS) == expected["onnx"]
    from seq2seq_export.verify import verify

    assert verify(root, quick=True, backends=("onnx",)).passed  # the lint reads the same inlined bytes

    bundle = load_bundle(root)
    data = bytearray((root / "encoder.weights").read_bytes())
    data[-1] ^= 1
    (root / "encoder.weights").write_bytes(bytes(data))  # changed after the check
    with pytest.raises(
        BundleError, match=r"encoder.weights: checksum mismatch \(graphs.encoder.files.onnx.external_data.0\)"
    ):
        open_backend(bundle, "onnx")
    with pytest.raises(
        BundleError, match=r"encoder.weights: checksum mismatch \(graphs.encoder.files.onnx.external_data.0\)"
    ):
        load_bundle(root)


def test_listed_external_data_with_a_wrong_checksum_is_refused(lively_bundle, tmp_path):
    root = shutil.copytree(lively_bundle, tmp_path / "b")
    _externalize(root, listed=True)
    manifest = json.loads((root / MANIFEST_FILE).read_text())
    manifest["graphs"]["encoder"]["files"]["onnx"]["external_data"][0]["sha256"] = "0" * 64
    (root / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(
        BundleError, match=r"encoder.weights: checksum mismatch \(graphs.encoder.files.onnx.external_data.0\)"
    ):
        load_bundle(root)


def test_external_data_outside_its_file_is_refused(lively_bundle, tmp_path):
    root = shutil.copytree(lively_bundle, tmp_path / "b")
    _externalize(root, listed=True)
    size = (root / "encoder.weights").stat().st_size
    model = onnx.load(str(root / ENCODER_ONNX), load_external_data=False)
    entry = next(kv for kv in model.graph.initializer[0].external_data if kv.key == "offset")
    entry.value = str(size)  # the tensor's bytes would lie past the end of the file
    onnx.save_model(model, str(root / ENCODER_ONNX))
    rehash(root)
    manifest = json.loads((root / MANIFEST_FILE).read_text())
    manifest["graphs"]["encoder"]["files"]["onnx"]["external_data"] = [file_entry(root, "encoder.weights")]
    (root / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=rf"tensor '.*' reads bytes {size}\.\.\d+ of a {size}-byte external file"):
        open_backend(load_bundle(root), "onnx")


def test_read_checked_returns_the_checked_bytes(tiny_bundle, tmp_path):
    bundle = load_bundle(tiny_bundle)
    assert bundle.read_checked("encoder", "onnx") == (tiny_bundle / ENCODER_ONNX).read_bytes()
    assert bundle.read_checked("reference") == (tiny_bundle / REFERENCE_CHECKPOINT).read_bytes()
    root = shutil.copytree(tiny_bundle, tmp_path / "b")
    bundle = load_bundle(root)
    with open(root / ENCODER_TS, "ab") as f:
        f.write(b"\0")  # one byte more than recorded
    with pytest.raises(BundleError, match=rf"{ENCODER_TS}: checksum mismatch \(graphs.encoder.files.torchscript\)"):
        bundle.read_checked("encoder", "torchscript")


def test_a_fifo_in_place_of_a_graph_is_refused_without_blocking(tiny_bundle, tmp_path):
    root = shutil.copytree(tiny_bundle, tmp_path / "b")
    (root / DECODER_ONNX).unlink()
    os.mkfifo(root / DECODER_ONNX)  # opening it to read would wait for a writer forever
    with pytest.raises(BundleError, match=rf"{DECODER_ONNX}: not a regular file"):
        load_bundle(root)
