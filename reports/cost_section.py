"""The run report's cost part, written for the person who pays: price, energy, how hard the
hardware worked, and the Kinetics eFLOPs, each a named figure with its unit and what it means.

Owns the wording and units of that part (USD per 1M output tokens, J/token, W, TFLOP/s, TB/s,
G eFLOPs per token). Numbers come from the summary's "price", "energy", "kinetics" sections and
its metrics/provenance; each cell's data-value is the number shown (in the unit shown). The raw
section fields stay available, folded, for whoever wants the JSON names.
"""
from __future__ import annotations

import html

from reports.page import data_value, fmt, key_values, note
from reports.results import section_of

KINETICS_EXPLAINED = (
    "Kinetics (arXiv 2506.05333, sec. 3) prices a token by effective FLOPs: eFLOPs = compute FLOPs + I x "
    "memory bytes, where I (FLOP/byte) converts memory traffic into compute at a device's ratio of peak "
    "compute to bandwidth. The summary holds three counts: (1) the headline, the paper's own count (decode "
    "passes, attention reads, no weight traffic) at the paper's I = 562.5 (B200), comparable across papers; "
    "(2) the same count at this device's own ridge I, whose eFLOPs / peak FLOP/s is the ideal roofline time; "
    "(3) every FLOP and byte the cost model charged (prefill, weights, activations, logits) at I = 562.5, "
    "the full work of this run.")


def _row(label: str, value, unit: str, meaning: str = "", key: str = "") -> str:
    k = f' data-key="{html.escape(key, quote=True)}"' if key else ""
    shown = "—" if value is None else fmt(value)
    return (f'<tr><th>{html.escape(label)}</th><td{k} data-value="{data_value(value)}">{shown}</td>'
            f'<td class="text">{html.escape(unit)}</td><td class="text note">{html.escape(meaning)}</td></tr>')


def _table(rows: list[str], cls: str) -> str:
    head = "<thead><tr><th>figure</th><th>value</th><th class=text>unit</th><th class=text>what it is</th></tr></thead>"
    return f'<table class="{cls}">{head}<tbody>{"".join(r for r in rows if r)}</tbody></table>'


def _scaled(x, factor):
    return x * factor if isinstance(x, (int, float)) else None


def price_table(summary: dict) -> str:
    price, rows = summary.get("price") or {}, []
    if price:
        gpus = price.get("num_gpus")
        rows += [
            _row("Price per 1M output tokens", price.get("usd_per_million_output_tokens"), "USD / 1M tokens",
                 "what the GPUs cost while they produced a million output tokens at this run's throughput",
                 "price.usd_per_million_output_tokens"),
            _row("Cost of this run", price.get("usd_total"), "USD",
                 f"{fmt(price.get('window_s'))} s of {gpus} GPU{'s' if gpus != 1 else ''}", "price.usd_total"),
            _row("GPU price", price.get("usd_per_gpu_hour"), "USD / GPU-hour", str(price.get("source", "")),
                 "price.usd_per_gpu_hour"),
            _row("Price of the deployment", price.get("usd_per_hour"), "USD / hour",
                 "1 GPU" if gpus == 1 else f"all {gpus} GPUs", "price.usd_per_hour")]
    return _table(rows, "price") if rows else note("This result has no price section.")


def energy_table(summary: dict) -> str:
    energy, rows = summary.get("energy") or {}, []
    if energy:
        rows += [
            _row("Energy per output token", energy.get("j_per_output_token"), "J / token", "", "energy.j_per_output_token"),
            _row("Mean power", energy.get("mean_power_w"), "W",
                 f"per GPU between idle {fmt(energy.get('idle_w'))} W and TDP {fmt(energy.get('tdp_w'))} W",
                 "energy.mean_power_w"),
            _row("Energy of the run", _scaled(energy.get("total_j"), 1e-3), "kJ",
                 f"{fmt(energy.get('kwh'))} kWh", "energy.total_kj"),
            _row("Power model", energy.get("model"), "", f"{energy.get('power_source', '')}; known error: "
                 f"{energy.get('power_known_error', 'n/a')}")]
    m, hw = summary.get("metrics", {}), section_of(summary, "provenance.hardware")
    peak, bw = hw.get("peak_flops"), hw.get("memory_bandwidth_bytes_per_s")
    if peak and m.get("achieved_flops_fraction") is not None:
        rows.append(_row("Achieved compute", m["achieved_flops_fraction"] * peak / 1e12, "TFLOP/s per GPU",
                         f"{m['achieved_flops_fraction']:.1%} of the {peak / 1e12:,.0f} TFLOP/s dense peak "
                         "(busy time)", "achieved_tflops"))
    if bw and m.get("achieved_bandwidth_fraction") is not None:
        rows.append(_row("Achieved memory bandwidth", m["achieved_bandwidth_fraction"] * bw / 1e12, "TB/s per GPU",
                         f"{m['achieved_bandwidth_fraction']:.1%} of the {bw / 1e12:.2f} TB/s peak (busy time)",
                         "achieved_tb_per_s"))
    if m.get("arithmetic_intensity") is not None:
        rows.append(_row("Arithmetic intensity", m["arithmetic_intensity"], "FLOP / byte",
                         f"all steps; the device ridge is {fmt(m.get('ridge_flops_per_byte'))}: below it, memory-bound",
                         "arithmetic_intensity"))
    return _table(rows, "energy") if rows else note("This result has no energy section.")


def kinetics_table(summary: dict) -> str:
    kin = summary.get("kinetics") or {}
    paper = kin.get("paper_intensity") or {}
    if not paper:
        return note("This result has no Kinetics section.")
    rows = [_row("eFLOPs per output token", _scaled(paper.get("eflops_per_output_token"), 1e-9), "G eFLOPs / token",
                 "headline: the paper's count at I = 562.5 FLOP/byte", "kinetics.paper_intensity.eflops_per_output_token"),
            _row("  of which memory traffic", _scaled(paper.get("memory_share"), 100), "%",
                 "I x bytes share: how memory-bound decoding is", "kinetics.paper_intensity.memory_share"),
            _row("eFLOPs per request", _scaled(paper.get("eflops_per_request"), 1e-12), "T eFLOPs / request", "",
                 "kinetics.paper_intensity.eflops_per_request")]
    for key, label in (("device_intensity", "at this device's ridge"), ("all_ops", "every charged op")):
        sec = kin.get(key) or {}
        if sec.get("eflops_per_output_token") is not None:
            rows.append(_row(f"eFLOPs per output token, {label}", sec["eflops_per_output_token"] / 1e9,
                             "G eFLOPs / token", f"I = {fmt(sec.get('intensity'))} FLOP/byte",
                             f"kinetics.{key}.eflops_per_output_token"))
    return _table(rows, "kinetics") + note(KINETICS_EXPLAINED)


def raw_fields(summary: dict) -> str:
    """The price / energy / kinetics sections as stored, folded (JSON field names)."""
    parts = []
    for key in ("price", "energy", "kinetics"):
        data = summary.get(key) or {}
        flat = [(k, v) for k, v in data.items() if not isinstance(v, (dict, list))]
        nested = "".join(f"<h3>{key}.{k}</h3>" + key_values(list(v.items())) for k, v in data.items() if isinstance(v, dict))
        if data:
            parts.append(f"<h3>{key}</h3>" + key_values(flat, cls=f"raw-{key}") + nested)
    return f"<details><summary>all fields as stored in summary.json</summary>{''.join(parts)}</details>" if parts else ""
