"""A device's kernel efficiencies: per kernel class, the fraction of the device's peaks a kernel
reaches and its per-call floor, used as a kernel-time predictor by the simulator's cost model.

Owns the class time model and its JSON form (format "servesim-device/1"):
  gemm (profiles/work.py LINEAR_OPS and moe_expert), attn_prefill:
      t = t0 + (t_c^p + t_m^p)^(1/p),  t_c = FLOPs / (eta_compute(dtype) * F_peak(dtype)),
                                        t_m = bytes / (eta_memory * BW)
  memory-bound kernels (each elementwise op, sampling, kv_append, attn_decode):
      t = t0 + bytes / (eta_memory * BW)        (p = None: the plain max of t_c and t_m)
  attention kernels price each sequence as if it attended extra_tokens more keys: a fitted
  per-sequence cost (short contexts leave the kernel's pipeline and SMs part empty)
  all-reduce of m bytes over n GPUs of one node (ring/tree, NCCL's bus bandwidth convention):
      t = latency_s(n) + 2 (n - 1) / n * m / bus_bytes_per_s(n)
FLOPs and bytes are profiles/work.py's. Efficiencies are fractions of the DeviceSpec's dense
peaks, so one calibration serves every dtype (fp8/int8 GEMMs have their own eta_compute) and,
through profiles/transfer.py, devices that were never measured. The p-norm's p = 1.5 was chosen
by leave-one-model-out error on Vidur's A100, H100 and A40 tables (profiles/device_fit.py).
Knows nothing of the simulator; never imports torch.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from hardware import DeviceSpec
from profiles.table import ProfileError, read_json
from profiles.work import ELEMENTWISE_OPS, LINEAR_OPS, attention_work, beta_of, kernel_work

DEVICE_FORMAT = "servesim-device/1"
GEMM_OPS = LINEAR_OPS + ("moe_expert",)
MEMORY_OPS = ("sampling",)  # memory-bound helpers without a class of their own (engines write KV inside attention)
CLASS_OF = {op: "gemm" for op in GEMM_OPS} | {op: op for op in ELEMENTWISE_OPS} | {
    "attn_decode": "attn_decode", "attn_prefill": "attn_prefill"} | {op: "memory" for op in MEMORY_OPS}
PEAK_DTYPE = {"fp16": "bf16", "int8": "fp8"}  # a dtype without its own peak in a catalog file uses this one's


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelClass:
    """One kernel class on one device: efficiencies of the device's peaks and a per-call floor."""

    eta_compute: float  # of the 16-bit dense peak
    eta_memory: float  # of the memory bandwidth
    overhead_s: float  # per-call floor (launch and tail)
    p: float | None = None  # smooth maximum of compute and memory time; None: max
    extra_tokens: float = 0.0  # attention: each sequence costs as if it attended this many more keys
    eta_compute_by_dtype: dict[str, float] = field(default_factory=dict)  # e.g. fp8's own efficiency
    source: str = ""  # where the numbers come from (table fit, published kernel benchmark, transfer)
    error: dict = field(default_factory=dict)  # measured error: train/test median and p90 APE in %

    def __post_init__(self) -> None:
        for name in ("eta_compute", "eta_memory"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v <= 2):
                raise ValueError(f"{name} must be in (0, 2], got {v!r}")
        if not (self.overhead_s >= 0 and math.isfinite(self.overhead_s)):
            raise ValueError(f"overhead_s must be finite and >= 0, got {self.overhead_s!r}")
        if self.p is not None and not self.p >= 1:
            raise ValueError(f"p must be >= 1 (or null for max), got {self.p!r}")
        if not (self.extra_tokens >= 0 and math.isfinite(self.extra_tokens)):
            raise ValueError(f"extra_tokens must be finite and >= 0, got {self.extra_tokens!r}")

    def eta_c(self, dtype: str) -> float:
        return self.eta_compute_by_dtype.get(dtype, self.eta_compute)

    def time_s(self, flops: float, nbytes: float, peak_flops: float, bytes_per_s: float, dtype: str) -> float:
        t_c = flops / (self.eta_c(dtype) * peak_flops)
        t_m = nbytes / (self.eta_memory * bytes_per_s)
        if self.p is None:
            return self.overhead_s + max(t_c, t_m)
        return self.overhead_s + (t_c ** self.p + t_m ** self.p) ** (1.0 / self.p)


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectiveFit:
    """All-reduce over `num_gpus` GPUs of one node: latency floor and bus bandwidth."""

    num_gpus: int
    latency_s: float
    bus_bytes_per_s: float
    source: str = ""
    error: dict = field(default_factory=dict)

    def time_s(self, nbytes: float) -> float:
        n = self.num_gpus
        return self.latency_s + 2.0 * (n - 1) / n * nbytes / self.bus_bytes_per_s


