"""onnxruntime backend: numpy + onnxruntime only, so it runs where torch is not installed.

On CPU the step loop feeds numpy arrays and fetches only next_tokens and the new state (the logits
too only for searches that score, never the attention). On CUDA it uses IO binding: the state and the memory (attention models'
encoder outputs) stay on the device between steps and only the chosen token ids come back to the host.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnxruntime as ort

from ..constants import MAX_THREADS
from ..errors import BundleError, ConfigError, first_line, is_int
from ..iospec import (
    DECODER_STEP,
    ENCODER,
    GRAPH_NAMES,
    LOGITS,
    NEXT_TOKENS,
    SRC_LENGTHS,
    SRC_TOKENS,
    GraphSpec,
    graph_specs,
)
from ..manifest import Bundle
from .core import Carry
from .onnx_bytes import checked_onnx_bytes
from .state import memory_flows, state_flows

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, CPU always as the fallback."""
    return ([CUDA] if CUDA in ort.get_available_providers() else []) + [CPU]


def session_options(intra_op_threads: int | None = None, inter_op_threads: int | None = None) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # two small chains of ops: no inter-op parallelism
    for name, value in (("intra_op_num_threads", intra_op_threads), ("inter_op_num_threads", inter_op_threads)):
        if value is not None:
            if not is_int(value, 1, MAX_THREADS):
                raise ConfigError(
                    f"onnx backend: {name} must be a positive integer, at most {MAX_THREADS}, got {value!r}"
                )
            setattr(opts, name, value)
    # Idle pool threads would otherwise busy-wait between the many tiny per-step runs and steal
    # the CPU from the Python loop that drives them.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts


def _check_io(session: ort.InferenceSession, spec: GraphSpec, path: Any, source: str) -> None:
    """The graph's IO names, and every fixed dim, must be what `source` (manifest or config) says."""
    for kind, actual, expected in (
        ("inputs", session.get_inputs(), spec.inputs),
        ("outputs", session.get_outputs(), spec.outputs),
    ):
        if [a.name for a in actual] != [e.name for e in expected]:
            raise BundleError(
                f"{path}: graph {kind} {[a.name for a in actual]} differ from {source}'s {[e.name for e in expected]}"
            )
        for a, e in zip(actual, expected):
            fixed = [(i, d, a.shape[i]) for i, d in enumerate(e.shape) if isinstance(d, int) and i < len(a.shape)]
            bad = [(i, d, g) for i, d, g in fixed if isinstance(g, int) and g != d]
            if len(a.shape) != len(e.shape) or bad:
                raise BundleError(
                    f"{path}: {e.name} has shape {a.shape} but {source} says {list(e.shape)} (wrong vocabulary or config?)"
                )


