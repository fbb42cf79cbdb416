"""The profiler: time every kernel of a grid on one device and return table rows + metadata.

Owns the torch import (with a message naming the extra to install), device checks (CUDA asked
for but absent is an error), the thread count on CPU (fixed and recorded), the timing loop per
shape (CUDA events + NVML window on GPU, perf_counter on CPU) and the metadata sidecar contents
(device, driver, CUDA, torch, clocks, date, command line, git revision, what was not recorded).
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Callable

from profiles.kernels import build_kernel
from profiles.nvml import open_sampler
from profiles.table import ProfileRow
from profiles.timers import TimingPlan, summarise_times, time_calls_cpu, time_calls_cuda

TORCH_HINT = "the profiler needs torch: pip install 'servesim[profile]' (CPU wheel: pip install torch==2.13.0)"


def import_torch():
    try:
        import torch
    except ImportError:
        raise ImportError(TORCH_HINT) from None
    return torch


def check_device(torch, device: str) -> None:
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was requested but torch sees no CUDA device "
                         f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); use --device cpu")


def last_level_cache_bytes(torch, device: str) -> int:
    if device == "cuda":
        return int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 * 2**20))
    for index in (3, 2):
        path = Path(f"/sys/devices/system/cpu/cpu0/cache/index{index}/size")
        if path.is_file():
            text = path.read_text().strip().upper()
            scale = {"K": 2**10, "M": 2**20}.get(text[-1], 1)
            return int(text.rstrip("KM")) * scale
    return 32 * 2**20


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_profile(grid: list, *, dtype: str, device: str, plan: TimingPlan, num_threads: int | None,
                progress: Callable[[int, int, str], None] | None = None,
                gemm_layout: str = "fused", passes: int = 1) -> tuple[list[ProfileRow], dict]:
    """Time each (op, shape) of `grid`; returns rows and the run's metadata (without device name).

    With passes > 1 the whole grid is timed that many times, spread over time, and each shape
    keeps its pass with the median median (the lower middle one for an even count): one pass
    measured while another process held the CPU (shared machines) is then outvoted."""
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes!r}")
    torch = import_torch()
    check_device(torch, device)
    if device == "cpu" and num_threads:
        torch.set_num_threads(num_threads)
    sampler, nvml_reason = open_sampler() if device == "cuda" else (None, "no GPU: NVML not used")
    not_recorded = [] if sampler else [f"power, clocks, temperature, energy: {nvml_reason}"]
    cache = last_level_cache_bytes(torch, device)
    measured: list[list[ProfileRow]] = [[] for _ in grid]
    if sampler:
        sampler.start()
    try:
        with torch.inference_mode():
            for k in range(len(grid) * passes):
                op, shape = grid[k % len(grid)]
                if progress:
                    progress(k, len(grid) * passes, op)
                measured[k % len(grid)].append(
                    _time_one(torch, op, shape, dtype, device, plan, cache, sampler, gemm_layout))
    finally:
        if sampler:
            sampler.stop()
    if progress:
        progress(len(grid) * passes, len(grid) * passes, "done")
    rows = pick_pass([list(p) for p in zip(*measured)])
    meta = _metadata(torch, device, dtype, plan, cache, sampler, not_recorded)
    meta.update(gemm_layout=gemm_layout, passes=passes)
    return rows, meta


PASS_CHOICES = ("middle", "fastest")


def pick_pass(passes: list[list[ProfileRow]], which: str = "middle") -> list[ProfileRow]:
    """Row k of the result: row k of the pass whose median is the middle one (the lower middle
    for an even count), or the smallest one ("fastest": the estimate of an uncontended machine,
    since other tenants only ever slow a kernel down). Every pass lists the same shapes in order."""
    if which not in PASS_CHOICES:
        raise ValueError(f"which must be one of {PASS_CHOICES}, got {which!r}")
    if len({len(p) for p in passes}) != 1:
        raise ValueError(f"passes differ in length: {[len(p) for p in passes]}")
    pos = (lambda n: (n - 1) // 2) if which == "middle" else (lambda n: 0)
    return [sorted(rs, key=lambda r: r.time_median_us)[pos(len(rs))] for rs in zip(*passes)]


def _time_one(torch, op, shape, dtype, device, plan, cache, sampler, gemm_layout) -> ProfileRow:
    fn = build_kernel(torch, op, shape, dtype, device, cache_bytes=cache, gemm_layout=gemm_layout)
    window = sampler.begin_window() if sampler else None
    if device == "cuda":
        times = time_calls_cuda(fn, plan, torch.cuda)
    else:
        times = time_calls_cpu(fn, plan)
    stats = summarise_times(times)
    extra = {"num_repeats": float(len(times))}
    if sampler:
        extra.update(sampler.end_window(window, stats["time_median_us"] * 1e-6))
    return ProfileRow(op=op, dtype=dtype, shape=shape, extra=extra, **stats)


def _metadata(torch, device, dtype, plan, cache, sampler, not_recorded) -> dict:
    meta = {
        "dtype": dtype,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["servesim" if Path(sys.argv[0]).name in ("cli.py", "servesim") else sys.argv[0]]
                            + sys.argv[1:]),
        "git_revision": git_revision(),
        "timing": {"warmup": plan.warmup, "min_repeats": plan.min_repeats, "max_repeats": plan.max_repeats,
                   "budget_s": plan.budget_s, "rotating_sets_cover_bytes": 2 * cache},
        "not_recorded": not_recorded,
        "units": "time_*_us: microseconds per call (one layer, one rank)",
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        meta.update({"device_name": props.name, "cuda": torch.version.cuda, "timer": "cuda_events",
                     "gpu_memory_bytes": int(props.total_memory), "l2_cache_bytes": cache,
                     "nvml": sampler.static_info() if sampler else None})
    else:
        meta.update({"device_name": platform.processor() or platform.machine(), "timer": "perf_counter",
                     "num_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                     "last_level_cache_bytes": cache, "cpu_model": _cpu_model()})
    return meta


def _cpu_model() -> str | None:
    path = Path("/proc/cpuinfo")
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None