class DeviceKernels:
    """Kernel-time predictor for one device (same questions as profiles.fit.FittedProfile).

    kind: "fit" (fitted on this device's measured tables) or "transfer" (carried over from
    measured devices); predictions report it as their source."""

    def __init__(self, spec: DeviceSpec, classes: dict[str, KernelClass], collectives: dict[int, CollectiveFit],
                 provenance: dict):
        missing = {"gemm", "memory"} - set(classes)
        if missing:
            raise ValueError(f"device calibration of {spec.name} lacks kernel class(es) {sorted(missing)}")
        self.spec, self.classes, self.collectives, self.provenance = spec, classes, collectives, provenance
        self.kind = provenance.get("kind", "fit")
        self.batched_calls = True  # one kernel call covers a batch of like sequences (varlen attention)
        self.device = spec.name
        self.dtype = None  # efficiencies hold for every dtype the device has a peak for
        self.ops = {op for op, cls in CLASS_OF.items() if self._class(cls) is not None}

    def _class(self, name: str) -> KernelClass | None:
        if name in self.classes:
            return self.classes[name]
        return self.classes["memory"] if name in ELEMENTWISE_OPS else None

    def peak_flops(self, dtype: str) -> float:
        peaks = self.spec.peak_tflops
        key = dtype if dtype in peaks else PEAK_DTYPE.get(dtype, dtype)
        if key not in peaks:
            key = "bf16" if "bf16" in peaks else next(iter(peaks))
        return peaks[key] * 1e12

    def predict(self, op: str, shape: dict[str, int], dtype: str) -> tuple[float, str] | None:
        """(seconds, source) of one call, or None for an op this calibration has no class for."""
        cls = self._class(CLASS_OF.get(op, ""))
        if cls is None:
            return None
        if cls.extra_tokens:
            shape = dict(shape, context_tokens=shape.get("context_tokens", 0) + round(cls.extra_tokens))
        flops, nbytes = kernel_work(op, shape, dtype)
        return cls.time_s(flops, nbytes, self.peak_flops(dtype), self.spec.memory_bandwidth_bytes_per_s,
                          dtype), self.kind

    def predict_clamped(self, op: str, shape: dict[str, int], dtype: str) -> tuple[float, str] | None:
        return self.predict(op, shape, dtype)

    def attention_predictor(self, op: str, dtype: str, *, num_heads: int, num_kv_heads: int, head_dim: int):
        """predict() of one attention op at fixed heads, as seconds(batch_size, chunk_tokens,
        context_tokens) -> float: the same arithmetic without building a shape (the simulator asks
        it once per new (batch, chunk, context) of a run). None when no class prices `op`."""
        cls = self._class(CLASS_OF.get(op, ""))
        if cls is None:
            return None
        beta, peak, bw = beta_of(dtype), self.peak_flops(dtype), self.spec.memory_bandwidth_bytes_per_s
        extra = round(cls.extra_tokens) if cls.extra_tokens else 0
        time_s = cls.time_s

        def seconds(batch_size: int, chunk_tokens: int, context_tokens: int) -> float:
            flops, nbytes = attention_work(op, batch_size, chunk_tokens, context_tokens + extra, num_heads,
                                           num_kv_heads, head_dim, beta)
            return time_s(flops, nbytes, peak, bw, dtype)

        return seconds

    def all_reduce_s(self, nbytes: float, num_gpus: int, latency_s: float | None = None) -> tuple[float, str] | None:
        """Seconds of one all-reduce; the nearest measured GPU count's latency and bus bandwidth
        when this count was not measured (source "transfer" then). `latency_s` replaces the fitted
        latency (an engine's custom all-reduce for small messages)."""
        if num_gpus <= 1:
            return 0.0, self.kind
        if not self.collectives:
            return None
        fit, source = self.collectives.get(num_gpus), self.kind
        if fit is None:
            near = min(self.collectives, key=lambda n: (abs(math.log(n / num_gpus)), n))
            fit, source = replace(self.collectives[near], num_gpus=num_gpus), "transfer"
        if latency_s is not None:
            fit = replace(fit, latency_s=latency_s)
        return fit.time_s(nbytes), source

    def scaled(self, *, compute: float = 1.0, memory: float = 1.0, provenance: dict | None = None) -> "DeviceKernels":
        """Every class's compute efficiencies x `compute` and memory efficiency x `memory` (a
        calibration to a user's own measurements, `servesim calibrate`); collectives unchanged."""
        def one(c: KernelClass) -> KernelClass:
            return replace(c, eta_compute=min(c.eta_compute * compute, 2.0), eta_memory=min(c.eta_memory * memory, 2.0),
                           eta_compute_by_dtype={k: min(v * compute, 2.0) for k, v in c.eta_compute_by_dtype.items()})

        return DeviceKernels(self.spec, {k: one(c) for k, c in self.classes.items()}, self.collectives,
                             provenance if provenance is not None else self.provenance)

    def host_link_bytes_per_s(self) -> float:
        """Effective host-to-device bandwidth: the nominal link x the published copy efficiency."""
        return self.spec.host_link_bytes_per_s * self.provenance.get("host_link", {}).get("efficiency", 1.0)

    def with_decode_attention_speedup(self, speedup: float) -> "DeviceKernels":
        """The same device with decode attention `speedup` times faster per byte (an engine's own
        decode kernels, e.g. TensorRT-LLM's, measured against the FlashAttention-class ones)."""
        cls = self.classes.get("attn_decode")
        if cls is None or speedup == 1.0:
            return self
        faster = replace(cls, eta_memory=cls.eta_memory * speedup, source=cls.source + f"; x{speedup:g} (engine kernels)")
        return DeviceKernels(self.spec, {**self.classes, "attn_decode": faster}, self.collectives, self.provenance)

    def describe(self) -> dict:
        d = {"device": self.device, "kind": self.kind, "source": self.provenance.get("source", ""),
             "known_error": self.provenance.get("known_error", "")}
        if self.provenance.get("calibrated_by"):
            d["calibrated_by"] = self.provenance["calibrated_by"]
        return d

    # ---- JSON ------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"format": DEVICE_FORMAT, "device": self.device, "provenance": self.provenance,
                "classes": {k: asdict(v) for k, v in sorted(self.classes.items())},
                "collectives": {str(n): asdict(c) for n, c in sorted(self.collectives.items())}}

    @classmethod
    def from_json(cls, raw: dict, spec: DeviceSpec, *, origin: str = "device calibration") -> "DeviceKernels":
        if not isinstance(raw, dict) or raw.get("format") != DEVICE_FORMAT:
            got = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise ProfileError(f"{origin}: not a servesim device calibration (format {got!r}, "
                               f"expected {DEVICE_FORMAT!r})")
        try:
            classes = {k: KernelClass(**v) for k, v in raw["classes"].items()}
            colls = {int(n): CollectiveFit(**v) for n, v in raw.get("collectives", {}).items()}
            return cls(spec, classes, colls, dict(raw.get("provenance", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"{origin}: {exc}") from None


def save_device(kernels: DeviceKernels, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(kernels.to_json(), indent=1, sort_keys=True) + "\n")


def load_device_kernels(path: str | Path, spec: DeviceSpec) -> DeviceKernels:
    return DeviceKernels.from_json(read_json(path), spec, origin=str(path))
