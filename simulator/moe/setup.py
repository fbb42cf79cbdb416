"""Composition of MoE expert offloading for one run: host CPU, routing, GPU expert slots, the
weights that go to host memory, and one MoECostModel per replica (own cache state and routing
stream; replicas may share a host link).

Owns the slot-budget rule: with offloading (static/lru) and no --gpu-expert-slots, the GPU keeps
the non-expert weights, the activation reserve and KV room for moe_kv_reserve_tokens tokens
(default: one full step, max_num_batched_tokens), and fills the rest with expert slots; every other expert lives in
host memory (checked against the host's DRAM). Formulas live in cost.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardware import DeviceSpec, HostSpec, load_host
from profiles.host_cpu import load_host_cpu
from simulator.cost import device_kernels, resolve_engine
from simulator.engine import GB, activation_reserve_bytes
from simulator.errors import ServesimError
from simulator.models import ModelSpec
from simulator.moe.cost import ExpertExec, MoECostModel, MoELayers, SharedHostLink
from simulator.moe.placement import AllOnGpu, LruPlacement, StaticPlacement
from simulator.moe.routing import RoutingModel, load_routing


@dataclass(frozen=True, slots=True)
class MoEPlan:
    host: HostSpec
    routing: RoutingModel
    placement: str
    gpu_expert_slots: int  # (layer, expert) weight slots on each GPU
    expert_bytes: int  # one expert's weights on one rank
    host_weight_bytes: int  # expert weights kept in host memory, per rank


def moe_requested(s) -> bool:
    return s.expert_placement is not None or s.expert_routing != "uniform"


def plan_moe(s, model: ModelSpec, device: DeviceSpec, max_num_batched_tokens: int) -> MoEPlan:
    if not model.is_moe:
        raise ServesimError(f"expert_placement/expert_routing need an MoE model; {model.name} has no experts")
    try:
        host = load_host(s.host)
    except ValueError as exc:
        raise ServesimError(str(exc)) from None
    layers, experts = model.num_moe_layers, model.num_experts
    routing = load_routing(s.expert_routing, num_layers=layers, num_experts=experts, top_k=model.num_experts_per_tok)
    placement = s.expert_placement or "all_gpu"
    expert_bytes = int(model.expert_params * model.param_bytes("experts", s.dtype) / s.tp)
    if placement == "all_gpu":
        slots = layers * experts
    elif s.gpu_expert_slots is not None:
        slots = layers * min(s.gpu_expert_slots, experts)
    else:
        slots = _auto_slots(s, model, device, max_num_batched_tokens, expert_bytes)
        if placement == "lru":
            slots -= slots % layers
    host_bytes = (layers * experts - slots) * expert_bytes
    if host_bytes * s.tp > host.memory_bytes:
        raise ServesimError(f"offloaded experts need {host_bytes * s.tp / GB:.1f} GB of host memory but host "
                            f"{host.name} has {host.memory_bytes / GB:.1f} GB; pick a bigger --host or more --gpu-expert-slots")
    return MoEPlan(host, routing, placement, slots, expert_bytes, host_bytes)


def _auto_slots(s, model: ModelSpec, device: DeviceSpec, max_num_batched_tokens: int, expert_bytes: int) -> int:
    all_slots = model.num_moe_layers * model.num_experts
    usable = int(device.memory_bytes * s.gpu_memory_utilization)
    non_expert = int(model.weight_bytes(s.dtype) / s.tp) - all_slots * expert_bytes
    reserve = activation_reserve_bytes(model, s.dtype, s.tp, max_num_batched_tokens, s.max_num_seqs)
    kv_per_token = model.kv_bytes_per_token(s.dtype, s.tp)
    kv_tokens = s.moe_kv_reserve_tokens or max_num_batched_tokens
    kv = kv_per_token * s.block_size * -(-kv_tokens // s.block_size)
    free = usable - non_expert - reserve - kv
    if free < 0:
        raise ServesimError(f"{model.name} on {device.name}: even with every expert in host memory the GPU needs "
                            f"{(non_expert + reserve + kv) / GB:.2f} GB (non-expert weights {non_expert / GB:.2f} GB, "
                            f"activations {reserve / GB:.2f} GB, KV for one step {kv / GB:.2f} GB) but offers "
                            f"{usable / GB:.2f} GB; lower --max-num-batched-tokens or use a larger --tp")
    return int(min(all_slots, free // expert_bytes))


def build_moe_cost_models(s, model: ModelSpec, device: DeviceSpec, plan: MoEPlan, inner, clock) -> list[MoECostModel]:
    """One MoECostModel per replica; `inner` prices everything but the routed experts."""
    rngs = np.random.default_rng([s.seed, 6]).spawn(s.replicas)
    links = [SharedHostLink() for _ in range(-(-s.replicas // s.host_link_sharing))]
    # an LRU cache only fills with fetched experts, so lru defaults to fetch; otherwise the cost-based choice
    policy = s.expert_exec or ("fetch" if plan.placement == "lru" else "auto")
    exec_policy = ExpertExec(policy=policy, cpu_token_threshold=s.expert_cpu_threshold,
                             prefetch_hit_rate=s.expert_prefetch_hit_rate)
    rates = expert_rates(s, device, plan.host)
    out = []
    for i in range(s.replicas):
        moe = MoELayers(model, device, plan.host, routing=plan.routing, placement=_placement(plan, model),
                        exec_policy=exec_policy, rng=rngs[i], dtype=s.dtype, tp=s.tp, eta_compute=s.eta_compute,
                        eta_memory=s.eta_memory, link=links[i // s.host_link_sharing] if s.host_link_sharing > 1 else None,
                        clock=clock, rates=rates)
        out.append(MoECostModel(inner, moe, model.num_moe_layers))
    return out


def expert_rates(s, device: DeviceSpec, host) -> dict | None:
    """Calibrated rates of expert work (None for the ideal model: peaks x the scenario's eta):
    GPU experts at the device calibration's GEMM efficiencies, fetches at the published effective
    host-link bandwidth, CPU experts at this machine's measured expert rates carried over to the
    host by core count (profiles/host_cpu.py)."""
    engine = resolve_engine(s, device)
    cal = None if engine.device_model == "ideal" or (s.profile or "").lower() == "none" else device_kernels(device)
    if cal is None:
        return None
    gemm = cal.classes["gemm"]
    out = {"f_gpu": device.peak_flops(s.dtype) * gemm.eta_c(s.dtype),
           "bw_gpu": device.memory_bandwidth_bytes_per_s * gemm.eta_memory,
           "bw_link": cal.host_link_bytes_per_s(),
           "sources": {"gpu": f"device calibration {device.name} ({cal.kind}) GEMM efficiencies",
                       "host_link": cal.provenance.get("host_link", {}).get("source", "nominal host link")}}
    cpu = load_host_cpu()
    if cpu is not None:
        out["f_cpu"], out["bw_cpu"] = cpu.rates(cores=host.cores, dram_bytes_per_s=host.memory_bandwidth_bytes_per_s,
                                                peak_flops=host.peak_flops(s.dtype), dtype=s.dtype)
        out["sources"]["cpu"] = cpu.describe()
    return out


def _placement(plan: MoEPlan, model: ModelSpec):
    layers, experts = model.num_moe_layers, model.num_experts
    if plan.placement == "all_gpu":
        return AllOnGpu(layers, experts)
    if plan.placement == "static":
        return StaticPlacement(plan.routing.inclusion, plan.gpu_expert_slots)
    return LruPlacement(layers, experts, plan.gpu_expert_slots // layers)
