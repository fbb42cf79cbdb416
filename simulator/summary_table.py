"""Human-readable rendering of a run summary (the `servesim simulate` table)."""
from __future__ import annotations

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
        f"cost model: {prov['cost_model']['source']} ({prov['cost_model'].get('known_error', '')})",
    ]
    lines += [_line(label, m.get(key), fmt) for label, key, fmt in ROWS if not (key == "request_goodput" and m.get(key) is None)]
    for title, key in LATENCIES:
        lines.append("{s:-^56}".format(s=title))
        for stat in ("mean", "median", "p90", "p99"):
            lines.append(_line(f"{stat.capitalize() if stat != 'p90' and stat != 'p99' else stat.upper()} "
                               f"{key.replace('_ms', '').upper()} (ms)", m.get(f"{stat}_{key}"), "{:.2f}"))
    lines.append("{s:-^56}".format(s="Engine"))
    lines += [_line(label, m.get(key), fmt) for label, key, fmt in ENGINE if key in m]
    spec = summary.get("speculative")
    if spec:
        lines.append("{s:-^56}".format(s=f" Speculative decoding ({spec['draft']['model']}) "))
        lines += [_line(label, spec.get(key), fmt) for label, key, fmt in SPECULATIVE if key in spec]
    if m.get("failure_reasons"):
        lines.append("failures: " + ", ".join(f"{k}: {v}" for k, v in m["failure_reasons"].items()))
    lines.append("=" * 56)
    return "\n".join(lines)
