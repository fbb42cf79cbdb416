"""The run summary: vLLM-style metrics, engine figures, cost sections and provenance, as one dict,
and its deterministic JSON form.

Owns what summary.json holds; does not compute metrics (metrics.py) or write files (files.py).
"""
from __future__ import annotations

import json
import math
from collections import Counter
from importlib import metadata

import numpy as np

from simulator.accounting import kinetics_section, money_sections
from simulator.cost import prediction_provenance
from simulator.engine import FAILED, FINISHED
from simulator.parallel import parallel_sections
from simulator.results.metrics import engine_stats, roofline_stats, summarise_requests
from simulator.results.overload import overload_section
from simulator.results.tts import tts_section
from simulator.run import RunResult


def version() -> str:
    try:
        return metadata.version("servesim")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_summary(result: RunResult) -> dict:
    rec, s = result.recorder, result.scenario
    metrics = summarise_requests(
        arrival_s=rec.arrival_s, first_token_s=rec.first_token_s, finish_s=rec.finish_s,
        prompt_tokens=rec.prompt_tokens, output_tokens=rec.output_tokens, ok=rec.status == FINISHED,
        itl_s=rec.gaps.arrays()[0], itl_count=rec.gaps.arrays()[1], itl_sketch=rec.gaps,
        slo_ttft_ms=s.slo_ttft_ms, slo_tpot_ms=s.slo_tpot_ms, slo_e2el_ms=s.slo_e2el_ms,
    )
    failed = rec.status == FAILED
    metrics.update({
        "submitted": int(len(rec.status)),
        "failed": int(failed.sum()),
        "failure_reasons": dict(Counter(_reason_kind(r) for r in rec.fail_reason.values())),
        "num_preemptions": int(rec.num_preemptions.sum()),
        "num_preempted_requests": int(np.count_nonzero(rec.num_preemptions)),
    })
    steps = rec.totals
    metrics.update(engine_stats(steps))
    metrics.update(roofline_stats(steps, result.device.peak_flops(s.dtype),
                                  result.device.memory_bandwidth_bytes_per_s))
    metrics.update(_peak_memory(result, steps))
    if result.moe:
        metrics.update(result.moe)
    summary = {
        "servesim_version": version(),
        "scenario": s.as_dict(),
        "provenance": {
            "model": {"name": result.model.name, "model_type": result.model.model_type,
                      "total_params": result.model.total_params,
                      "active_params_per_token": result.model.active_params_per_token,
                      "attention": result.model.attention, "window_layers": result.model.num_window_layers,
                      "quantization": result.model.quantization, "notes": list(result.model.notes)},
            "hardware": {"name": result.device.name, "display_name": result.device.display_name,
                         "file": result.device.origin, "price_usd_per_hour": result.device.price_usd_per_hour,
                         "price_as_of": result.device.price_as_of,
                         "peak_flops": result.device.peak_flops(s.dtype),
                         "memory_bandwidth_bytes_per_s": result.device.memory_bandwidth_bytes_per_s,
                         "ridge_flops_per_byte": result.device.ridge_flops_per_byte(s.dtype)},
            "cost_model": result.cost_model,
            "engine": result.engine,
            "memory": result.memory.as_dict(),
            "scheduler_limits": {"max_num_seqs": result.limits.max_num_seqs,
                                 "max_num_batched_tokens": result.limits.max_num_batched_tokens,
                                 "chunk_size": result.limits.chunk_size},
            "max_model_len": result.max_model_len,
            "seed": s.seed,
            "kv_policy": result.kv_policy,
        },
        "metrics": metrics,
        "precision": precision_section(rec),
        "wall_time_s": result.wall_s,
    }
    summary["overload"] = overload_section(result.recorder, metrics, closed_loop=bool(s.closed_loop_users))
    summary["kinetics"] = kinetics_section(result, metrics)
    summary.update(money_sections(result, metrics))
    summary.update(parallel_sections(result, summary))  # pp, dp/EP, P/D: GPUs per run (simulator/parallel)
    summary["provenance"]["prediction"] = prediction_provenance(
        result.cost_model, result.engine, result.device.name, summary["energy"].get("power_model"),
        result.model.architecture_class)
    tts = tts_section(result, summary)
    if tts is not None:
        summary["tts"] = tts
    if result.speculative is not None:  # speculative decoding (simulator/speculative/setup.py)
        summary["speculative"] = dict(result.speculative)
    if getattr(result, "prefix_cache", None) is not None:  # prefix caching hit rates by tier (engine/prefix_cache.py)
        summary["prefix_cache"] = dict(result.prefix_cache)
    return summary


FAILURE_KINDS = ("max_model_len", "KV cache capacity", "max_num_batched_tokens")


def precision_section(rec) -> dict:
    """Which figures are exact and which carry a sketch's error (engine/gap_log.py)."""
    out = {"ttft_ms": "exact", "tpot_ms": "exact", "e2el_ms": "exact", "throughput": "exact",
           "engine_figures": "exact (streamed step totals)"}
    if rec.gaps.exact:
        out["itl_ms"] = "exact"
    else:
        out["itl_ms"] = (f"mean and std exact; median, p90, p99 within {rec.gaps.RELATIVE_ACCURACY:.0%} relative "
                         f"(DDSketch over {rec.gaps.total} gaps)")
    return out


def _peak_memory(result: RunResult, steps) -> dict:
    """Per-GPU peak: weights + activation reserve + the most KV blocks (with policy metadata) in use."""
    if not steps.num_steps:
        return {}
    mem = result.memory
    kv = int(steps.max("kv_blocks_used")) * mem.kv_bytes_per_block
    return {"peak_kv_cache_bytes": kv,
            "peak_memory_bytes": mem.weight_bytes + mem.activation_reserve_bytes + kv}


def _reason_kind(reason: str) -> str:
    """Group failure reasons by the limit they hit ("exceeds max_model_len", ...)."""
    return next((f"exceeds {k}" for k in FAILURE_KINDS if k in reason), reason)


def summary_json(summary: dict) -> str:
    """Deterministic JSON (NaN -> null); wall time is excluded so same seed => same bytes."""
    clean = {k: v for k, v in summary.items() if k != "wall_time_s"}
    return json.dumps(_nan_to_none(clean), indent=2, sort_keys=True)


def _nan_to_none(x):
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None if math.isnan(x) else str(x)
    return x
