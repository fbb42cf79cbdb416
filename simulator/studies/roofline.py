"""Roofline figures of a model on a device: where decode turns memory-bound.

Owns the closed forms of formulas.md "Roofline step time": ridge point F_peak/BW, the
weights-only critical batch (linear layers: intensity 2*P*b/W reaches the ridge at
b* = ridge*W/(2P)), decode attention's intensity (4*H*d*nL FLOPs per D bytes = 2r/beta; r for
bf16) and the context ctx* = 2P/(D*(ridge - 2r/beta)) above which a decode step is memory-bound
at any batch, plus batch-1 decode ~ W/BW. Also asks the roofline cost model for its batch-1
decode step, as a cross-check. Knows nothing of schedulers or runs.
"""
from __future__ import annotations

import math

from hardware import DeviceSpec
from simulator.cost import BatchShape, RooflineCostModel
from simulator.models import ModelSpec


def roofline_figures(model: ModelSpec, device: DeviceSpec, dtype: str = "bf16") -> dict:
    peak, bw = device.peak_flops(dtype), device.memory_bandwidth_bytes_per_s
    ridge = peak / bw
    p, w = model.active_params_per_token, model.weight_bytes(dtype)
    d_kv = model.kv_bytes_per_token(dtype)
    attn_intensity = model.attention_geometry(1)[0] * model.num_layers / d_kv  # GQA: 4 H d nL / D = 2r/beta
    ctx_star = 2.0 * p / (d_kv * (ridge - attn_intensity)) if ridge > attn_intensity else math.inf
    cm = RooflineCostModel(model, device, dtype=dtype)
    step1 = cm.step_cost(BatchShape(num_decode=1, decode_context_sum=1, num_logits=1))
    return {
        "model": model.name, "device": device.name, "dtype": dtype,
        "peak_flops": peak, "memory_bandwidth_bytes_per_s": bw,
        "ridge_flops_per_byte": ridge,
        "active_params_per_token": p, "weight_bytes": w, "kv_bytes_per_token": d_kv,
        "gqa_ratio": model.num_heads // model.attention_kernel_dims(1)["num_kv_heads"],
        "decode_attention_intensity": attn_intensity,
        "critical_batch_weights_only": ridge * w / (2.0 * p),
        "memory_bound_context_any_batch": ctx_star,
        "batch1_decode_s_weights_over_bw": w / bw,
        "batch1_decode_s_cost_model": step1.time_s,
        "kv_tokens_per_gb": 1e9 / d_kv,
    }


def format_figures(f: dict) -> str:
    ctx = f["memory_bound_context_any_batch"]
    lines = [
        f"{f['model']} on {f['device']} ({f['dtype']})",
        f"  ridge point F_peak/BW:                      {f['ridge_flops_per_byte']:.1f} FLOP/byte",
        f"  weights-only critical batch ridge*W/(2P):   {f['critical_batch_weights_only']:.1f} tokens per step",
        f"  decode attention intensity (2r/beta):       {f['decode_attention_intensity']:.2f} FLOP/byte "
        f"(r = H/Hkv = {f['gqa_ratio']})",
        "  context above which decode is memory-bound at any batch, ctx* = 2P/(D*(ridge - 2r/beta)): "
        + (f"{ctx:.0f} tokens" if math.isfinite(ctx) else "none (attention intensity >= ridge)"),
        f"  batch-1 decode step ~ W/BW:                 {f['batch1_decode_s_weights_over_bw'] * 1e3:.2f} ms "
        f"(roofline cost model, ctx 1: {f['batch1_decode_s_cost_model'] * 1e3:.2f} ms)",
        f"  P = {f['active_params_per_token'] / 1e9:.2f}B params/token, W = {f['weight_bytes'] / 1e9:.2f} GB, "
        f"D = {f['kv_bytes_per_token'] / 1024:.0f} KiB KV/token",
    ]
    return "\n".join(lines)
