"""The comparison report: a base and its variants, metrics side by side with deltas, overlaid
latency CDFs and bar charts of the key metrics.

Owns the compare page for a compare.json ({"kind": "compare", "base": summary, "variants":
[{"vary": {...}, "summary": summary}], "varied_keys": [...]}) and for several run directories
(first = base; full CDFs from their requests.csv). A compare.json holds summaries only, so its
"CDF" is the summary's percentile points (p50/p90/p99), said so on the chart.
"""
from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports import run_figures as rf
from reports.page import data_value, figure_div, fmt, key_values, note, page, section
from reports.results import RunData, section_of
from reports.run_report import HEADLINE, LATENCY_ROWS

EXTRA_ROWS = (("kinetics.paper_intensity", "eflops_per_output_token", "eFLOPs per output token"),
              ("energy", "j_per_output_token", "energy per output token (J)"),
              ("price", "usd_per_million_output_tokens", "price per 1M output tokens (USD)"))
BARS = (("output_throughput", "output throughput (tok/s)"), ("p99_ttft_ms", "p99 TTFT (ms)"),
        ("p99_tpot_ms", "p99 TPOT (ms)"))


def metric_rows(summaries: list[dict]) -> list[tuple[str, str, float, list]]:
    """(key, label, display scale, [value per summary]) for headline metrics, latency stats, extras."""
    rows = []
    keys = [(k, f"{label} ({unit})" if unit else label, scale) for k, label, unit, scale in HEADLINE]
    keys += [(f"{s}_{k}", f"{s} {label} (ms)", 1) for k, label in LATENCY_ROWS for s in ("median", "p90")]
    for key, label, scale in keys:
        values = [s.get("metrics", {}).get(key) for s in summaries]
        if any(v is not None for v in values):
            rows.append((key, label, scale, values))
    for sec, key, label in EXTRA_ROWS:
        values = [section_of(s, sec).get(key) for s in summaries]
        if any(v is not None for v in values):
            rows.append((f"{sec}.{key}", label, 1, values))
    return rows


def _shown(value, scale: float) -> str:
    return fmt(value * scale if scale != 1 and isinstance(value, (int, float)) else value)


def delta_pct(value, base):
    if not isinstance(value, (int, float)) or not isinstance(base, (int, float)) or base == 0:
        return None
    return (value - base) / abs(base) * 100


