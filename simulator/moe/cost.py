"""MoE expert time per step: resident experts on the GPU, non-resident ones fetched over the host
link or run on the host CPU, with CPU, GPU and link work overlapping.

Owns the per-expert time formulas (formulas.md, "MoE and expert offloading"), the execution
policies for a non-resident expert, the per-layer overlap rule, the host-link ledger shared by
replicas, and MoECostModel: a CostModel that asks an inner roofline model for everything except
the routed experts and adds this component's time. Routing draws come from routing.py,
residency from placement.py. Dense models never come here.

Per touched expert e of a layer with n_e tokens (P_e params per rank, beta bytes per element):
  GPU:   t_gpu = max(2*n_e*P_e/F_gpu, beta*(P_e + n_e*a)/BW_hbm)   (a: activation elements/token)
  fetch: beta*P_e/BW_link on the link, then t_gpu
  CPU:   2*n_e*h*beta/BW_link (activations there and back) + max(2*n_e*P_e/F_cpu, beta*P_e/BW_dram)
Policies for a miss: fetch | cpu | fiddler (CPU when n_e < threshold; Fiddler's code uses 10) |
auto (the cheaper of the two, per expert per step).
Layer time (CPU, GPU and link run concurrently; link transfers are serialised):
  max(GPU work, link work + t_gpu of one fetched expert, activation link time + CPU work)
Prefetch of the next layer's predicted experts (hit rate h) hides min(h * fetch time, time of
the rest of the layer) of the link work (formulas.md: "hides min(fetch, layer time)").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from hardware import DeviceSpec, HostSpec
from simulator.cost import BOUND_COMPUTE, BOUND_MEMORY, BatchShape, StepCost
from simulator.models import ModelSpec, dtype_bytes
from simulator.moe.placement import ExpertPlacement
from simulator.moe.routing import RoutingModel

EXEC_POLICIES = ("fetch", "cpu", "fiddler", "auto")
STAT_KEYS = ("touched", "hits", "fetched", "on_cpu", "link_bytes", "gpu_s", "cpu_s", "link_s", "link_wait_s",
             "moe_s", "steps")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpertExec:
    policy: str = "auto"
    cpu_token_threshold: int = 10  # fiddler: CPU when an expert has fewer tokens than this
    prefetch_hit_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.policy not in EXEC_POLICIES:
            raise ValueError(f"policy={self.policy!r} is invalid; allowed: {', '.join(EXEC_POLICIES)}")
        if self.cpu_token_threshold < 0:
            raise ValueError(f"cpu_token_threshold must be >= 0, got {self.cpu_token_threshold}")
        if not 0 <= self.prefetch_hit_rate <= 1:
            raise ValueError(f"prefetch_hit_rate must be in [0, 1], got {self.prefetch_hit_rate}")


class SharedHostLink:
    """One host link (PCIe) shared by the replicas plugged into it, as a FIFO single server: a
    step's transfers occupy it for their total time, starting when both the step and the link
    are free. Same queueing as a simpy Resource(capacity=1) held for the transfer, without an
    extra simpy event per step; a lone replica never waits (its steps outlast its transfers)."""

    def __init__(self) -> None:
        self.free_at_s = 0.0

    def reserve(self, now_s: float, busy_s: float) -> float:
        """Book `busy_s` of link time from `now_s`; returns the wait before it could start."""
        start = max(now_s, self.free_at_s)
        self.free_at_s = start + busy_s
        return start - now_s


class MoELayers:
    """Routed-expert time of all MoE layers for one step, and run totals (one per replica)."""

    def __init__(self, model: ModelSpec, device: DeviceSpec, host: HostSpec, *, routing: RoutingModel,
                 placement: ExpertPlacement, exec_policy: ExpertExec, rng: np.random.Generator, dtype: str = "bf16",
                 tp: int = 1, eta_compute: float = 1.0, eta_memory: float = 1.0,
                 link: SharedHostLink | None = None, clock: Callable[[], float] | None = None,
                 rates: dict | None = None):
        """`rates` replaces the peak-based rates (keys f_gpu, bw_gpu, bw_link, f_cpu, bw_cpu; FLOP/s and
        bytes/s) with calibrated ones (moe/setup.py expert_rates), `rates["sources"]` saying whence."""
        self.routing, self.placement, self.exec, self.rng = routing, placement, exec_policy, rng
        self.link, self.clock = link, clock
        beta = dtype_bytes(dtype)
        h, width = model.hidden_size, model.moe_intermediate_size // tp
        up_out = 2 * width if model.gated_mlp else width
        self.params_e = (h * up_out + width * h)  # per expert per rank (formulas.md P_e)
        self.act_e = 2 * h + up_out + width  # activation elements read+written per token
        self.beta, self.hidden = beta, h
        self.wbeta = model.param_bytes_at("experts", beta)  # expert weights' bytes per parameter (quantized or not)
        self.f_gpu = device.peak_flops(dtype) * eta_compute
        self.bw_gpu = device.memory_bandwidth_bytes_per_s * eta_memory
        self.bw_link = device.host_link_bytes_per_s
        self.f_cpu = host.peak_flops(dtype)
        self.bw_cpu = host.memory_bandwidth_bytes_per_s
        self.rate_sources = {}
        if rates:
            for key in ("f_gpu", "bw_gpu", "bw_link", "f_cpu", "bw_cpu"):
                setattr(self, key, rates.get(key, getattr(self, key)))
            self.rate_sources = dict(rates.get("sources", {}))
        self.fetch_s = self.wbeta * self.params_e / self.bw_link
        self.stats = dict.fromkeys(STAT_KEYS, 0.0)

    def gpu_time(self, n: np.ndarray) -> np.ndarray:
        return np.maximum(2.0 * n * self.params_e / self.f_gpu,
                          (self.wbeta * self.params_e + self.beta * n * self.act_e) / self.bw_gpu)

    def cpu_time(self, n: np.ndarray) -> np.ndarray:
        """CPU GEMM time (without shipping activations)."""
        return np.maximum(2.0 * n * self.params_e / self.f_cpu, self.wbeta * self.params_e / self.bw_cpu)

    def ship_time(self, n: np.ndarray) -> np.ndarray:
        return 2.0 * n * self.hidden * self.beta / self.bw_link

    def choose_cpu(self, n: np.ndarray, miss: np.ndarray) -> np.ndarray:
        """Mask of missed experts run on the CPU under the execution policy."""
        policy = self.exec.policy
        if policy == "fetch":
            return np.zeros_like(miss)
        if policy == "cpu":
            return miss.copy()
        if policy == "fiddler":
            return miss & (n < self.exec.cpu_token_threshold)
        cpu_cost = self.ship_time(n) + self.cpu_time(n)
        return miss & (cpu_cost < self.fetch_s + self.gpu_time(n))

    def step(self, tokens: int, other_layer_s: float) -> tuple[float, float, float, float]:
        """(seconds, exposed offload seconds, GPU FLOPs, GPU bytes) of the routed experts of one
        step of `tokens` tokens; `other_layer_s` is one layer's non-expert time (hides prefetch)."""
        counts = self.routing.draw(self.rng, tokens)
        n = counts.astype(np.float64)
        touched = counts > 0
        miss = touched & ~self.placement.resident()
        on_cpu = self.choose_cpu(n, miss)
        fetched = miss & ~on_cpu
        on_gpu = touched & ~on_cpu
        t_gpu = np.where(on_gpu, self.gpu_time(n), 0.0)
        gpu_l = t_gpu.sum(axis=1)
        n_fetch_l = fetched.sum(axis=1)
        ship_l = np.where(on_cpu, self.ship_time(n), 0.0).sum(axis=1)
        cpu_l = np.where(on_cpu, self.cpu_time(n), 0.0).sum(axis=1)
        fetch_l = n_fetch_l * self.fetch_s
        hidden_l = np.minimum(self.exec.prefetch_hit_rate * fetch_l, other_layer_s)
        link_l = fetch_l - hidden_l + ship_l
        last_fetch_gpu_l = np.where(fetched, t_gpu, np.inf).min(axis=1, initial=np.inf)
        fetch_chain_l = np.where(n_fetch_l > 0, link_l + np.where(np.isinf(last_fetch_gpu_l), 0.0, last_fetch_gpu_l), link_l)
        layer_l = np.maximum(np.maximum(gpu_l, fetch_chain_l), ship_l + cpu_l)
        total = float(layer_l.sum())
        link_s = float(link_l.sum())
        wait = self.link.reserve(self.clock(), link_s) if self.link is not None and self.clock is not None else 0.0
        self.placement.update(counts, fetched)
        gpu_n = np.where(on_gpu, n, 0.0)
        flops = 2.0 * float(gpu_n.sum()) * self.params_e
        nbytes = self.wbeta * float(on_gpu.sum()) * self.params_e + self.beta * float(gpu_n.sum()) * self.act_e
        link_bytes = (self.wbeta * float(n_fetch_l.sum()) * self.params_e
                      + self.beta * 2.0 * self.hidden * float(np.where(on_cpu, n, 0.0).sum()))
        st = self.stats
        st["touched"] += float(touched.sum())
        st["hits"] += float((touched & ~miss).sum())
        st["fetched"] += float(n_fetch_l.sum())
        st["on_cpu"] += float(on_cpu.sum())
        st["link_bytes"] += link_bytes
        st["gpu_s"] += float(gpu_l.sum())
        st["cpu_s"] += float(cpu_l.sum())
        st["link_s"] += link_s
        st["link_wait_s"] += wait
        st["moe_s"] += total + wait
        st["steps"] += 1
        return total + wait, max(0.0, total - float(gpu_l.sum())) + wait, flops, nbytes


