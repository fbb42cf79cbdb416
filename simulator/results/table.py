"""Human-readable rendering of a run summary (the `servesim simulate` table)."""
from __future__ import annotations

import textwrap

from simulator.cost import provenance_line

ROWS = (
    ("Successful requests", "completed", "{:d}"),
    ("Failed requests", "failed", "{:d}"),
    ("Benchmark duration (s)", "duration", "{:.2f}"),
    ("Total input tokens", "total_input_tokens", "{:d}"),
    ("Total generated tokens", "total_output_tokens", "{:d}"),
    ("Request throughput (req/s)", "request_throughput", "{:.2f}"),
    ("Request goodput (req/s)", "request_goodput", "{:.2f}"),
    ("Output token throughput (tok/s)", "output_throughput", "{:.2f}"),
    ("Total token throughput (tok/s)", "total_token_throughput", "{:.2f}"),
)
LATENCIES = (("Time to First Token", "ttft_ms"), ("Time per Output Token (excl. 1st token)", "tpot_ms"),
             ("Inter-token Latency", "itl_ms"), ("End-to-end Latency", "e2el_ms"))
ENGINE = (
    ("Preemptions", "num_preemptions", "{:d}"),
    ("Mean KV cache usage", "mean_kv_cache_usage", "{:.1%}"),
    ("Mean running sequences", "mean_num_running", "{:.1f}"),
    ("Mean decode batch size", "mean_decode_batch_size", "{:.1f}"),
    ("Time memory-bound", "frac_time_memory_bound", "{:.1%}"),
    ("Time compute-bound", "frac_time_compute_bound", "{:.1%}"),
    ("Time overhead-bound", "frac_time_overhead_bound", "{:.1%}"),
    ("Time in KV eviction bookkeeping", "frac_time_kv_eviction", "{:.1%}"),
    ("Arithmetic intensity (FLOP/B)", "arithmetic_intensity", "{:.1f}"),
    ("Decode arithmetic intensity (FLOP/B)", "decode_arithmetic_intensity", "{:.1f}"),
    ("Device ridge point (FLOP/B)", "ridge_flops_per_byte", "{:.1f}"),
    ("Achieved memory bandwidth fraction", "achieved_bandwidth_fraction", "{:.1%}"),
    ("Peak memory per GPU (GB)", "peak_memory_gb", "{:.2f}"),
    ("Steps", "num_steps", "{:d}"),
)
SPECULATIVE = (
    ("Mean gamma", "mean_gamma", "{:.2f}"),
    ("Acceptance rate", "acceptance_rate", "{:.1%}"),
    ("Mean tokens per iteration", "mean_tokens_per_iteration", "{:.3f}"),
    ("Expected tokens per iteration", "expected_tokens_per_iteration", "{:.3f}"),
    ("Time in draft", "frac_time_draft", "{:.1%}"),
    ("Time in verify", "frac_time_verify", "{:.1%}"),
    ("Speedup, output throughput", "speedup_output_throughput", "{:.3f}x"),
    ("Speedup, mean TPOT", "speedup_mean_tpot", "{:.3f}x"),
)


def _line(label: str, value, fmt: str) -> str:
    text = "n/a" if value is None else fmt.format(value)
    return f"{label + ':':<42}{text:>14}"


def format_summary(summary: dict) -> str:
    m, s, prov = summary["metrics"], summary["scenario"], summary["provenance"]
    lines = [
        "{s:=^56}".format(s=" Serving Simulation Result "),
        f"model {s['model']} on {s['replicas']}x{s['tp']} {prov['hardware']['name']} ({s['dtype']}), "
        f"scheduler {s['scheduler']}",
    ]
    lines += textwrap.wrap(provenance_line(prov["prediction"]), 100, break_on_hyphens=False) if "prediction" in prov else [
        f"cost model: {prov['cost_model']['source']} ({prov['cost_model'].get('known_error', '')})"]
    lines += [f"model: {note}" for note in prov.get("model", {}).get("notes", [])]
    lines += [_line(label, m.get(key), fmt) for label, key, fmt in ROWS if not (key == "request_goodput" and m.get(key) is None)]
    for title, key in LATENCIES:
        lines.append("{s:-^56}".format(s=title))
        for stat in ("mean", "median", "p90", "p99"):
            lines.append(_line(f"{stat.capitalize() if stat != 'p90' and stat != 'p99' else stat.upper()} "
                               f"{key.replace('_ms', '').upper()} (ms)", m.get(f"{stat}_{key}"), "{:.2f}"))
    lines.append("{s:-^56}".format(s="Engine"))
    kv = prov.get("kv_policy") or {"name": "dense"}
    if kv["name"] == "sliding_window":
        lines.append(f"KV: the model's sliding-window layers (window {kv['window']} tokens on "
                     f"{1 - kv['full_fraction']:.0%} of layers)")
    elif kv.get("note"):
        lines.append(f"KV: {kv['note']}")
    elif kv["name"] != "dense":
        knobs = ", ".join(f"{k}={v}" for k, v in kv.items() if k != "name")
        lines.append(f"KV policy: {kv['name']} ({knobs}); accuracy not modelled")
    if "peak_memory_bytes" in m:
        m = {**m, "peak_memory_gb": m["peak_memory_bytes"] / 1e9}
    lines += [_line(label, m.get(key), fmt) for label, key, fmt in ENGINE
              if key in m and not (key == "frac_time_kv_eviction" and s.get("kv_policy", "dense") == "dense")]
    lines += _cost_lines(summary)
    spec = summary.get("speculative")
    if spec:
        lines.append("{s:-^56}".format(s=f" Speculative decoding ({spec['draft']['model']}) "))
        lines += [_line(label, spec.get(key), fmt) for label, key, fmt in SPECULATIVE if key in spec]
    if m.get("failure_reasons"):
        lines.append("failures: " + ", ".join(f"{k}: {v}" for k, v in m["failure_reasons"].items()))
    lines.append("=" * 56)
    return "\n".join(lines)


def _cost_lines(summary: dict) -> list[str]:
    """Kinetics eFLOPs, energy and money (sections absent in older summaries are skipped)."""
    kin, energy, price = summary.get("kinetics"), summary.get("energy"), summary.get("price")
    lines = ["{s:-^56}".format(s="Cost")] if kin or energy or price else []
    if kin:
        paper = kin["paper_intensity"]
        lines.append(_line("eFLOPs per output token (I=562.5)", paper["eflops_per_output_token"], "{:.3e}"))
        lines.append(_line("eFLOPs memory share", paper["memory_share"], "{:.1%}"))
    if energy:
        lines.append(_line("Energy per output token (J)", energy["j_per_output_token"], "{:.3f}"))
        lines.append(_line("Mean power (W)", energy["mean_power_w"], "{:.0f}"))
    if price:
        lines.append(_line("USD per 1M output tokens", price["usd_per_million_output_tokens"], "{:.4f}"))
        lines.append(_line("USD per hour", price["usd_per_hour"], "{:.2f}"))
        lines.append(f"price: ${price['usd_per_gpu_hour']:.2f}/GPU-h, {price['source']}")
    if energy:
        model = {"line": "idle-to-TDP utilization line", "measured": "fitted to NVML-measured runs",
                 "transfer": "carried over from measured devices"}.get(energy["model"], energy["model"])
        lines.append(f"energy: power model {model}; {energy.get('power_known_error', '')}")
    return lines
