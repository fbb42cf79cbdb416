"""Human-readable rendering of a run summary (the `servesim simulate` table)."""
from __future__ import annotations

import textwrap

from simulator.cost import provenance_line
from simulator.results.overload import overload_lines

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
    ("Mean gamma (drafted per sequence)", "mean_gamma", "{:.2f}"),
    ("Draft acceptance rate (measured)", "draft_acceptance_rate", "{:.1%}"),
    ("Drafts kept after batch-min advance", "kept_draft_fraction", "{:.1%}"),
    ("System efficiency (emitted/(gamma+1))", "system_efficiency", "{:.1%}"),
    ("Mean tokens per iteration", "mean_tokens_per_iteration", "{:.3f}"),
    ("Expected tokens per iteration", "expected_tokens_per_iteration", "{:.3f}"),
    ("Time in draft", "frac_time_draft", "{:.1%}"),
    ("Time in verify", "frac_time_verify", "{:.1%}"),
    ("Speedup, output throughput", "speedup_output_throughput", "{:.3f}x"),
    ("Speedup, mean TPOT", "speedup_mean_tpot", "{:.3f}x"),
)
MOE = (
    ("Expert hit rate (resident on GPU)", "moe_expert_hit_rate", "{:.1%}"),
    ("Experts used (summed over layers, steps)", "moe_experts_touched", "{:d}"),
    ("Experts fetched over the host link", "moe_experts_fetched", "{:d}"),
    ("Experts run on the CPU", "moe_experts_on_cpu", "{:d}"),
    ("Host-link traffic (GB)", "moe_host_link_gb", "{:.2f}"),
    ("Host-link busy time (s)", "moe_host_link_time_s", "{:.2f}"),
    ("Host-link wait time (s)", "moe_host_link_wait_s", "{:.2f}"),
    ("Expert time on GPU (s)", "moe_gpu_expert_time_s", "{:.2f}"),
    ("Expert time on CPU (s)", "moe_cpu_expert_time_s", "{:.2f}"),
    ("Expert time, total (s)", "moe_expert_time_s", "{:.2f}"),
)
TTS = (
    ("Questions completed", "questions_completed", "{:d}"),
    ("Mean time to last sample (ms)", "mean_time_to_last_sample_ms", "{:.2f}"),
    ("P90 time to last sample (ms)", "p90_time_to_last_sample_ms", "{:.2f}"),
    ("P99 time to last sample (ms)", "p99_time_to_last_sample_ms", "{:.2f}"),
    ("Mean TTFT of a question (ms)", "mean_time_to_first_token_ms", "{:.2f}"),
    ("Output tokens per question", "output_tokens_per_question", "{:.1f}"),
    ("eFLOPs per question", "eflops_per_question", "{:.3e}"),
    ("Energy per question (J)", "joules_per_question", "{:.2f}"),
    ("USD per question", "usd_per_question", "{:.6f}"),
)


def _line(label: str, value, fmt: str) -> str:
    text = "n/a" if value is None or value != value else fmt.format(value)
    return f"{label + ':':<42}{text:>14}"


def _title(text: str) -> str:
    return "{s:-^56}".format(s=f" {text} " if not text.startswith(" ") else text)


def _layout(summary: dict) -> str:
    """replicas x tp, or the GPU count when a replica is more than tp GPUs (pp, DP ranks, P/D)."""
    s, par = summary["scenario"], summary.get("parallelism")
    base = f"{s['replicas']}x{s['tp']}"
    if not par:
        return base
    n = par["num_gpus"]
    return f"{n} GPU{'s' if n != 1 else ''} ({par.get('layout') or base})"