class MoECostModel:
    """CostModel for an MoE model with a routed-expert component: inner roofline (built without
    the `moe_experts` op) for attention, dense parts, router, shared experts and lm_head, plus
    MoELayers' per-step expert time. Not cached by token count: routing and cache state vary."""

    def __init__(self, inner, moe: MoELayers, num_layers: int):
        self.inner, self.moe, self.num_layers = inner, moe, num_layers

    def step_cost(self, shape: BatchShape) -> StepCost:
        base = self.inner.step_cost(shape)
        tokens = shape.num_tokens
        if not tokens:
            return base
        other_layer_s = (base.compute_s + base.memory_s + base.comm_s) / self.num_layers
        moe_s, exposed_s, flops, nbytes = self.moe.step(tokens, other_layer_s)
        gpu_s = moe_s - exposed_s
        compute_s, memory_s = base.compute_s, base.memory_s
        if flops / self.moe.f_gpu >= nbytes / self.moe.bw_gpu:
            compute_s += gpu_s
        else:
            memory_s += gpu_s
        memory_s += exposed_s  # host link / host DRAM / CPU stall time counts as memory time
        bound = BOUND_COMPUTE if compute_s >= memory_s else BOUND_MEMORY
        other = base.comm_s + base.overhead_s
        if max(compute_s, memory_s) < other:
            bound = base.bound
        return StepCost(compute_s + memory_s + other, compute_s, memory_s, base.comm_s, base.overhead_s,
                        base.flops + flops, base.bytes + nbytes, bound, base.source)

    def describe(self) -> dict:
        d = dict(self.inner.describe())
        m = self.moe
        d["moe"] = {"routing": m.routing.name, "placement": m.placement.name, "exec": m.exec.policy,
                    "cpu_token_threshold": m.exec.cpu_token_threshold, "prefetch_hit_rate": m.exec.prefetch_hit_rate,
                    "gpu_expert_slots": m.placement.num_gpu_experts, "expert_params_per_rank": m.params_e,
                    "host_link_gb_per_s": m.bw_link / 1e9, "host_tflops": m.f_cpu / 1e12,
                    "host_dram_gb_per_s": m.bw_cpu / 1e9, "rate_sources": m.rate_sources}
        return d


def moe_metrics(stats: list[dict]) -> dict:
    """Run totals over replicas -> summary metrics (expert hit rate, host-link bytes, CPU/GPU time)."""
    tot = {k: sum(s[k] for s in stats) for k in STAT_KEYS}
    return {
        "moe_expert_hit_rate": tot["hits"] / tot["touched"] if tot["touched"] else None,
        "moe_experts_touched": int(tot["touched"]),
        "moe_experts_fetched": int(tot["fetched"]),
        "moe_experts_on_cpu": int(tot["on_cpu"]),
        "moe_host_link_bytes": tot["link_bytes"],
        "moe_gpu_expert_time_s": tot["gpu_s"],
        "moe_cpu_expert_time_s": tot["cpu_s"],
        "moe_host_link_time_s": tot["link_s"],
        "moe_host_link_wait_s": tot["link_wait_s"],
        "moe_expert_time_s": tot["moe_s"],
    }