def side_by_side(names: list[str], summaries: list[dict]) -> str:
    head = "<th>metric</th>" + f"<th>{html.escape(names[0])}</th>" + "".join(
        f"<th>{html.escape(n)}</th><th>Δ vs base</th>" for n in names[1:])
    body = []
    for key, label, scale, values in metric_rows(summaries):
        k = html.escape(key, quote=True)
        v0 = values[0]
        cells = [f'<td data-key="{k}" data-col="0" data-value="{data_value(v0)}">{_shown(v0, scale)}</td>']
        for i, v in enumerate(values[1:], start=1):
            d = delta_pct(v, values[0])
            ds = "—" if d is None else f"{d:+.1f}%"
            cells.append(f'<td data-key="{k}" data-col="{i}" data-value="{data_value(v)}">{_shown(v, scale)}</td>'
                         f'<td class="delta" data-key="{k}" data-col="{i}" data-value="{data_value(d)}">{ds}</td>')
        body.append(f'<tr><td class="text">{html.escape(label)}</td>{"".join(cells)}</tr>')
    return f'<table class="compare"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def percentile_cdfs(names: list[str], summaries: list[dict]) -> go.Figure:
    """Each run's p50/p90/p99 as points of its latency CDF (a summary holds no more than that)."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=[f"{label} percentiles" for _, label in rf.LATENCIES])
    for k, (name, s) in enumerate(zip(names, summaries)):
        m = s.get("metrics", {})
        for col, (key, label) in enumerate(rf.LATENCIES, start=1):
            xs = [m.get(f"{p}_{key}") for p in ("median", "p90", "p99")]
            fig.add_trace(go.Scatter(x=xs, y=[50, 90, 99], mode="lines+markers", name=name, legendgroup=name,
                                     showlegend=col == 1, line={"color": rf.COLORS[k % len(rf.COLORS)]},
                                     hovertemplate=f"{label} %{{x:.2f}} ms at p%{{y}}<extra>{name}</extra>"),
                          row=1, col=col)
            fig.update_xaxes(title_text=f"{label} (ms)", row=1, col=col)
    fig.update_yaxes(title_text="percentile (%)", range=[40, 100], row=1, col=1)
    return rf._layout(fig, "Latency CDFs from the summaries' p50 / p90 / p99 points", height=400)


def metric_bars(names: list[str], summaries: list[dict]) -> go.Figure:
    fig = make_subplots(rows=1, cols=len(BARS), subplot_titles=[label for _, label in BARS])
    for col, (key, label) in enumerate(BARS, start=1):
        ys = [s.get("metrics", {}).get(key) for s in summaries]
        fig.add_trace(go.Bar(x=names, y=ys, marker_color=[rf.COLORS[i % len(rf.COLORS)] for i in range(len(names))],
                             showlegend=False, hovertemplate="%{x}: %{y:.4g}<extra>" + label + "</extra>"),
                      row=1, col=col)
        fig.update_yaxes(title_text=label, row=1, col=col)
        fig.update_xaxes(title_text="configuration", row=1, col=col)
    return rf._layout(fig, "Key metrics per configuration", height=420)


def _vary_label(vary: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in vary.items()) or "variant"


def _page(names: list[str], summaries: list[dict], cdf_fig, cdf_note: str, varied: list[str], title: str) -> str:
    varied_rows = [[k] + [s.get("scenario", {}).get(k) for s in summaries] for k in varied]
    varied_rows += [["cost model"] + [_prediction(s, "label") for s in summaries],
                    ["known error"] + [_prediction(s, "known_error") for s in summaries]]
    varied_tbl = ("<table class=\"varied\"><thead><tr><th>scenario field</th>"
                  + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "</tr></thead><tbody>"
                  + "".join("<tr><td class=\"text\">" + html.escape(r[0]) + "</td>"
                            + "".join(f'<td data-value="{data_value(v)}">{fmt(v)}</td>' for v in r[1:]) + "</tr>"
                            for r in varied_rows) + "</tbody></table>")
    base = summaries[0]
    sections = [
        section("What was compared", varied_tbl + "<details><summary>base scenario</summary>"
                + key_values(list(base.get("scenario", {}).items())) + "</details>", "varied"),
        section("Metrics side by side", note("Δ = (variant - base) / |base|, in percent.")
                + side_by_side(names, summaries), "metrics"),
        section("Latency CDFs", figure_div(cdf_fig, "fig-cdf") + note(cdf_note), "latency"),
        section("Key metrics", figure_div(metric_bars(names, summaries), "fig-bars"), "bars"),
    ]
    sc = base.get("scenario", {})
    subtitle = (f"{len(names)} configurations; varied: {', '.join(varied) or 'none'}; base {sc.get('model', '?')} "
                f"on {sc.get('hardware', '?')} - servesim {base.get('servesim_version', '?')}")
    return page(title, subtitle, sections, "compare")


def _prediction(summary: dict, key: str) -> str:
    return str(summary.get("provenance", {}).get("prediction", {}).get(key, "n/a"))


def render_compare(doc: dict) -> str:
    variants = doc.get("variants", [])
    names = ["base"] + [_vary_label(v.get("vary", {})) for v in variants]
    summaries = [doc["base"]] + [v["summary"] for v in variants]
    varied = list(doc.get("varied_keys") or sorted({k for v in variants for k in v.get("vary", {})}))
    return _page(names, summaries, percentile_cdfs(names, summaries),
                 "compare.json keeps summaries only: each line joins a run's p50, p90 and p99.",
                 varied, "servesim comparison")


def compare_from_runs(runs: list[RunData]) -> str:
    names = [r.name for r in runs]
    if len(set(names)) < len(names):
        names = [f"{i + 1}: {n}" for i, n in enumerate(names)]
    summaries = [r.summary for r in runs]
    scen = [s.get("scenario", {}) for s in summaries]
    varied = sorted(k for k in scen[0] if any(s.get(k) != scen[0].get(k) for s in scen[1:]))
    if all(r.requests is not None for r in runs):
        fig, cdf_note = rf.latency_cdfs(list(zip(names, [r.requests for r in runs]))), "Empirical CDFs of finished requests."
    else:
        fig, cdf_note = percentile_cdfs(names, summaries), "Some runs lack requests.csv: p50/p90/p99 points only."
    return _page(names, summaries, fig, cdf_note, varied, "servesim comparison of runs")
