"""MoE expert offloading (issue 6): Mixtral-8x7B bf16 on one 24 GB L4 with a 32-core server CPU.

Part 1 (latency regime): closed-loop users = batch size b (1..64), prompt 128 / output 128 tokens,
each policy simulated end to end. Decode tok/s = decode tokens / time of decode-only steps;
output tok/s = vLLM's output_throughput (prefill included). Expert slots are sized automatically
(GPU keeps non-expert weights + activations + KV for b*256 tokens; the rest of the experts fill the GPU).
  fetch   : static popularity placement, every miss fetched over PCIe (no cache)
  lru     : LRU cache per layer (slots = auto // layers), misses fetched and cached
  fiddler : static placement, miss on the CPU when the expert has < 10 tokens, else fetched
  auto    : static placement, per expert per step the cheaper of CPU and fetch
Part 2 (throughput regime, MoE-Lens style): decode batch B, no expert resident (every touched
expert streamed over PCIe each step), KV in host memory with attention on the CPU (reads the KV
from DRAM); each resource's busy time per step and the one that bounds it (resources overlap).

    python benchmarks/moe_offload.py [--host xeon-8462y] [--routing uniform]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages, not an installed copy

from hardware import load_device, load_host
from simulator.cost.ops import (
    attention_coefficients,
    decode_attention,
    token_ops_without_experts,
)
from simulator.cost.roofline import RooflineCostModel
from simulator.cost.shape import BatchShape
from simulator.models import load_model
from simulator.moe.cost import ExpertExec, MoELayers
from simulator.moe.placement import StaticPlacement
from simulator.moe.routing import load_routing
from simulator.results.summary import build_summary
from simulator.run import simulate
from simulator.scenario import Scenario

POLICIES = {"fetch": ("static", "fetch"), "lru": ("lru", "fetch"), "fiddler": ("static", "fiddler"),
            "auto": ("static", "auto")}
BATCHES = (1, 2, 4, 8, 16, 32, 64)


def run_policy(placement: str, exec_policy: str, batch: int, host: str, routing: str) -> dict:
    s = Scenario(model="mixtral-8x7b", hardware="l4", host=host, expert_routing=routing, expert_placement=placement,
                 expert_exec=exec_policy, closed_loop_users=batch, num_requests=2 * batch, prompt_tokens="128",
                 output_tokens="128", max_num_seqs=batch, max_num_batched_tokens=2048, moe_kv_reserve_tokens=256 * batch,
                 seed=0)
    r = simulate(s)
    m = build_summary(r)["metrics"]
    st = r.recorder.step_arrays()
    dec = st["num_prefill_tokens"] == 0
    return {"decode_tps": st["num_decode"][dec].sum() / st["duration_s"][dec].sum(), "out_tps": m["output_throughput"],
            "hit": m["moe_expert_hit_rate"], "cpu_frac": m["moe_experts_on_cpu"] / max(m["moe_experts_touched"], 1),
            "link_gb": m["moe_host_link_bytes"] / 1e9, "cpu_s": m["moe_cpu_expert_time_s"],
            "gpu_s": m["moe_gpu_expert_time_s"], "slots": r.cost_model["moe"]["gpu_expert_slots"]}


def latency_table(host: str, routing: str) -> None:
    print(f"Mixtral-8x7B bf16, L4 24 GB (PCIe4 x16 32 GB/s), host {host}, routing {routing}; ideal roofline (eta=1)")
    print(f"{'policy':>8} {'batch':>5} {'slots':>5} {'decode tok/s':>12} {'output tok/s':>12} {'hit rate':>8} "
          f"{'on CPU':>6} {'PCIe GB':>8} {'CPU exp s':>9} {'GPU exp s':>9}")
    for name, (placement, exec_policy) in POLICIES.items():
        for b in BATCHES:
            r = run_policy(placement, exec_policy, b, host, routing)
            print(f"{name:>8} {b:>5} {r['slots']:>5} {r['decode_tps']:>12.2f} {r['out_tps']:>12.2f} {r['hit']:>8.3f} "
                  f"{r['cpu_frac']:>6.2f} {r['link_gb']:>8.1f} {r['cpu_s']:>9.2f} {r['gpu_s']:>9.2f}")


def throughput_table(host_name: str, ctx: int = 1024) -> None:
    model, dev, host = load_model("mixtral-8x7b"), load_device("l4"), load_host(host_name)
    inner = RooflineCostModel(model, dev, token_op_builder=token_ops_without_experts)
    routing = load_routing("uniform", num_layers=32, num_experts=8, top_k=2)
    coeffs = attention_coefficients(model, 2.0, 1)
    expert_bytes = 32 * 8 * model.expert_params * 2
    print(f"\nThroughput regime: decode batch B, context {ctx}, all experts streamed over PCIe, KV in host DRAM "
          f"({host.memory_gib:g} GiB, {host.memory_bandwidth_gb_per_s:g} GB/s) with CPU attention")
    print(f"{'B':>6} {'PCIe s':>8} {'GPU s':>8} {'CPU attn s':>10} {'host KV GB':>10} {'step s':>8} {'tok/s':>8} bound")
    for b in (64, 256, 1024, 4096, 8192, 16384, 32768):
        moe = MoELayers(model, dev, host, routing=routing, placement=StaticPlacement(routing.inclusion, 0),
                        exec_policy=ExpertExec(policy="fetch"), rng=np.random.default_rng(0))
        moe.step(b, 0.0)
        shape = BatchShape(prefill_chunks=(), num_decode=b, decode_context_sum=b, num_logits=b)
        gpu = inner.step_cost(shape).time_s + moe.stats["gpu_s"]
        flops, kv_bytes = decode_attention(b, b * ctx, coeffs)
        attn = max(flops / host.peak_flops("bf16"), kv_bytes / host.memory_bandwidth_bytes_per_s)
        kv_gb = b * ctx * model.kv_bytes_per_token("bf16") / 1e9
        parts = {"PCIe (expert weights)": moe.stats["link_s"], "GPU compute/HBM": gpu, "CPU attention (DRAM)": attn}
        bound = max(parts, key=parts.get)
        step = max(parts.values())
        tok_s = f"{b / step:>8.0f}"
        if (kv_gb * 1e9 + expert_bytes) > host.memory_bytes:  # infeasible: no throughput to report
            bound = f"does not fit: host DRAM ({(kv_gb * 1e9 + expert_bytes) / 1e9:.0f} GB > {host.memory_bytes / 1e9:.0f} GB)"
            tok_s = f"{'-':>8}"
        print(f"{b:>6} {parts['PCIe (expert weights)']:>8.3f} {gpu:>8.3f} {attn:>10.3f} {kv_gb:>10.1f} {step:>8.3f} "
              f"{tok_s} {bound}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="xeon-8462y")
    p.add_argument("--routing", default="uniform")
    a = p.parse_args()
    t0 = time.perf_counter()
    latency_table(a.host, a.routing)
    throughput_table(a.host)
    print(f"\n(benchmark wall time {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
