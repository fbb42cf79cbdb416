"""Summaries with vLLM `bench serve` names and definitions, for simulated and measured runs.

Owns the metric definitions: completed, duration, request/output/total-token throughput,
request_goodput under SLOs, and mean/median/std/p90/p99 of ttft_ms, tpot_ms (per request,
(e2el - ttft)/(output - 1) for outputs > 1), itl_ms (every inter-token gap) and e2el_ms.
`summarise_requests` works on plain arrays so a measured run is summarised by the same code;
`engine_stats` adds what only a simulation knows (KV usage, batch size, bound fractions).
"""
from __future__ import annotations

import numpy as np

from simulator.engine import GapLog, StepTotals

PERCENTILES = (50, 90, 99)


def weighted_percentiles(values: np.ndarray, counts: np.ndarray, qs=PERCENTILES) -> list[float]:
    """np.percentile(..., method='linear') of `values` each repeated `counts` times, exactly,
    without materialising the repeats."""
    order = np.argsort(values, kind="stable")
    v, c = values[order], np.asarray(counts, dtype=np.int64)[order]
    cum = np.cumsum(c)
    total = int(cum[-1])
    out = []
    for q in qs:
        h = (total - 1) * q / 100.0
        lo = int(np.floor(h))
        frac = h - lo
        v_lo = v[np.searchsorted(cum, lo, side="right")]
        v_hi = v[np.searchsorted(cum, min(lo + 1, total - 1), side="right")]
        out.append(float(v_lo + (v_hi - v_lo) * frac))
    return out


def _dist(name: str, values_ms: np.ndarray, counts: np.ndarray | None = None) -> dict[str, float]:
    """mean/median/std/p90/p99 with vLLM's key names (e.g. mean_ttft_ms, p99_ttft_ms)."""
    if counts is None:
        counts = np.ones(len(values_ms), dtype=np.int64)
    if len(values_ms) == 0 or counts.sum() == 0:
        nan = float("nan")
        return {f"mean_{name}": nan, f"median_{name}": nan, f"std_{name}": nan,
                **{f"p{q}_{name}": nan for q in PERCENTILES if q != 50}}
    w = counts / counts.sum()
    mean = float(np.dot(values_ms, w))
    std = float(np.sqrt(np.dot((values_ms - mean) ** 2, w)))
    p = weighted_percentiles(values_ms, counts)
    out = {f"mean_{name}": mean, f"median_{name}": p[0], f"std_{name}": std}
    out.update({f"p{q}_{name}": v for q, v in zip(PERCENTILES[1:], p[1:])})
    return out


VARIANCE_CHUNK = 1 << 20


def _owned_dist(name: str, values_ms: np.ndarray) -> dict[str, float]:
    """_dist with one count per value, for per-request figures of any length: `values_ms` is the
    caller's scratch array and is sorted in place (no n-sized copies beyond one deviation array)."""
    n = len(values_ms)
    if n == 0:
        return _dist(name, values_ms)
    mean = float(values_ms.mean())
    squares = 0.0  # sum of squared deviations, VARIANCE_CHUNK values at a time (no n-sized copy)
    for lo in range(0, n, VARIANCE_CHUNK):
        dev = values_ms[lo:lo + VARIANCE_CHUNK] - mean
        squares += float(np.dot(dev, dev))
    std = float(np.sqrt(squares / n))
    values_ms.sort()
    p = []
    for q in PERCENTILES:  # np.percentile(method="linear") on the sorted values
        h = (n - 1) * q / 100.0
        lo = int(np.floor(h))
        v_lo, v_hi = values_ms[lo], values_ms[min(lo + 1, n - 1)]
        p.append(float(v_lo + (v_hi - v_lo) * (h - lo)))
    out = {f"mean_{name}": mean, f"median_{name}": p[0], f"std_{name}": std}
    out.update({f"p{q}_{name}": v for q, v in zip(PERCENTILES[1:], p[1:])})
    return out