def format_summary(summary: dict) -> str:
    m, s, prov = summary["metrics"], summary["scenario"], summary["provenance"]
    lines = [
        "{s:=^56}".format(s=" Serving Simulation Result "),
        f"model {s['model']} on {_layout(summary)} {prov['hardware']['name']} ({s['dtype']}), "
        f"scheduler {s['scheduler']}",
    ]
    lines += textwrap.wrap(provenance_line(prov["prediction"]), 100, break_on_hyphens=False) if "prediction" in prov else [
        f"cost model: {prov['cost_model']['source']} ({prov['cost_model'].get('known_error', '')})"]
    lines += [f"model: {note}" for note in prov.get("model", {}).get("notes", [])]
    lines += _wrapped(overload_lines(summary.get("overload")))
    lines += [_line(label, m.get(key), fmt) for label, key, fmt in ROWS if not (key == "request_goodput" and m.get(key) is None)]
    lines += _load_lines(summary.get("overload"))
    for title, key in LATENCIES:
        lines.append("{s:-^56}".format(s=title))
        for stat in ("mean", "median", "p90", "p99"):
            lines.append(_line(f"{stat.capitalize() if stat != 'p90' and stat != 'p99' else stat.upper()} "
                               f"{key.replace('_ms', '').upper()} (ms)", m.get(f"{stat}_{key}"), "{:.2f}"))
    lines.append("{s:-^56}".format(s="Engine"))
    if "peak_memory_bytes" in m:
        m = {**m, "peak_memory_gb": m["peak_memory_bytes"] / 1e9}
    lines += [_line(label, m.get(key), fmt) for label, key, fmt in ENGINE
              if key in m and key != "frac_time_kv_eviction"]
    lines += _kv_lines(prov.get("kv_policy"), m)
    lines += _cost_lines(summary)
    lines += _moe_lines(summary)
    lines += _tts_lines(summary.get("tts"))
    lines += _spec_lines(summary.get("speculative"))
    if pc := summary.get("prefix_cache"):  # prefix caching (engine/prefix_cache.py), hit rates by tier
        lines += [_title("Prefix cache"), *(_line(label, pc.get(key), fmt) for label, key, fmt in (
            ("Prefix hit rate (tokens)", "hit_rate", "{:.1%}"), ("  from GPU blocks", "gpu_hit_rate", "{:.1%}"),
            ("  from host (offload tier)", "host_hit_rate", "{:.1%}"), ("Prefix hit rate (blocks)", "block_hit_rate", "{:.1%}"),
            ("Prefill tokens saved", "prefill_tokens_saved", "{:d}"), ("GPU blocks evicted", "evicted_blocks", "{:d}")))]
    if par := summary.get("parallelism"):  # pp, dp/EP, P/D disaggregation (simulator/parallel/summary.py)
        lines += textwrap.wrap(par["text"], 100)
    if m.get("failure_reasons"):
        lines.append("failures: " + ", ".join(f"{k}: {v}" for k, v in m["failure_reasons"].items()))
    lines.append("=" * 56)
    return "\n".join(lines)


def _wrapped(paragraphs: list[str]) -> list[str]:
    return [w for p in paragraphs for w in textwrap.wrap(p, 100, break_on_hyphens=False)]


def _load_lines(o: dict | None) -> list[str]:
    """Offered vs sustainable request rate (results/overload.py); absent in older summaries."""
    if not o:
        return []
    if not o.get("applicable"):
        return [f"load: offered vs sustainable rate not judged ({o.get('reason', 'n/a')})"]
    sustain = o["sustainable_request_rate"]
    return [_title("Load"),
            _line("Offered request rate (req/s)", o["offered_request_rate"], "{:.2f}"),
            f"{'Sustainable request rate (req/s):':<42}"
            f"{('>= ' if o['sustainable_rate_is_lower_bound'] else '~ ') + format(sustain, '.2f'):>14}",
            _line("Backlog growth (req/s)", o["backlog_growth_rate"], "{:.2f}"),
            _line("Median TTFT, first third of arrivals (ms)", o["first_third_median_ttft_ms"], "{:.2f}"),
            _line("Median TTFT, last third of arrivals (ms)", o["last_third_median_ttft_ms"], "{:.2f}"),
            "queue: " + ("OVERLOADED (see the warning above)" if o["overloaded"] else
                         "stable (offered load within what the engine served)")]


def _kv_lines(kv: dict | None, m: dict) -> list[str]:
    """The KV cache policy's section (dense KV has none)."""
    kv = kv or {"name": "dense"}
    if kv["name"] == "dense":
        return []
    lines = [_title(f"KV cache policy: {kv['name']}")]
    if kv["name"] == "sliding_window":
        lines.append(f"the model's sliding-window layers (window {kv['window']} tokens on "
                     f"{1 - kv['full_fraction']:.0%} of layers)")
    elif kv.get("note"):
        lines += _wrapped([kv["note"]])
    else:
        knobs = ", ".join(f"{k}={v}" for k, v in kv.items() if k != "name")
        lines += _wrapped([f"{knobs}; accuracy not modelled"])
    if "frac_time_kv_eviction" in m:
        lines.append(_line("Time in KV eviction bookkeeping", m["frac_time_kv_eviction"], "{:.1%}"))
    return lines


