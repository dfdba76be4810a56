"""The machine side of a benchmark: CPU and library facts, the GEMM speed limit, threads."""
from __future__ import annotations

import os
import platform
import time
from importlib import metadata

from ..errors import ConfigError

GEMM_SIZES = (256, 512, 1024)  # square fp32 matmuls timed for the limit: large enough for the BLAS peak
GEMM_TRIALS = 7  # best of these; interference from other processes only ever slows a trial down
LIBRARIES = ("seq2seq-export", "torch", "onnxruntime", "onnx", "numpy")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    """The SIMD extensions that decide a GEMM's peak (from /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return []
    return sorted(f for f in flags if f in ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile"))


def machine_info(threads: int) -> dict:
    versions: dict[str, str | None] = {}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    return {
        "cpu_model": cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "threads": threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libraries": versions,
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


ORT_PROVIDERS: dict[str, list[str] | None] = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"], "auto": None}


def require_device(device: str, backends: tuple[str, ...]) -> None:
    """ConfigError unless every backend (and torch, which measures the GEMM limit) can run on `device`."""
    from ..model import select_device

    select_device(device)
    if device == "cuda" and "onnx" in backends:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ConfigError("device 'cuda' was asked for but this onnxruntime has no CUDAExecutionProvider "
                              "(install onnxruntime-gpu), or bench without onnx, or use --device cpu")


def backend_options(name: str, threads: int, device: str) -> dict:
    """Keyword options for `open_backend`: exactly `threads` compute threads, on `device` (auto: the backend's default)."""
    if name == "onnx":
        return {"threads": threads, "inter_op_threads": 1, "providers": ORT_PROVIDERS[device]}
    return {"threads": threads, "device": None if device == "auto" else device}


def _gemm_rate(m: int, k: int, n: int, device, trials: int = GEMM_TRIALS) -> float:
    """Best-of-`trials` GFLOP/s of an (m x k) @ (k x n) fp32 matmul on `device` (small ones timed in loops)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=gen).to(device), torch.randn(k, n, generator=gen).to(device)
    out = torch.empty(m, n, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    calls = max(1, int(1e8 // (2 * m * k * n)))  # about 0.1 GFLOP per trial, so a timing is not all clock noise
    torch.mm(a, b, out=out)  # warm-up: the first call pays for kernel selection and page faults
    sync()
    best = float("inf")
    for _ in range(trials):
        t0 = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b, out=out)
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n * calls / best / 1e9


def gemm_limit(threads: int, device: str = "cpu", hidden: int | None = None, batch_sizes: tuple[int, ...] = ()) -> dict:
    """The compute limit: the fastest fp32 GEMM rate measured with `threads` threads, over a few sizes.

    The rate is taken over several sizes because the BLAS peak is not always at the largest one
    (cache blocking); the limit is the best of them, so the fractions we report are not flattered.
    With `hidden`, also the rate of the recurrent GEMM one step does at each batch size,
    (B x H) @ (H x 3H): the ceiling that GEMM shape itself allows (informative, not the limit).
    """
    import torch

    from ..model import select_device

    dev = select_device(device)
    torch.set_num_threads(threads)
    per_size = {str(n): _gemm_rate(n, n, n, dev) for n in GEMM_SIZES}
    step = {str(b): _gemm_rate(b, hidden, 3 * hidden, dev) for b in batch_sizes} if hidden else {}
    return {
        "gflops": max(per_size.values()),
        "per_size_gflops": per_size,
        "step_gemm_gflops": step,
        "threads": threads,
        "device": str(dev),
        "trials": GEMM_TRIALS,
    }
