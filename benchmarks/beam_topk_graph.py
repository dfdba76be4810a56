"""Beam search's per-step selection in a small ONNX graph vs on the host: CPU time and agreement.

    .venv/bin/python benchmarks/beam_topk_graph.py [--beam-size 5] [--calls 400]

Issue #18 item 1 asks whether the decoder step should hand beam search its top-k instead of the whole
(rows x vocabulary) logits. This times, on onnxruntime's CPU provider with one thread, a second graph
(float64 log-softmax of the logits plus each row's running sum, then TopK; the rows of one sequence
flattened first, as runtime/beam.py ranks them) against the numpy path beam search runs
(runtime.core.log_softmax, then runtime.beam.top_k), at a cmudict target vocabulary (73) and at a
32000-token one, for one sequence (5 rows) and for 64 (320 rows, TopK per row). It prints both times
in us per call (median), whether the chosen indices agree and how far the log-probs are apart
(onnxruntime sums the exponentials in another order than numpy: not bit for bit the same).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from seq2seq_export.runtime.beam import top_k
from seq2seq_export.runtime.core import log_softmax
from seq2seq_export.runtime.onnx import session_options

SHAPES = ((5, 73), (320, 73), (5, 32000), (320, 32000))  # (rows, vocabulary)


def selection_graph(k: int, one_sequence: bool) -> ort.InferenceSession:
    """logits (R, V) float32, total (R, 1) float64 -> logp (R, V), TopK values and indices (best first,
    ties to the lower index): over all R x V when one_sequence, else per row."""
    d = TensorProto.DOUBLE
    nodes = [
        helper.make_node("Cast", ["logits"], ["x"], to=d),
        helper.make_node("ReduceMax", ["x", "axis"], ["top"], keepdims=1),
        helper.make_node("Sub", ["x", "top"], ["shifted"]),
        helper.make_node("Exp", ["shifted"], ["e"]),
        helper.make_node("ReduceSum", ["e", "axis"], ["total_e"], keepdims=1),
        helper.make_node("Log", ["total_e"], ["lse"]),
        helper.make_node("Sub", ["shifted", "lse"], ["logp"]),
        helper.make_node("Add", ["logp", "total"], ["cand"]),
        helper.make_node("Reshape", ["cand", "flat" if one_sequence else "same"], ["ranked"]),
        helper.make_node("TopK", ["ranked", "k"], ["values", "indices"], axis=1),
    ]
    consts = [
        helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
        helper.make_tensor("k", TensorProto.INT64, [1], [k]),
        helper.make_tensor("flat", TensorProto.INT64, [2], [1, -1]),
        helper.make_tensor("same", TensorProto.INT64, [2], [0, -1]),
    ]
    graph = helper.make_graph(
        nodes,
        "beam_selection",
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["R", "V"]),
            helper.make_tensor_value_info("total", d, ["R", 1]),
        ],
        [
            helper.make_tensor_value_info("logp", d, ["R", "V"]),
            helper.make_tensor_value_info("values", d, ["G", "K"]),
            helper.make_tensor_value_info("indices", TensorProto.INT64, ["G", "K"]),
        ],
        consts,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), session_options(1), providers=["CPUExecutionProvider"])


def host_selection(logits: np.ndarray, total: np.ndarray, k: int, one_sequence: bool) -> np.ndarray:
    """What runtime/beam.py does on the host: float64 log-softmax plus the running sums, then top-k."""
    cand = log_softmax(logits) + total
    return top_k(cand.reshape(1, -1) if one_sequence else cand, k)


def median_us(fn: Callable[[], object], calls: int) -> float:
    """Median CPU time of one call, over chunks of 10 calls."""
    fn()
    chunks = []
    for _ in range(max(3, calls // 10)):
        start = time.process_time_ns()
        for _ in range(10):
            fn()
        chunks.append((time.process_time_ns() - start) / 10e3)
    return statistics.median(chunks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--calls", type=int, default=400, help="calls timed per path at the 73-token vocabulary")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'rows':>5}{'vocab':>7}{'numpy us':>11}{'graph us':>11}  same indices  max |logp diff|")
    for rows, vocab in SHAPES:
        logits = (3 * rng.standard_normal((rows, vocab))).astype(np.float32)
        total = -5 * rng.random((rows, 1))
        one = rows <= args.beam_size
        session = selection_graph(args.beam_size, one)

        host = partial(host_selection, logits, total, args.beam_size, one)
        graph = partial(session.run, ["values", "indices"], {"logits": logits, "total": total})
        calls = args.calls if vocab < 1000 else max(10, args.calls // 40)
        numpy_us, graph_us = median_us(host, calls), median_us(graph, calls)
        logp, _, indices = session.run(None, {"logits": logits, "total": total})
        same = bool(np.array_equal(indices, host()))
        diff = float(np.abs(logp - log_softmax(logits)).max())
        print(f"{rows:>5}{vocab:>7}{numpy_us:>11.1f}{graph_us:>11.1f}  {str(same):<12}  {diff:.1e}")


if __name__ == "__main__":
    main()