def summarise_requests(*, arrival_s, first_token_s, finish_s, prompt_tokens, output_tokens, ok,
                       itl_s, itl_count, slo_ttft_ms=None, slo_tpot_ms=None, slo_e2el_ms=None,
                       itl_sketch: GapLog | None = None) -> dict:
    """vLLM bench-serve style summary of completed requests (`ok` marks them). Inter-token gaps
    come as (itl_s, itl_count) arrays (exact), or as a GapLog past its exact limit (`itl_sketch`:
    exact mean and std, quantiles within its relative accuracy). 10M-request runs: per-request
    latencies are computed one after another in one n-sized scratch array (plus its completed
    subset while a figure is summarised), with no masked copies of the inputs."""
    ok = np.asarray(ok, dtype=bool)
    arrival_s, first_token_s, finish_s = (np.asarray(a, dtype=np.float64) for a in (arrival_s, first_token_s, finish_s))
    prompt_tokens, output_tokens = np.asarray(prompt_tokens), np.asarray(output_tokens)
    completed = int(ok.sum())
    every = completed == len(ok)
    duration = float(np.max(finish_s if every else finish_s[ok])) if completed else 0.0
    good = ok.copy()
    dists = {}

    multi = output_tokens > 1  # requests with a TPOT

    def ttft_ms() -> np.ndarray:
        out = np.subtract(first_token_s, arrival_s)
        out *= 1e3
        return out

    def tpot_ms() -> np.ndarray:  # (e2el - ttft) / (output - 1), where output > 1
        out = np.subtract(finish_s, first_token_s)
        out *= 1e3
        steps = np.maximum(output_tokens, 2)
        steps -= 1
        out /= steps
        return out

    def e2el_ms() -> np.ndarray:
        out = np.subtract(finish_s, arrival_s)
        out *= 1e3
        return out

    def summarise(name: str, compute, slo: float | None, only: np.ndarray) -> None:
        """One per-request figure: its SLO into `good`, then the distribution over `only` (the
        completed requests that have it). The full-length array is freed before the sort."""
        nonlocal good
        with np.errstate(invalid="ignore"):
            scratch = compute()
            if slo is not None:
                good &= (scratch <= slo) | ~only if name == "tpot_ms" else scratch <= slo
        values = scratch if only.all() else scratch[only]
        del scratch
        dists[name] = _owned_dist(name, values)

    summarise("ttft_ms", ttft_ms, slo_ttft_ms, ok)
    summarise("tpot_ms", tpot_ms, slo_tpot_ms, multi & ok)
    summarise("e2el_ms", e2el_ms, slo_e2el_ms, ok)
    has_slo = any(x is not None for x in (slo_ttft_ms, slo_tpot_ms, slo_e2el_ms))
    per_s = (lambda x: x / duration) if duration > 0 else (lambda x: float("nan"))
    input_tokens = int(np.sum(prompt_tokens, dtype=np.int64, where=ok))
    output_tokens_sum = int(np.sum(output_tokens, dtype=np.int64, where=ok))
    out = {
        "completed": completed,
        "duration": duration,
        "total_input_tokens": input_tokens,
        "total_output_tokens": output_tokens_sum,
        "request_throughput": per_s(completed),
        "request_goodput": per_s(int(good.sum())) if has_slo else None,
        "output_throughput": per_s(float(output_tokens_sum)),
        "total_token_throughput": per_s(float(input_tokens + output_tokens_sum)),
    }
    for name in ("ttft_ms", "tpot_ms", "e2el_ms"):
        out.update(dists[name])
    if itl_sketch is not None and not itl_sketch.exact:
        out.update(_sketch_dist("itl_ms", itl_sketch))
    else:
        out.update(_dist("itl_ms", np.asarray(itl_s, dtype=np.float64) * 1e3, np.asarray(itl_count)))
    return out


def _sketch_dist(name: str, gaps: GapLog) -> dict[str, float]:
    """_dist's keys from a folded GapLog (seconds -> ms)."""
    if gaps.total == 0:
        return _dist(name, np.zeros(0))
    p = gaps.quantiles_s(PERCENTILES)
    out = {f"mean_{name}": gaps.mean * 1e3, f"median_{name}": p[0] * 1e3, f"std_{name}": gaps.std * 1e3}
    out.update({f"p{q}_{name}": v * 1e3 for q, v in zip(PERCENTILES[1:], p[1:])})
    return out


def engine_stats(steps: StepTotals | dict[str, np.ndarray]) -> dict:
    """Time-weighted engine figures from the step totals of every replica (or a step table)."""
    t = steps if isinstance(steps, StepTotals) else StepTotals.of(steps)
    total = t.busy_s
    if t.num_steps == 0 or total == 0:
        return {"num_steps": 0}
    return {
        "num_steps": t.num_steps,
        "mean_step_ms": total / t.num_steps * 1e3,
        "mean_kv_cache_usage": t.usage_dur / total,
        "max_kv_cache_usage": t.max_usage,
        "mean_num_running": t.weighted["num_running"] / total,
        "max_num_running": int(t.max("num_running")),
        "mean_decode_batch_size": t.weighted["num_decode"] / total,
        "max_step_batch_size": t.max_batch,
        "frac_steps_memory_bound": float(t.steps_by_bound[1] / t.num_steps),
        "frac_time_memory_bound": float(t.time_by_bound[1] / total),
        "frac_time_compute_bound": float(t.time_by_bound[0] / total),
        "frac_time_overhead_bound": float(t.time_by_bound[2] / total),
        "busy_time_s": total,
    }


def roofline_stats(steps: StepTotals | dict[str, np.ndarray], peak_flops: float, bytes_per_s: float) -> dict:
    """Where the time went against the device roofline (formulas.md, "Roofline step time"):
    arithmetic intensity (FLOPs per byte moved) of all steps and of decode-only steps, the
    device ridge F_peak/BW, the achieved fraction of memory bandwidth = bytes moved /
    (busy time x BW), and the share of time spent in KV-policy bookkeeping."""
    t = steps if isinstance(steps, StepTotals) else StepTotals.of(steps)
    busy = t.busy_s
    if busy == 0:
        return {}
    flops, nbytes = t.sum("flops"), t.sum("bytes")
    dflops, dbytes = t.decode_only["flops"], t.decode_only["bytes"]
    out = {
        "ridge_flops_per_byte": peak_flops / bytes_per_s,
        "arithmetic_intensity": float(flops / nbytes) if nbytes else float("nan"),
        "decode_arithmetic_intensity": float(dflops / dbytes) if dbytes else float("nan"),
        "achieved_bandwidth_fraction": float(nbytes / (busy * bytes_per_s)),
        "achieved_flops_fraction": float(flops / (busy * peak_flops)),
    }
    if t.has("evict_s"):
        out["frac_time_kv_eviction"] = float(t.sum("evict_s") / busy)
    return out