class OnnxBackend:
    """The bundle's two ONNX graphs in onnxruntime sessions; implements runtime.core.Backend."""

    def __init__(
        self,
        bundle: Bundle,
        providers: Sequence[str] | None = None,
        intra_op_threads: int | None = None,
        inter_op_threads: int | None = None,
        io_binding: bool | None = None,
    ):
        """io_binding: keep the state in device OrtValues between steps; default on exactly when the
        graphs run on CUDA (on CPU it only adds overhead, but works, which is how tests cover it)."""
        opts = session_options(intra_op_threads, inter_op_threads)
        config_specs = graph_specs(bundle.config)
        self.graphs = bundle.graphs
        self.sessions: dict[str, ort.InferenceSession] = {}
        for name in GRAPH_NAMES:
            path = bundle.graph_file(name, "onnx")
            data = checked_onnx_bytes(bundle, name)  # never the path: the file may have changed since
            try:
                sess = ort.InferenceSession(data, opts, providers=list(providers or default_providers()))
            except Exception as e:  # onnxruntime raises its own untyped errors for unreadable graphs
                raise BundleError(f"{path}: onnxruntime cannot load this graph: {first_line(e)}") from None
            _check_io(sess, bundle.graphs[name], path, "the manifest")
            _check_io(sess, config_specs[name], path, "model_config")
            self.sessions[name] = sess
        self.flows = state_flows(bundle.state, bundle.graphs[DECODER_STEP])
        self.memory = memory_flows(bundle.memory, bundle.graphs[DECODER_STEP])
        self.carry = Carry(self.flows, self.memory)  # what encode returns and step / select carry
        self._encoder, self._decoder = self.sessions[ENCODER], self.sessions[DECODER_STEP]
        self._step_outputs = [NEXT_TOKENS] + self.carry.state_outputs
        self._logits_outputs = [LOGITS] + self.carry.state_outputs  # searches that score (beam.py)
        on_cuda = self._decoder.get_providers()[0] == CUDA
        device_id = int(self._decoder.get_provider_options().get(CUDA, {}).get("device_id", 0))
        self._device = ("cuda", device_id) if on_cuda else ("cpu", 0)  # where bound state outputs live
        self.io_binding = on_cuda if io_binding is None else bool(io_binding)

    @property
    def providers(self) -> list[str]:
        return self._decoder.get_providers()

    def run_graph(self, name: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raw call of one graph by its IO names, numpy in and out (every output)."""
        sess = self.sessions[name]
        return dict(zip(self.graphs[name].output_names, sess.run(None, feeds)))

    # The carried tensors (core.Carry): numpy arrays, or OrtValues with io_binding.

    def encode(self, src: np.ndarray, lengths: np.ndarray) -> tuple:
        feeds, fetch = {SRC_TOKENS: src, SRC_LENGTHS: lengths}, self.carry.encoder_outputs
        if self.io_binding:
            return tuple(self._bound_run(self._encoder, feeds, fetch))
        return tuple(self._encoder.run(fetch, feeds))

    def step(self, prev_tokens: np.ndarray, carried: tuple) -> tuple[np.ndarray, tuple]:
        return self._step(prev_tokens, carried, self._step_outputs)

    def step_logits(self, prev_tokens: np.ndarray, carried: tuple) -> tuple[np.ndarray, tuple]:
        return self._step(prev_tokens, carried, self._logits_outputs)

    def _step(self, prev_tokens: np.ndarray, carried: tuple, outputs: list[str]) -> tuple[np.ndarray, tuple]:
        """One decoder step fetching outputs[0] to the host and the new state (kept on the device when bound)."""
        feeds = self.carry.feeds(prev_tokens, carried)
        if self.io_binding:
            first, *new = self._bound_run(self._decoder, feeds, outputs, host_outputs=1)
            return first.numpy(), self.carry.next(carried, new)
        first, *new = self._decoder.run(outputs, feeds)
        return first, self.carry.next(carried, new)

    def select(self, carried: tuple, rows: np.ndarray) -> tuple:
        if self.io_binding:  # rare (only when some rows finish): a round trip through the host
            return self.carry.select(carried, rows, self._take_bound)
        return self.carry.select(carried, rows)

    def _take_bound(self, value: ort.OrtValue, rows: np.ndarray, axis: int) -> ort.OrtValue:
        return ort.OrtValue.ortvalue_from_numpy(np.take(value.numpy(), rows, axis=axis), *self._device)

    def _bound_run(
        self, sess: ort.InferenceSession, feeds: dict[str, Any], outputs: list[str], host_outputs: int = 0
    ) -> list[ort.OrtValue]:
        """Run with IO binding: numpy feeds are copied in, OrtValue feeds stay where they are; the
        first `host_outputs` outputs land on the host, the rest stay on the session's device."""
        binding = sess.io_binding()  # one per call: bindings are not shared between threads
        for name, value in feeds.items():
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(name, value)
            else:
                binding.bind_ortvalue_input(name, value)
        for i, name in enumerate(outputs):
            binding.bind_output(name, *(("cpu", 0) if i < host_outputs else self._device))
        sess.run_with_iobinding(binding)
        return binding.get_outputs()
