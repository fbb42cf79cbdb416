"""The host CPU as an expert executor: measured here, carried over to any host by cores and bandwidth.

Owns measuring this machine's CPU on the op an offloaded MoE expert runs (torch linear of an
expert-shaped weight, 14336 x 4096 as Mixtral's: GEMV at 1 token, GEMM at 16 tokens, bf16 and
fp32, on 1 and all threads) and DRAM copy bandwidth, the JSON that records it
(profiles/data/hosts/cpu_expert.json: values, machine, torch version, date), and the carry-over
to a catalog host with C cores and nominal DRAM bandwidth B:
    bytes/s = min(C x per-core GEMV bytes/s x parallel efficiency, B)
    FLOP/s  = min(C x per-core GEMM FLOP/s x parallel efficiency, the host's peak)
where the per-core rates and the parallel efficiency (all-thread rate / (threads x one-thread
rate)) are this machine's measurements. Known limits, stated with every use: one machine, few
cores (its parallel efficiency is extrapolated to many), and the ISA of this CPU (AVX-512 BF16
here; hosts without a bf16 unit are slower at GEMM).
"""
from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from profiles.table import ProfileError, read_json

HOST_CPU_FILE = Path(__file__).parent / "data" / "hosts" / "cpu_expert.json"
FORMAT = "servesim-host-cpu/1"
EXPERT_SHAPE = (14336, 4096)  # out x in of one Mixtral-8x7B expert projection
DTYPES = ("bf16", "fp32")


@dataclass(frozen=True, slots=True)
class HostCpuCalibration:
    gemv_bytes_per_s_per_core: dict[str, float]
    gemm_flops_per_s_per_core: dict[str, float]
    parallel_efficiency: float
    machine: str
    source: str

    def rates(self, *, cores: int, dram_bytes_per_s: float, peak_flops: float, dtype: str) -> tuple[float, float]:
        """(FLOP/s, bytes/s) of an expert on a host with `cores` cores (module docstring)."""
        key = dtype if dtype in self.gemv_bytes_per_s_per_core else "bf16"
        scale = cores * self.parallel_efficiency
        return (min(scale * self.gemm_flops_per_s_per_core[key], peak_flops),
                min(scale * self.gemv_bytes_per_s_per_core[key], dram_bytes_per_s))

    def describe(self) -> str:
        return (f"{self.source}: per core {self.gemv_bytes_per_s_per_core.get('bf16', 0) / 1e9:.1f} GB/s bf16 GEMV, "
                f"{self.gemm_flops_per_s_per_core.get('bf16', 0) / 1e9:.0f} GFLOP/s bf16 GEMM, parallel efficiency "
                f"{self.parallel_efficiency:.2f}, carried over by core count and capped by DRAM bandwidth")


def load_host_cpu(path: Path = HOST_CPU_FILE) -> HostCpuCalibration | None:
    if not path.is_file():
        return None
    raw = read_json(path)
    if raw.get("format") != FORMAT:
        raise ProfileError(f"{path}: format {raw.get('format')!r}, expected {FORMAT!r}")
    try:
        return HostCpuCalibration({k: float(v) for k, v in raw["gemv_bytes_per_s_per_core"].items()},
                                  {k: float(v) for k, v in raw["gemm_flops_per_s_per_core"].items()},
                                  float(raw["parallel_efficiency"]), raw["machine"]["cpu"],
                                  f"measured on {raw['machine']['cpu']} ({raw['machine']['threads']} threads, "
                                  f"{raw['measured_at']})")
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(f"{path}: {exc}") from None


def _median_s(fn, runs: int) -> float:
    fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


def measure_host_cpu(torch, *, runs: int = 7) -> dict:
    """This machine's expert-op rates (the JSON written to HOST_CPU_FILE)."""
    import numpy as np

    threads = torch.get_num_threads()
    out, w_shape = {}, EXPERT_SHAPE
    per_thread = {}
    for n_threads in sorted({1, threads}):
        torch.set_num_threads(n_threads)
        for name, dt in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
            w = torch.randn(*w_shape, dtype=dt)
            for m in (1, 16):
                x = torch.randn(m, w_shape[1], dtype=dt)
                t = _median_s(lambda: torch.nn.functional.linear(x, w), runs)
                per_thread[(n_threads, name, m)] = t
    torch.set_num_threads(threads)
    nbytes = {name: w_shape[0] * w_shape[1] * (2 if name == "bf16" else 4) for name in DTYPES}
    flops16 = 2 * 16 * w_shape[0] * w_shape[1]
    one = {name: nbytes[name] / per_thread[(1, name, 1)] for name in DTYPES}
    every = {name: nbytes[name] / per_thread[(threads, name, 1)] / threads for name in DTYPES}
    a = np.ones(64 * 1024 * 1024 // 8)
    b = np.empty_like(a)
    copy = 2 * a.nbytes / _median_s(lambda: np.copyto(b, a), runs)
    out = {
        "format": FORMAT,
        "measured_at": time.strftime("%Y-%m-%d"),
        "machine": {"cpu": _cpu_name(), "threads": threads, "torch": torch.__version__,
                    "python": platform.python_version(), "flags": _isa_flags()},
        "op": f"torch.nn.functional.linear, weight {w_shape[0]}x{w_shape[1]}; GEMV = 1 token, GEMM = 16 tokens; "
              f"median of {runs} runs",
        "gemv_bytes_per_s_per_core": {name: (one[name] if threads == 1 else every[name]) for name in DTYPES},
        "gemm_flops_per_s_per_core": {name: flops16 / per_thread[(threads, name, 16)] / threads for name in DTYPES},
        "parallel_efficiency": min(1.0, every["bf16"] / one["bf16"]) if threads > 1 else 1.0,
        "copy_bytes_per_s": copy,
        "times_s": {f"{n}t_{name}_m{m}": t for (n, name, m), t in sorted(per_thread.items())},
    }
    return out


def save_host_cpu(measured: dict, path: Path = HOST_CPU_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
    return path


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _isa_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return sorted(f for f in flags if f.startswith(("avx512_bf16", "amx", "avx512f", "avx2")))
