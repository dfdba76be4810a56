"""ONNX (both exporters) and TorchScript graphs against the eager model, and the ONNX lint.

Exported once per module at batch 2 / source length 5 (graphs.EXPORT_*), then run in real
onnxruntime sessions and torch.jit.load-ed modules at batches and lengths never seen at export.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn

from seq2seq_export.config import ModelConfig
from seq2seq_export.constants import DEFAULT_ATOL, DEFAULT_OPSET
from seq2seq_export.errors import ExportError
from seq2seq_export.export.graphs import (
    EXPORT_BATCH,
    EXPORT_SRC_LEN,
    example_inputs,
    forward_inputs,
    forward_outputs,
    graph_modules,
    wrapper_class,
)
from seq2seq_export.export.onnx import (
    check_onnx_file,
    constant_batch_problems,
    dynamic_axes_problems,
    export_onnx,
    opset_problems,
    rnn_problems,
    training_op_problems,
)
from seq2seq_export.export.torchscript import export_torchscript
from seq2seq_export.iospec import GraphSpec, graph_specs, memory_names, state_names
from seq2seq_export.model import Seq2Seq

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CFG = ModelConfig(src_vocab_size=11, tgt_vocab_size=13, emb_dim=8, hidden_dim=16, num_layers=2)
# Every issue #8 feature at once: LSTM state (hidden, cell), bidirectional encoder, attention memory.
VARIANT = ModelConfig(11, 13, 8, 16, num_layers=2, rnn="lstm", bidirectional_encoder=True, attention="bahdanau")
CONFIGS = {"baseline": CFG, "variant": VARIANT}
BATCHES, LENGTHS = (1, 3, 17), (1, 7, 60)


@pytest.fixture(scope="module")
def models() -> dict[str, Seq2Seq]:
    torch.manual_seed(0)
    return {name: Seq2Seq(cfg).eval() for name, cfg in CONFIGS.items()}


@pytest.fixture(scope="module")
def model(models) -> Seq2Seq:
    return models["baseline"]


class _Exports:
    """Each (config, kind) exported at most once per module, on first use: the dynamo export is slow."""

    def __init__(self, models: dict[str, Seq2Seq], root: Path):
        self.models, self.root, self.dirs = models, root, {}

    def __getitem__(self, key: str | tuple[str, str]) -> Path:
        config, kind = key if isinstance(key, tuple) else ("baseline", key)
        if (config, kind) not in self.dirs:
            d = self.root / f"{config}-{kind}"
            d.mkdir()
            model = self.models[config]
            modules = graph_modules(model)
            for name, spec in graph_specs(model.config).items():
                if kind == "torchscript":
                    export_torchscript(modules[name], spec, d / f"{name}.pt")
                else:
                    args = example_inputs(spec, model.config)
                    export_onnx(modules[name], args, spec, d / f"{name}.onnx", opset=DEFAULT_OPSET, exporter=kind)
            self.dirs[config, kind] = d
        return self.dirs[config, kind]


@pytest.fixture(scope="module")
def exported(models, tmp_path_factory) -> _Exports:
    """exported['legacy' | 'dynamo' | 'torchscript'] (baseline) or exported[config, kind] -> directory with both graphs."""
    return _Exports(models, tmp_path_factory.mktemp("export"))


def _inputs(batch: int, length: int, seed: int, cfg: ModelConfig = CFG) -> dict[str, np.ndarray]:
    """Feeds for every input of both graphs: random tokens, mixed lengths, random states and memory."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, length + 1, size=batch)
    lengths[0] = length  # the padded width is always used by some row; other rows may be empty
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.float32)  # (B, S)
    x = {
        "src_tokens": rng.integers(0, cfg.src_vocab_size, size=(batch, length)),
        "src_lengths": lengths,
        "prev_tokens": rng.integers(0, cfg.tgt_vocab_size, size=batch),
    }
    for name in state_names(cfg):
        x[name] = rng.standard_normal((cfg.num_layers, batch, cfg.hidden_dim)).astype(np.float32)
    if memory_names(cfg):
        memory = rng.standard_normal((batch, length, cfg.encoder_output_dim)).astype(np.float32)
        x["encoder_outputs"] = memory * mask[:, :, None]  # zeros at padding, as the encoder makes them
        x["src_mask"] = mask
    if cfg.attention == "bahdanau":  # any key values: the step must use the ones it is fed
        x["attention_keys"] = rng.standard_normal((batch, length, cfg.hidden_dim)).astype(np.float32)
    return x


