"""The report of one run: headline metrics, the load verdict, provenance, latency, time series, step
breakdown, roofline, feature sections (speculative, MoE, test-time scaling), price, energy and
hardware use, and the Kinetics eFLOPs.

Owns which sections a run page has and which summary keys they show; the numbers in tables
and cards are the summary's own (exact, in data-value). Sections whose data the result lacks
(no CSVs, no kinetics/energy/price yet) say so instead of drawing an empty chart.
"""
from __future__ import annotations

import json

from reports import run_figures as rf
from reports.cost_section import energy_table, kinetics_table, price_table, raw_fields
from reports.digest import StepDigest
from reports.feature_sections import (
    load_section,
    moe_section,
    parallelism_section,
    prefix_cache_section,
    speculative_section,
    tts_section,
)
from reports.page import card, figure_div, key_values, note, page, section, table
from reports.results import RunData, request_digest, run_edges_of, section_of, step_digest

# (summary metric key, label, unit, display scale)
HEADLINE = (
    ("completed", "completed requests", "", 1), ("failed", "failed requests", "", 1),
    ("duration", "duration", "s", 1), ("request_throughput", "request throughput", "req/s", 1),
    ("output_throughput", "output throughput", "tok/s", 1),
    ("total_token_throughput", "total token throughput", "tok/s", 1),
    ("request_goodput", "request goodput", "req/s", 1),
    ("mean_ttft_ms", "mean TTFT", "ms", 1), ("p99_ttft_ms", "p99 TTFT", "ms", 1),
    ("mean_tpot_ms", "mean TPOT", "ms", 1), ("p99_tpot_ms", "p99 TPOT", "ms", 1),
    ("p99_e2el_ms", "p99 E2E latency", "ms", 1), ("mean_kv_cache_usage", "mean KV cache usage", "%", 100),
    ("num_preemptions", "preemptions", "", 1),
)
EXTRA_HEADLINE = (  # (section, key, label, unit, display scale)
    ("price", "usd_per_million_output_tokens", "price per 1M output tokens", "USD", 1),
    ("energy", "j_per_output_token", "energy per output token", "J", 1),
    ("kinetics.paper_intensity", "eflops_per_output_token", "Kinetics eFLOPs per output token", "G", 1e-9),
)
LATENCY_ROWS = (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT"), ("itl_ms", "ITL"), ("e2el_ms", "E2E latency"))
LATENCY_STATS = ("mean", "median", "p90", "p99", "std")


def headline_cards(summary: dict) -> str:
    m = summary.get("metrics", {})
    cards = []
    for key, label, unit, scale in HEADLINE:
        if key in m and m[key] is not None:
            cards.append(card(label, key, m[key], unit, scale=scale))
    for sec, key, label, unit, scale in EXTRA_HEADLINE:
        value = section_of(summary, sec).get(key)
        if isinstance(value, (int, float)):
            cards.append(card(label, f"{sec}.{key}", value, unit, scale=scale))
    return f'<div class="cards">{"".join(cards)}</div>'


def percentile_table(metrics: dict) -> str:
    rows, keys = [], []
    for key, label in LATENCY_ROWS:
        rows.append([f"{label} (ms)"] + [metrics.get(f"{s}_{key}") for s in LATENCY_STATS])
        keys.append(key)
    return table(["metric"] + list(LATENCY_STATS), rows, cls="percentiles", keys=keys)


def _per_tera(x):
    return x / 1e12 if isinstance(x, (int, float)) else None


def provenance(summary: dict) -> str:
    prov, sc = summary.get("provenance", {}), summary.get("scenario", {})
    hw, model, cm = prov.get("hardware", {}), prov.get("model", {}), prov.get("cost_model", {})
    pairs = [
        ("servesim version", summary.get("servesim_version")), ("seed", prov.get("seed", sc.get("seed"))),
        ("model", model.get("name")), ("total parameters", model.get("total_params")),
        ("active parameters per token", model.get("active_params_per_token")),
        ("hardware", f"{hw.get('display_name', '')} ({hw.get('name', '')})"), ("hardware file", hw.get("file")),
        ("dtype / tp / replicas", f"{sc.get('dtype')} / {sc.get('tp')} / {sc.get('replicas')}"),
        ("peak compute (TFLOP/s per GPU, dense)", _per_tera(hw.get("peak_flops"))),
        ("memory bandwidth (TB/s per GPU)", _per_tera(hw.get("memory_bandwidth_bytes_per_s"))),
        ("ridge (FLOP/byte)", hw.get("ridge_flops_per_byte")),
        ("price (USD per GPU-hour)", hw.get("price_usd_per_hour")), ("price as of", hw.get("price_as_of")),
    ]
    pred = prov.get("prediction", {})
    pairs += [("prediction: cost model", pred.get("label")), ("prediction: engine", pred.get("engine")),
              ("prediction: known error", pred.get("known_error")),
              ("prediction: kernel error", pred.get("kernels_known_error")), ("prediction: power", pred.get("power"))]
    raw = key_values([(k, json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v)
                      for k, v in cm.items()], cls="cost-model")
    limits = prov.get("scheduler_limits", {})
    pairs += [(f"scheduler: {k}", v) for k, v in limits.items()] + [("max_model_len", prov.get("max_model_len"))]
    memory = "".join(key_values(list(prov.get("memory", {}).items())))
    scenario = key_values(list(sc.items()), cls="scenario")
    return (key_values([(k, v) for k, v in pairs if v is not None], cls="provenance")
            + f"<details><summary>cost model details ({len(cm)} fields)</summary>{raw}</details>"
            + f"<details><summary>memory plan</summary>{memory}</details>"
            + f"<details><summary>full scenario ({len(sc)} fields)</summary>{scenario}</details>")


def step_totals(summary: dict, steps: StepDigest | None) -> str:
    m = summary.get("metrics", {})
    rows = [["time in compute-bound steps (fraction)", m.get("frac_time_compute_bound")],
            ["time in memory-bound steps (fraction)", m.get("frac_time_memory_bound")],
            ["time in overhead-bound steps (fraction)", m.get("frac_time_overhead_bound")],
            ["busy time (s)", m.get("busy_time_s")], ["steps", m.get("num_steps")],
            ["mean step (ms)", m.get("mean_step_ms")]]
    out = table(["summary", "value"], [r for r in rows if r[1] is not None], cls="step-summary")
    total = steps.totals.get("duration_s", 0.0) if steps is not None else 0.0
    if total > 0:
        parts = [("compute-bound ops", "compute_s"), ("memory-bound ops", "memory_s"),
                 ("communication", "comm_s"), ("fixed overhead", "overhead_s")]
        rows = [[name, steps.totals.get(k, 0.0), steps.totals.get(k, 0.0) / total * 100] for name, k in parts]
        out += table(["time by op bound (all steps)", "seconds", "share (%)"], rows, cls="step-parts")
    return out


def _figs(pairs: list[tuple[str, object]]) -> str:
    return "".join(figure_div(f, fid) for fid, f in pairs if f is not None)


def run_sections(run: RunData) -> list[str]:
    s = run.summary
    edges = run_edges_of(run) if run.has_requests or run.has_steps else None
    req, steps = request_digest(run, edges), step_digest(run, edges)
    hw = s.get("provenance", {}).get("hardware", {})
    no_series = note("No requests / steps table (CSV or Parquet) beside this summary: time series are not drawn.")
    lat = percentile_table(s.get("metrics", {})) + (_figs([("fig-cdf", rf.latency_cdfs([(run.name, req)]))])
                                                     if req is not None else no_series)
    series = _figs([("fig-throughput", rf.throughput(steps, req)), ("fig-batch", rf.batch_size(steps))])
    kv = _figs([("fig-kv", rf.kv_and_preemptions(steps, req))])
    kv_note = "" if steps is None or steps.preemptions_total is not None else note(
        "Preemptions have no time of their own in these result files: each request's "
        "preemption count is placed at the time that request finished.")
    roof = rf.roofline(steps, hw)
    roof_note = "" if roof is not None or steps is None else note(
        "The summary's hardware provenance has no peak_flops / memory_bandwidth_bytes_per_s: no roofline.")
    return [s for s in (
        section("Headline metrics", headline_cards(s), "headline"),
        load_section(s),
        section("Scenario and provenance", provenance(s), "provenance"),
        section("Latency", lat, "latency"),
        section("Throughput and batch size over time", series or no_series, "throughput"),
        section("KV cache and preemptions over time", (kv + kv_note) if kv else no_series, "kv"),
        section("Step time breakdown and roofline",
                step_totals(s, steps) + _figs([("fig-steps", rf.step_breakdown(steps)), ("fig-roofline", roof)])
                + roof_note, "steps"),
        speculative_section(s), moe_section(s), tts_section(s), prefix_cache_section(s), parallelism_section(s),
        section("Price", price_table(s), "price"),
        section("Energy and hardware use", energy_table(s), "energy"),
        section("Kinetics cost (effective FLOPs)", kinetics_table(s) + _figs([("fig-eflops", rf.eflops(s.get("kinetics")))])
                + raw_fields(s), "kinetics"),
    ) if s]


def render_run(run: RunData) -> str:
    s = run.summary
    hw = s.get("provenance", {}).get("hardware", {})
    sc = s.get("scenario", {})
    m = s.get("metrics", {})
    subtitle = (f"{sc.get('model', '?')} on {sc.get('replicas', 1)}x{sc.get('tp', 1)} "
                f"{hw.get('display_name') or sc.get('hardware', '?')}, {sc.get('scheduler', '?')} scheduler, "
                f"{m.get('submitted', m.get('completed', '?'))} requests, seed {sc.get('seed', '?')} - "
                f"servesim {s.get('servesim_version', '?')}")
    return page(f"servesim run report: {run.name}", subtitle, run_sections(run), "run")