def _moe_lines(summary: dict) -> list[str]:
    """MoE expert placement figures: summary["moe"] (or moe_* metrics of older summaries)."""
    moe = summary.get("moe") or {k: v for k, v in summary["metrics"].items() if k.startswith("moe_")}
    if not moe:
        return []
    if isinstance(moe.get("moe_host_link_bytes"), (int, float)):
        moe = {**moe, "moe_host_link_gb": moe["moe_host_link_bytes"] / 1e9}
    s = summary["scenario"]
    how = ", ".join(f"{k.replace('expert_', '')} {s[k]}" for k in ("expert_placement", "expert_exec") if s.get(k))
    return [_title("MoE experts" + (f" ({how})" if how else ""))] + [
        _line(label, moe.get(key), fmt) for label, key, fmt in MOE if key in moe]


def _tts_lines(tts: dict | None) -> list[str]:
    if not tts:
        return []
    what = [f"Best-of-{tts['samples_per_prompt']}" if tts.get("samples_per_prompt", 1) > 1 else "",
            f"budget {tts['output_budget_tokens']} tokens" if tts.get("output_budget_tokens") else ""]
    return ([_title("Test-time scaling (" + ", ".join(w for w in what if w) + ")"),
             _line("Questions", tts.get("questions"), "{:d}")]
            + [_line(label, tts.get(key), fmt) for label, key, fmt in TTS if key in tts])


def _spec_lines(spec: dict | None) -> list[str]:
    """Speculative decoding: the configured acceptance model and the measured acceptance, named apart."""
    if not spec:
        return []
    where = spec["draft"]["hardware"]
    where = "on the target's GPUs" if where == "shared with target" else f"on {where}"
    lines = [_title(f"Speculative decoding ({spec['draft']['model']} {where})"),
             f"gamma: {spec['gamma_policy']}, at most {spec['num_speculative_tokens']} draft tokens; "
             f"advance: {spec['advance']}; acceptance model: {_acceptance_text(spec.get('acceptance', {}))}"]
    shown = [r for r in SPECULATIVE if r[1] in spec and not (r[1] == "kept_draft_fraction" and spec["advance"] != "min")]
    alpha = spec.get("acceptance", {}).get("acceptance_rate")
    if alpha is not None:
        lines.append(_line("Per-token acceptance alpha (configured)", alpha, "{:.3f}"))
    for label, key, fmt in shown:
        lines.append(_line(label, spec.get(key), fmt))
        if key == "draft_acceptance_rate" and alpha is not None and spec.get(key) is not None:
            lines.append("  (accepted / drafted tokens: drafts after a rejection are discarded, so below alpha)")
    counts = spec.get("gamma_counts") or {}
    if spec["gamma_policy"] == "adaptive" and counts:
        lines.append("gamma chosen (iterations): " + ", ".join(f"{g}: {c}" for g, c in counts.items()))
    b1 = spec.get("batch1")
    if b1:
        lines.append(_line("Draft/target step cost c (batch 1)", b1["cost_coefficient_c"], "{:.3f}"))
        lines.append(_line(f"Best expected speedup, batch 1 (gamma {b1['best_gamma']})",
                           b1["best_expected_speedup"], "{:.3f}x"))
    notes = []
    if not spec.get("num_draft_tokens"):
        notes.append("No token was drafted: adaptive gamma chose 0 (a plain decode step) on every iteration, so "
                     "there is no measured acceptance."
                     + (f" A draft step costs {b1['draft_step_ms']:.2f} ms against the target's "
                        f"{b1['target_step_ms']:.2f} ms (c = {b1['cost_coefficient_c']:.2f}, Leviathan et al. "
                        f"sec. 3.4); at best {b1['best_expected_speedup']:.2f}x at batch 1." if b1 else "")
                     + " (The draft still prefills every prompt: its time share above.)")
    elif spec["advance"] == "min" and (spec.get("kept_draft_fraction") or 0) < 0.5 * (spec.get("draft_acceptance_rate") or 0):
        notes.append(f"min advance: the target accepted {spec['draft_acceptance_rate']:.1%} of drafted tokens, but "
                     f"each batch advances by its smallest accepted count, which keeps {spec['kept_draft_fraction']:.1%}"
                     " (P(all b sequences accept j) = P(one does)^b); use ragged advance or a smaller batch.")
    return lines + _wrapped(notes)


def _acceptance_text(acc: dict) -> str:
    kind = acc.get("kind")
    if kind == "iid":
        return f"i.i.d. per-token alpha = {acc['acceptance_rate']:g} (configured)"
    if kind == "per_position":
        return "per-position rates " + ",".join(f"{r:g}" for r in acc["acceptance_position_rates"]) + " (configured)"
    if kind == "histogram":
        return f"accepted-length histogram {acc.get('file', '')}"
    return str(acc or "n/a")


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