def _named(cfg: ModelConfig, graph: str, outputs) -> dict[str, np.ndarray]:
    """{"encoder.hidden": ..., "decoder_step.logits": ...} from outputs in the spec's order."""
    outputs = (outputs,) if isinstance(outputs, (torch.Tensor, np.ndarray)) else outputs
    names = graph_specs(cfg)[graph].output_names
    assert len(outputs) == len(names)
    return {f"{graph}.{n}": o.numpy() if isinstance(o, torch.Tensor) else o for n, o in zip(names, outputs)}


def _eager(model: Seq2Seq, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    specs, t = graph_specs(model.config), {k: torch.from_numpy(v) for k, v in x.items()}
    with torch.no_grad():
        return {
            **_named(model.config, "encoder", model.encode(*(t[n] for n in specs["encoder"].input_names))),
            **_named(
                model.config, "decoder_step", model.decode_step(*(t[n] for n in specs["decoder_step"].input_names))
            ),
        }


@functools.cache
def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@functools.cache
def _script(path: Path) -> torch.jit.ScriptModule:
    return torch.jit.load(str(path))


def _run_onnx_graph(d: Path, cfg: ModelConfig, graph: str, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    sess = _session(d / f"{graph}.onnx")
    return _named(cfg, graph, sess.run(None, {n: x[n] for n in graph_specs(cfg)[graph].input_names}))


def _run_onnx(d: Path, x: dict[str, np.ndarray], cfg: ModelConfig = CFG) -> dict[str, np.ndarray]:
    return {**_run_onnx_graph(d, cfg, "encoder", x), **_run_onnx_graph(d, cfg, "decoder_step", x)}


def _run_torchscript(d: Path, x: dict[str, np.ndarray], cfg: ModelConfig = CFG) -> dict[str, np.ndarray]:
    out = {}
    for graph, spec in graph_specs(cfg).items():
        module = _script(d / f"{graph}.pt")
        with torch.no_grad():
            out.update(_named(cfg, graph, module(*(torch.from_numpy(x[n]) for n in spec.input_names))))
    return out


def _assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for key, w in want.items():
        assert got[key].shape == w.shape and got[key].dtype == w.dtype, key
        if w.dtype == np.int64:
            np.testing.assert_array_equal(got[key], w)
        else:
            np.testing.assert_allclose(got[key], w, rtol=0, atol=DEFAULT_ATOL, err_msg=key)


@pytest.mark.parametrize(
    "config, kind",
    [
        ("baseline", "legacy"),
        ("baseline", "dynamo"),
        ("baseline", "torchscript"),
        ("variant", "legacy"),
        ("variant", "torchscript"),
    ],
)
def test_graphs_match_eager_at_unseen_batches_and_lengths(config, kind, models, exported):
    assert (EXPORT_BATCH, EXPORT_SRC_LEN) == (2, 5)
    cfg = CONFIGS[config]
    run = _run_torchscript if kind == "torchscript" else _run_onnx
    for i, (batch, length) in enumerate((b, s) for b in BATCHES for s in LENGTHS):
        x = _inputs(batch, length, seed=i, cfg=cfg)
        _assert_close(run(exported[config, kind], x, cfg), _eager(models[config], x))


@pytest.mark.parametrize("config", CONFIGS)
def test_each_torchscript_file_holds_only_its_half_of_the_model(config, exported):
    d = exported[config, "torchscript"]
    enc, dec = (torch.jit.load(str(d / f)) for f in ("encoder.pt", "decoder_step.pt"))
    # Bahdanau's encoder graph also holds the attention's key projection (it computes attention_keys)
    extra = {"key_proj"} if CONFIGS[config].attention == "bahdanau" else set()
    assert {n.split(".")[0] for n, _ in enc.named_parameters()} == {"encoder"} | extra
    assert {n.split(".")[0] for n, _ in dec.named_parameters()} == {"decoder"}
    assert not enc.training and not dec.training


def test_dynamo_and_legacy_graphs_agree(exported):
    sigs = {}
    for kind in ("legacy", "dynamo"):
        for name in ("encoder", "decoder_step"):
            m = onnx.load(str(exported[kind] / f"{name}.onnx"))
            sigs.setdefault(kind, []).append([str(v.type) + v.name for v in list(m.graph.input) + list(m.graph.output)])
            # the decoder step runs explicit GRU cells (embedding folded into layer 0), no GRU op
            assert [g.op_type for g in m.graph.node].count("GRU") == (CFG.num_layers if name == "encoder" else 0)
    assert sigs["legacy"] == sigs["dynamo"]
    x = _inputs(4, 9, seed=99)
    a, b = _run_onnx(exported["legacy"], x), _run_onnx(exported["dynamo"], x)
    _assert_close(a, b)


def test_variant_graphs_keep_padding_out_of_the_bidirectional_encoder(models, exported):
    """A row padded to a longer batch gives exactly the outputs it gives alone (up to its length):
    the backward direction never reads padding, and the decoder step never attends to it."""
    d, cfg = exported["variant", "legacy"], VARIANT
    x = _inputs(3, 9, seed=5, cfg=VARIANT)
    x["src_lengths"] = np.array([9, 4, 0])
    batched = _run_onnx(d, x, cfg)
    for row, n in enumerate(x["src_lengths"].tolist()):
        alone = {
            "src_tokens": x["src_tokens"][row : row + 1, : max(n, 1)],
            "src_lengths": x["src_lengths"][row : row + 1],
        }
        enc = _run_onnx_graph(d, cfg, "encoder", alone)
        for name in state_names(cfg):
            np.testing.assert_allclose(
                enc[f"encoder.{name}"][:, 0], batched[f"encoder.{name}"][:, row], rtol=0, atol=1e-6
            )
        got, want = enc["encoder.encoder_outputs"][0, :n], batched["encoder.encoder_outputs"][row, :n]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        assert not batched["encoder.encoder_outputs"][row, n:].any() and batched["encoder.src_mask"][row].sum() == n
    attention = batched["decoder_step.attention"]
    assert not (attention * (1 - x["src_mask"])).any()  # exactly 0 at padding
    np.testing.assert_allclose(attention.sum(1), [1.0, 1.0, 0.0], atol=1e-6)  # the empty row attends nowhere, no NaN
    ops = {
        name: [n.op_type for n in onnx.load(str(d / f"{name}.onnx")).graph.node] for name in ("encoder", "decoder_step")
    }
    assert ops["encoder"].count("LSTM") == 2 * cfg.num_layers  # both directions of both layers, PyTorch's LSTM op
    assert "LSTM" not in ops["decoder_step"]  # explicit cells, embedding folded into layer 0


@pytest.mark.parametrize("config, kind", [("baseline", "legacy"), ("baseline", "dynamo"), ("variant", "legacy")])
def test_exported_files_pass_check_and_are_single_files(config, kind, exported):
    specs = graph_specs(CONFIGS[config])
    for name, spec in specs.items():
        path = exported[config, kind] / f"{name}.onnx"
        assert check_onnx_file(path, spec, DEFAULT_OPSET) == []
        graph = onnx.load(str(path)).graph
        dims = [
            [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(graph.input) + list(graph.output)
        ]
        assert dims == [
            list(t.shape) for t in spec.inputs + spec.outputs
        ]  # e.g. ['batch', 'src_len'], [2, 'batch', 16]
    assert sorted(p.name for p in exported[config, kind].iterdir()) == ["decoder_step.onnx", "encoder.onnx"]


def _flip_linear_before_reset(src: Path, dst: Path) -> None:
    m = onnx.load(str(src))
    for node in m.graph.node:
        if node.op_type == "GRU":
            for a in node.attribute:
                if a.name == "linear_before_reset":
                    a.i = 0
    onnx.save(m, str(dst))


def test_gru_with_linear_before_reset_0_is_rejected_and_really_wrong(exported, model, tmp_path):
    bad = tmp_path / "encoder.onnx"  # the encoder holds the GRU nodes; the decoder step has none
    _flip_linear_before_reset(exported["legacy"] / "encoder.onnx", bad)
    problems = check_onnx_file(bad, graph_specs(CFG)["encoder"])
    assert len(problems) == CFG.num_layers and all("linear_before_reset=0" in p for p in problems)
    # The lint matters: onnxruntime accepts the file and silently computes something else.
    x = _inputs(3, 4, seed=1)
    sess = ort.InferenceSession(str(bad), providers=["CPUExecutionProvider"])
    hidden = sess.run(["hidden"], {"src_tokens": x["src_tokens"], "src_lengths": x["src_lengths"]})[0]
    assert np.abs(hidden - _eager(model, x)["encoder.hidden"]).max() > 1e-3
    assert rnn_problems(onnx.load(str(exported["legacy"] / "encoder.onnx"))) == []


def test_lstm_with_coupled_gates_or_peepholes_is_rejected(exported):
    m = onnx.load(str(exported["variant", "legacy"] / "encoder.onnx"))
    assert rnn_problems(m) == []
    lstm = next(n for n in m.graph.node if n.op_type == "LSTM")
    lstm.attribute.append(onnx.helper.make_attribute("input_forget", 1))
    lstm.input.extend([""] * (7 - len(lstm.input)) + ["peepholes"])
    problems = rnn_problems(m)
    assert len(problems) == 2
    assert "input_forget=1, PyTorch semantics need 0" in problems[0] and "peephole weights" in problems[1]


def _legacy_raw(module, spec, path: Path, **kw) -> onnx.ModelProto:
    """A bare legacy export (no IO stamping, no checks), for building bad graphs."""
    torch.onnx.export(
        module,
        example_inputs(spec, CFG),
        str(path),
        dynamo=False,
        input_names=spec.input_names,
        output_names=spec.output_names,
        opset_version=kw.pop("opset", DEFAULT_OPSET),
        **kw,
    )
    return onnx.load(str(path))


@pytest.mark.filterwarnings("ignore")
def test_fixed_batch_signature_fails_dynamic_axes_lint(model, tmp_path):
    spec = graph_specs(CFG)["decoder_step"]
    fixed = _legacy_raw(graph_modules(model)["decoder_step"], spec, tmp_path / "fixed.onnx")  # no dynamic axes
    assert "prev_tokens: axis 0 (batch) is fixed to 2, expected a dynamic axis" in dynamic_axes_problems(fixed, spec)


def test_batch_baked_into_the_graph_fails_lint_even_when_relabelled(exported, tmp_path):
    """A Reshape to a constant (2, V) before the logits output: the signature still says 'batch'."""
    spec = graph_specs(CFG)["decoder_step"]
    m = onnx.load(str(exported["legacy"] / "decoder_step.onnx"))
    producer = next(n for n in m.graph.node if "logits" in n.output)
    producer.output[list(producer.output).index("logits")] = "logits_raw"
    m.graph.initializer.append(onnx.numpy_helper.from_array(np.array([EXPORT_BATCH, CFG.tgt_vocab_size]), "baked"))
    m.graph.node.append(onnx.helper.make_node("Reshape", ["logits_raw", "baked"], ["logits"]))
    argmax = next(n for n in m.graph.node if n.op_type == "ArgMax")
    argmax.input[0] = "logits_raw"
    assert dynamic_axes_problems(m, spec) == []
    assert constant_batch_problems(m, spec) == ["logits: batch axis is a constant 2 inside the graph"]
    onnx.save(m, str(tmp_path / "baked.onnx"))
    sess = ort.InferenceSession(str(tmp_path / "baked.onnx"), providers=["CPUExecutionProvider"])
    x = _inputs(3, 1, seed=0)
    # The lint is right: batch 3 cannot run (the Reshape to the baked (2, V) fails at run time).
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.Fail, match="cannot be reshaped to the requested shape"):
        sess.run(None, {"prev_tokens": x["prev_tokens"], "hidden": x["hidden"]})


def test_source_length_baked_into_the_graph_fails_lint(exported, tmp_path):
    """The attention output reshaped to the export's (-1, 5): what an exporter freezing the example
    source length into an internal shape produces. The signature still says 'src_len'."""
    spec = graph_specs(VARIANT)["decoder_step"]
    m = onnx.load(str(exported["variant", "legacy"] / "decoder_step.onnx"))
    producer = next(n for n in m.graph.node if "attention" in n.output)
    producer.output[list(producer.output).index("attention")] = "attention_raw"
    m.graph.initializer.append(onnx.numpy_helper.from_array(np.array([-1, EXPORT_SRC_LEN]), "baked"))
    m.graph.node.append(onnx.helper.make_node("Reshape", ["attention_raw", "baked"], ["attention"]))
    assert dynamic_axes_problems(m, spec) == []
    assert constant_batch_problems(m, spec) == ["attention: src_len axis is a constant 5 inside the graph"]
    assert constant_batch_problems(onnx.load(str(exported["variant", "legacy"] / "decoder_step.onnx")), spec) == []


@pytest.mark.filterwarnings("ignore")
def test_training_mode_dropout_and_old_opset_are_reported(tmp_path):
    torch.manual_seed(0)
    lively = Seq2Seq(ModelConfig(11, 13, 8, 16, dropout=0.3)).train()  # legacy: no GRU dropout in training mode
    spec = graph_specs(lively.config)["encoder"]  # the decoder step graph has no dropout (folded embedding)
    graph = graph_modules(lively)["encoder"].train()
    m = _legacy_raw(graph, spec, tmp_path / "train.onnx", training=torch.onnx.TrainingMode.TRAINING, opset=16)
    assert any("training mode" in p for p in training_op_problems(m))
    assert opset_problems(m) == ["opset 16 is below the minimum 17"]
    assert opset_problems(m, 18)[-1] == "opset 16 differs from the recorded opset 18"
    eval_graph = graph_modules(lively)["encoder"]  # graph_modules puts the model in eval mode
    export_onnx(
        eval_graph, example_inputs(spec, lively.config), spec, tmp_path / "eval.onnx", opset=18, exporter="legacy"
    )
    assert training_op_problems(onnx.load(str(tmp_path / "eval.onnx"))) == []


def test_external_data_is_rejected(exported, tmp_path):
    m = onnx.load(str(exported["legacy"] / "encoder.onnx"))
    onnx.save(m, str(tmp_path / "encoder.onnx"), save_as_external_data=True, size_threshold=0, location="w.bin")
    assert "external data" in check_onnx_file(tmp_path / "encoder.onnx", graph_specs(CFG)["encoder"])[0]


@pytest.mark.parametrize(
    "kwargs, match",
    [({"exporter": "tracing"}, "unknown ONNX exporter 'tracing'"), ({"opset": 16}, "opset 16 is too old")],
)
def test_bad_export_options(kwargs, match, model, tmp_path):
    spec = graph_specs(CFG)["encoder"]
    opts = {"opset": DEFAULT_OPSET, "exporter": "legacy", **kwargs}
    with pytest.raises(ExportError, match=match):
        export_onnx(graph_modules(model)["encoder"], example_inputs(spec, CFG), spec, tmp_path / "e.onnx", **opts)
    assert not (tmp_path / "e.onnx").exists()


class _DropsLengths(nn.Module):
    """Reads src_lengths as a Python int, so tracing bakes it in and the graph loses that input."""

    def forward(self, src_tokens: torch.Tensor, src_lengths: torch.Tensor) -> torch.Tensor:
        return torch.zeros(1, src_tokens.shape[0], 4) + int(src_lengths.max())


def test_a_graph_that_loses_an_input_is_an_export_error_and_nothing_is_printed(tmp_path, capsys):
    spec = graph_specs(ModelConfig(5, 6, 4, 4))["encoder"]
    args = (torch.zeros(2, 5, dtype=torch.long), torch.tensor([5, 3]))
    with pytest.raises(
        ExportError,
        match=r"encoder: exported graph inputs are \['src_tokens'\], expected \['src_tokens', 'src_lengths'\]",
    ):
        export_onnx(_DropsLengths(), args, spec, tmp_path / "e.onnx", opset=DEFAULT_OPSET, exporter="legacy")
    assert capsys.readouterr() == ("", "")
    assert not (tmp_path / "e.onnx").exists()


class _RenamedLengths(nn.Module):
    """The encoder's computation under a forward whose second input is misnamed."""

    def forward(self, src_tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.zeros(1, src_tokens.shape[0], 4) + lengths.unsqueeze(0).unsqueeze(2)


@pytest.mark.parametrize(
    "module, graph, match",
    [
        (
            _RenamedLengths(),
            "encoder",
            r"encoder: scripted graph does not match its IO spec: forward takes "
            r"\['src_tokens', 'lengths'\], the IO spec says \['src_tokens', 'src_lengths'\]",
        ),
        (_DropsLengths(), "encoder", None),  # matches: scripting keeps src_lengths a tensor input
        (
            "encoder",
            "decoder_step",
            r"decoder_step: .*forward takes \['src_tokens', 'src_lengths'\].*; forward returns "
            r"1 outputs, the IO spec says 3 \(logits, next_tokens, hidden_out\)",
        ),
    ],
)
def test_torchscript_export_checks_the_scripted_signature_against_the_spec(module, graph, match, model, tmp_path):
    spec = graph_specs(CFG)[graph]
    module = graph_modules(model)[module] if isinstance(module, str) else module
    if match is None:
        export_torchscript(module, spec, tmp_path / "g.pt")
        assert [a.name for a in torch.jit.load(tmp_path / "g.pt").forward.schema.arguments[1:]] == spec.input_names
        return
    with pytest.raises(ExportError, match=match):
        export_torchscript(module, spec, tmp_path / "g.pt")
    assert not (tmp_path / "g.pt").exists()


def test_wrappers_are_picked_by_io_signature():
    """Every variant's specs pick a wrapper whose forward takes the spec's inputs; an unknown signature is an ExportError."""
    for rnn, attention in itertools.product(("gru", "lstm"), ("none", "luong", "bahdanau")):
        for spec in graph_specs(ModelConfig(5, 6, 4, 4, rnn=rnn, attention=attention)).values():
            cls = wrapper_class(spec)
            assert (list(forward_inputs(cls)), forward_outputs(cls)) == (spec.input_names, len(spec.outputs))
    spec = graph_specs(CFG)["decoder_step"]
    odd = GraphSpec(spec.name, spec.inputs[:1], spec.outputs)
    with pytest.raises(
        ExportError, match=r"decoder_step: no export wrapper takes \['prev_tokens'\] and returns 3 outputs"
    ):
        wrapper_class(odd)
