"""The roofline cost model: step shapes -> seconds on a device's peaks.

Owns RooflineParams and RooflineCostModel: per-op
FLOPs and bytes (from simulator/cost/ops.py) -> time = max(FLOPs/(eta_c*F), bytes/(eta_m*BW)) per op,
summed, plus tensor-parallel all-reduce over the interconnect and a fixed per-step overhead
(formulas.md, "Roofline step time"). Measured-profile models plug in through the same protocol.
"""
from __future__ import annotations

from dataclasses import dataclass

from hardware import DeviceSpec
from simulator.cost.ops import (
    OpCost,
    attention_coefficients,
    decode_attention,
    eviction_ops,
    logits_op,
    prefill_attention,
    token_ops,
)
from simulator.cost.shape import BatchShape
from simulator.cost.step import (
    BOUND_COMPUTE,
    BOUND_MEMORY,
    BOUND_OVERHEAD,
    EvictionTimes,
    StepCost,
)
from simulator.models import ModelSpec, dtype_bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RooflineParams:
    """Efficiency factors and overheads. Defaults are the ideal roofline (uncalibrated)."""

    eta_compute: float = 1.0
    eta_memory: float = 1.0
    step_overhead_s: float = 0.0
    collective_latency_s: float = 10e-6  # per all-reduce launch; NCCL small-message latency order

    def __post_init__(self) -> None:
        for name in ("eta_compute", "eta_memory"):
            v = getattr(self, name)
            if not 0 < v <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {v!r}")
        for name in ("step_overhead_s", "collective_latency_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")


class RooflineCostModel:
    """Per-op roofline on one device, tensor parallel degree `tp`."""

    source = "roofline"

    def __init__(self, model: ModelSpec, device: DeviceSpec, *, dtype: str = "bf16", tp: int = 1,
                 params: RooflineParams = RooflineParams(), token_op_builder=token_ops,
                 eviction_times: EvictionTimes | None = None, kv_dtype: str | None = None):
        """kv_dtype: the KV cache's element type when narrower than `dtype` (vLLM --kv-cache-dtype)."""
        self.model, self.device, self.dtype, self.tp, self.params = model, device, dtype, tp, params
        self.kv_dtype = kv_dtype or dtype
        self._token_ops = token_op_builder  # ops.token_ops, or a filtered variant (MoE offloading)
        self.eviction_times = eviction_times
        self.flops_per_s = device.peak_flops(dtype) * params.eta_compute
        self.bytes_per_s = device.memory_bandwidth_bytes_per_s * params.eta_memory
        self.beta = dtype_bytes(dtype)
        self._token_cache: dict[int, tuple[float, float, float, float, float]] = {}
        self._logit_cache: dict[int, tuple[float, float, float, float, float]] = {}
        self.kv_beta = dtype_bytes(self.kv_dtype)
        self._attn = attention_coefficients(model, self.beta, tp, self.kv_beta)

    def describe(self) -> dict:
        return {
            "kind": "roofline",
            "source": self.source,
            "device": self.device.name,
            "dtype": self.dtype,
            "tp": self.tp,
            "eta_compute": self.params.eta_compute,
            "eta_memory": self.params.eta_memory,
            "step_overhead_s": self.params.step_overhead_s,
            "known_error": "ideal roofline, uncalibrated: real engines are typically 1.4-1.9x slower",
            "eviction_overhead": "roofline estimate (ops.eviction_ops)" if self.eviction_times is None
            else "profiled eviction kernels, roofline where not covered",
        }

    def _sum_ops(self, ops: list[OpCost]) -> tuple[float, float, float, float, float]:
        """(compute_s, memory_s, comm_s, flops, bytes) with each op bound by its larger time."""
        compute_s = memory_s = comm_s = flops = nbytes = 0.0
        for op in ops:
            if op.comm_bytes:
                comm_s += self._all_reduce_s(op.comm_bytes) * op.count
                continue
            t_c = op.flops / self.flops_per_s
            t_m = op.bytes / self.bytes_per_s
            if t_c >= t_m:
                compute_s += t_c
            else:
                memory_s += t_m
            flops += op.flops
            nbytes += op.bytes
        return compute_s, memory_s, comm_s, flops, nbytes

    def _all_reduce_s(self, nbytes: float) -> float:
        """Ring all-reduce: 2(tp-1)/tp of the message over the one-way link, plus latency."""
        if self.tp == 1:
            return 0.0
        ring = 2 * (self.tp - 1) / self.tp * nbytes / self.device.link_bytes_per_s
        return ring + self.params.collective_latency_s

    def _cached(self, cache: dict, key: int, build) -> tuple[float, float, float, float, float]:
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = self._sum_ops(build(self.model, key, self.beta, self.tp))
        return hit

    def _attention(self, shape: BatchShape) -> tuple[float, float, float, float]:
        """(compute_s, memory_s, flops, bytes) of the step's prefill and decode attention."""
        compute_s = memory_s = flops = nbytes = 0.0
        parts = []
        if shape.prefill_chunks:
            parts.append(prefill_attention(shape.prefill_chunks, self._attn))
        if shape.num_decode:
            parts.append(decode_attention(shape.num_decode, shape.decode_context_sum, self._attn,
                                          shape.decode_kv_read_sum))
        for f, b in parts:
            t_c, t_m = f / self.flops_per_s, b / self.bytes_per_s
            if t_c >= t_m:
                compute_s += t_c
            else:
                memory_s += t_m
            flops += f
            nbytes += b
        return compute_s, memory_s, flops, nbytes

    def step_cost(self, shape: BatchShape) -> StepCost:
        tokens = shape.num_tokens
        c1, m1, x1, f1, b1 = self._cached(self._token_cache, tokens, self._token_ops) if tokens else _ZERO
        c2, m2, x2, f2, b2 = (
            self._cached(self._logit_cache, shape.num_logits, logits_op) if shape.num_logits else _ZERO
        )
        c3, m3, f3, b3 = self._attention(shape)
        e4, f4, b4 = self._eviction(shape.kv_work) if shape.kv_work is not None else (0.0, 0.0, 0.0)
        compute_s, memory_s = c1 + c2 + c3, m1 + m2 + m3
        comm_s = x1 + x2
        overhead_s = self.params.step_overhead_s
        other_s = comm_s + overhead_s + e4
        if compute_s >= memory_s:
            bound = BOUND_COMPUTE if compute_s >= other_s else BOUND_OVERHEAD
        else:
            bound = BOUND_MEMORY if memory_s >= other_s else BOUND_OVERHEAD
        return StepCost(compute_s + memory_s + other_s, compute_s, memory_s, comm_s, overhead_s,
                        f1 + f2 + f3 + f4, b1 + b2 + b3 + b4, bound, self.source, e4)

    def _eviction(self, work) -> tuple[float, float, float]:
        """(seconds, flops, bytes) of the KV policy's bookkeeping ops: a measured table through
        the eviction_times hook where it has the op, else each op's roofline max(FLOP, byte) time."""
        seconds = flops = nbytes = 0.0
        table = self.eviction_times
        for op in eviction_ops(self.model, work, self.beta, self.tp):
            measured = table.op_time_s(op) if table is not None else None
            seconds += measured if measured is not None else max(op.flops / self.flops_per_s,
                                                                  op.bytes / self.bytes_per_s)
            flops += op.flops
            nbytes += op.bytes
        return seconds, flops, nbytes


_ZERO = (0.0, 0.0, 0.0, 0.0, 0.0)
