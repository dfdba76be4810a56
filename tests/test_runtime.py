"""The three backends under the one greedy loop: identical tokens, batch invariance, raw graph calls,
and the onnx path working where torch cannot be imported."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bundle_edits import copy_bundle, edit_onnx

from seq2seq_export.constants import MAX_SRC_TOKENS_CEILING, SPECIAL_TOKENS
from seq2seq_export.errors import BundleError, ConfigError
from seq2seq_export.manifest import MANIFEST_FILE, load_bundle
from seq2seq_export.runtime import BACKENDS, Translator, open_backend

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def mixed_words(bundle_dir: Path, n: int = 240, seed: int = 0) -> list[str]:
    """Empty, short, long (beyond any training length) words, some with symbols outside the vocabulary."""
    text = load_bundle(bundle_dir).text
    alphabet = [t for t in text.src.tokens if t not in SPECIAL_TOKENS] + ["?", "\u00e9"]  # the last two -> <unk>
    rng = random.Random(seed)
    sep = "" if text.src.tokenizer == "char" else " "
    return [sep.join(rng.choice(alphabet) for _ in range(rng.choice((0, 1, 2, 4, 7, 11, 40)))) for _ in range(n)]


def decode_all(bundle_dir: Path, backend: str, batch_size: int = 64) -> list[list[int]]:
    # Inputs longer than a trained bundle's recorded max_src_tokens are part of the point here.
    tr = Translator.from_bundle(bundle_dir, backend, batch_size=batch_size, max_src_tokens=MAX_SRC_TOKENS_CEILING)
    return tr.translate_ids([tr.text.encode_source(w) for w in mixed_words(bundle_dir)])


@pytest.fixture(scope="module")
def toy_bundle(toy_checkpoint, tmp_path_factory) -> Path:
    """The briefly trained toy model (space tokenizer on both sides, really stops at <eos>)."""
    from seq2seq_export.bundle import export_bundle

    return export_bundle(toy_checkpoint, tmp_path_factory.mktemp("toy_bundle") / "bundle", exporter="legacy")


@pytest.mark.parametrize("which", ["tiny_bundle", "lively_bundle", "toy_bundle", "attention_bundle"])
def test_backends_give_identical_tokens(which, request):
    bundle_dir = request.getfixturevalue(which)
    results = {name: decode_all(bundle_dir, name) for name in BACKENDS}
    assert len({tuple(o) for o in results["eager"]}) > 1  # decodes depend on the input: the equality is not vacuous
    assert results["onnx"] == results["eager"]
    assert results["torchscript"] == results["eager"]


@pytest.mark.parametrize("which", ["lively_bundle", "attention_bundle"])
def test_lively_bundles_exercise_the_loop(which, request):
    """Guard for the equality tests above: outputs differ by input and end at <eos> at mixed lengths
    (so rows leave their batch at many steps, and their state and memory rows are dropped)."""
    bundle_dir = request.getfixturevalue(which)
    out = decode_all(bundle_dir, "onnx")
    max_len = load_bundle(bundle_dir).max_len
    lengths = {len(o) for o in out}
    assert len({tuple(o) for o in out}) > 50
    assert max_len in lengths and len(lengths - {max_len}) > 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_size_never_changes_a_result(backend, lively_bundle):
    one = decode_all(lively_bundle, backend, batch_size=1)
    assert decode_all(lively_bundle, backend, batch_size=7) == one
    assert decode_all(lively_bundle, backend, batch_size=64) == one


@pytest.mark.parametrize("which", ["lively_bundle", "attention_bundle"])
def test_onnx_io_binding_path_gives_the_same_tokens(which, request):
    """The CUDA code path (state and memory kept in OrtValues, rows dropped through the host), run here on CPU."""
    bundle_dir = request.getfixturevalue(which)
    plain = Translator.from_bundle(bundle_dir, batch_size=7)
    bound = Translator.from_bundle(bundle_dir, batch_size=7, io_binding=True)
    assert bound.backend.io_binding and not plain.backend.io_binding
    seqs = [plain.text.encode_source(w) for w in mixed_words(bundle_dir)]
    assert bound.translate_ids(seqs) == plain.translate_ids(seqs)


@pytest.mark.parametrize("which", ["lively_bundle", "attention_bundle"])
def test_run_graph_agrees_across_backends(which, request):
    bundle = load_bundle(request.getfixturevalue(which))
    cfg = bundle.config
    rng = np.random.default_rng(0)
    lengths = np.array([6, 0, 2])
    enc_feeds = {"src_tokens": rng.integers(0, cfg.src_vocab_size, (3, 6)), "src_lengths": lengths}
    outs = {name: open_backend(bundle, name) for name in BACKENDS}
    encoded = outs["eager"].run_graph("encoder", enc_feeds)
    step_feeds = {"prev_tokens": rng.integers(0, cfg.tgt_vocab_size, (3,))}
    for entry in bundle.state:  # random states, and the memory as the encoder made it
        step_feeds[entry["decoder_input"]] = rng.standard_normal((cfg.num_layers, 3, cfg.hidden_dim)).astype(np.float32)
    step_feeds.update({m["decoder_input"]: encoded[m["encoder_output"]] for m in bundle.memory})
    for graph, feeds in (("encoder", enc_feeds), ("decoder_step", step_feeds)):
        ref = outs["eager"].run_graph(graph, feeds)
        assert list(ref) == bundle.graphs[graph].output_names
        for name in ("onnx", "torchscript"):
            got = outs[name].run_graph(graph, feeds)
            assert list(got) == list(ref)
            for key in ref:
                assert got[key].dtype == ref[key].dtype and got[key].shape == ref[key].shape
                np.testing.assert_allclose(got[key], ref[key], atol=1e-5, err_msg=f"{name} {graph} {key}")
    assert ref["hidden_out"].shape == (cfg.num_layers, 3, cfg.hidden_dim)
    if bundle.memory:  # attention weights: exactly 0 at padding, summing to 1 (0 for the empty row)
        assert ref["attention"].shape == (3, 6) and not (ref["attention"] * (1 - encoded["src_mask"])).any()
        np.testing.assert_allclose(ref["attention"].sum(1), [1.0, 0.0, 1.0], atol=1e-6)
    np.testing.assert_array_equal(ref["next_tokens"], ref["logits"].argmax(-1))


def test_open_backend_rejects_bad_names_and_options(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    with pytest.raises(ConfigError, match="unknown backend 'tflite'"):
        open_backend(bundle, "tflite")
    with pytest.raises(ConfigError, match="backend onnx takes no option.* device"):
        open_backend(bundle, "onnx", device="cpu")
    with pytest.raises(ConfigError, match="threads must be a positive integer"):
        open_backend(bundle, "onnx", threads=0)
    with pytest.raises(ConfigError, match="intra_op_num_threads must be a positive integer"):
        open_backend(bundle, "onnx", intra_op_threads=-1)


def edit_manifest(bundle_dir: Path, tmp_path: Path, edit) -> Path:
    """A copy of the bundle whose manifest.json went through `edit(manifest)`."""
    import shutil

    out = tmp_path / "edited"
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(bundle_dir, out)
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    edit(manifest)
    (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    return out


def test_backend_needs_its_files(tiny_bundle, tmp_path):
    def strip(m):
        for g in m["graphs"].values():
            del g["files"]["torchscript"]
        m["reference"] = None

    bundle = load_bundle(edit_manifest(tiny_bundle, tmp_path, strip))
    with pytest.raises(BundleError, match="no torchscript file for the encoder graph"):
        open_backend(bundle, "torchscript")
    with pytest.raises(BundleError, match="no reference checkpoint"):
        open_backend(bundle, "eager")
    out = open_backend(bundle, "onnx").run_graph(
        "encoder", {"src_tokens": np.ones((1, 2), np.int64), "src_lengths": np.array([2])}
    )
    assert list(out) == bundle.graphs["encoder"].output_names
    assert out[bundle.state[0]["encoder_output"]].shape == (bundle.config.num_layers, 1, bundle.config.hidden_dim)


def test_onnx_backend_checks_graph_against_manifest(tiny_bundle, tmp_path):
    def rename(m):
        m["graphs"]["decoder_step"]["outputs"][1]["name"] = "argmax"

    with pytest.raises(BundleError, match=r"graphs.decoder_step.outputs \(.*'argmax'.*\) differ from the ones"):
        load_bundle(edit_manifest(tiny_bundle, tmp_path / "renamed", rename))  # no longer what its config exports

    def rename_in_graph(model):  # the manifest stays right, so only the graph itself can tell
        for node in model.graph.node:
            outputs = ["argmax" if o == "next_tokens" else o for o in node.output]
            del node.output[:]
            node.output.extend(outputs)
        model.graph.output[1].name = "argmax"

    renamed = copy_bundle(tiny_bundle, tmp_path / "renamed_graph")
    edit_onnx(renamed, rename_in_graph)
    with pytest.raises(BundleError, match="graph outputs .* differ from the manifest's"):
        open_backend(load_bundle(renamed), "onnx")

    def grow_vocabulary(m):  # consistent with model_config and the IO, so only the graph itself can tell
        m["text"]["target"]["tokens"].append("EXTRA")
        m["model_config"]["tgt_vocab_size"] += 1
        m["graphs"]["decoder_step"]["outputs"][0]["shape"][1] += 1

    bundle = load_bundle(edit_manifest(tiny_bundle, tmp_path / "grown", grow_vocabulary))
    with pytest.raises(BundleError, match="logits has shape .* but the manifest says .*wrong vocabulary"):
        open_backend(bundle, "onnx")
    with pytest.raises(BundleError, match="model config or vocabularies differ from the manifest"):
        open_backend(bundle, "eager")


# Makes `import torch` (and any torch.* submodule) fail in every interpreter that starts with this dir on PYTHONPATH.
NO_TORCH = """
import importlib.abc, sys
class _NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked for this test")
sys.meta_path.insert(0, _NoTorch())
"""


@pytest.mark.parametrize("which", ["lively_bundle", "attention_bundle"])
def test_onnx_path_works_without_torch(which, request, tmp_path):
    lively_bundle = request.getfixturevalue(which)
    (tmp_path / "sitecustomize.py").write_text(NO_TORCH)
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    blocked = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert blocked.returncode != 0 and "torch is blocked" in blocked.stderr
    words = mixed_words(lively_bundle, n=40)
    expected = Translator.from_bundle(lively_bundle).translate(words)
    script = (
        "import json, sys; from seq2seq_export.runtime import Translator; "
        "print(json.dumps(Translator.from_bundle(sys.argv[1]).translate(json.loads(sys.argv[2]))))"
    )
    lib = subprocess.run(
        [sys.executable, "-c", script, str(lively_bundle), json.dumps(words)], env=env, capture_output=True, text=True
    )
    assert lib.returncode == 0, lib.stderr
    assert json.loads(lib.stdout) == expected
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "s2s-translate"), "--bundle", str(lively_bundle), "--backend", "onnx"],
        input="\n".join(words) + "\n",
        env=env,
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.split("\n")[:-1] == expected
