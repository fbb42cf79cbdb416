"""The capacity-plan report: Pareto frontier of price vs latency with the SLO lines, the max
sustainable rate per configuration, the rate probes, and the candidates table.

Owns the plan page for a plan.json ({"kind": "plan", "target_rate", "slo": {"ttft_ms",
"tpot_ms", "percentile"}, "candidates": [...], "pareto": [indices], "cheapest": index|null}).
"""
from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports import run_figures as rf
from reports.axes import log_range, log_ticks
from reports.page import card, figure_div, key_values, note, page, section, table

LATENCY_AXES = (("p99_ttft_ms", "ttft_ms", "TTFT"), ("p99_tpot_ms", "tpot_ms", "TPOT"))


def config_label(c: dict) -> str:
    cfg = c.get("config", {})
    return ", ".join(f"{k}={v}" for k, v in cfg.items()) or "config"


def num(x) -> str:
    """A number as a person writes it: 500 not 500.0, 99 not 99.0, 12.5 stays 12.5."""
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return "?" if x is None else str(x)


def replicas_text(n) -> str:
    return f"{n} replica" + ("" if n == 1 else "s")


def _hover(i: int, c: dict) -> str:
    lines = [f"<b>#{i}: {html.escape(config_label(c))}</b>",
             f"price: {c.get('price_usd_per_hour')} USD/h for {replicas_text(c.get('replicas_needed'))}",
             f"max rate per replica: {c.get('max_rate_per_replica')} req/s",
             f"p99 TTFT {c.get('p99_ttft_ms')} ms, p99 TPOT {c.get('p99_tpot_ms')} ms",
             "feasible" if c.get("feasible") else f"infeasible: {html.escape(str(c.get('reason') or ''))}"]
    return "<br>".join(lines)


def pareto_figure(doc: dict) -> go.Figure:
    cands, slo = doc.get("candidates", []), doc.get("slo", {})
    pareto, cheapest = list(doc.get("pareto", [])), doc.get("cheapest")
    pct = num(slo.get("percentile", 99))
    fig = make_subplots(rows=1, cols=2, subplot_titles=[f"price vs p{pct} {lab}" for _, _, lab in LATENCY_AXES])
    groups = (("feasible", lambda i, c: c.get("feasible") and i not in pareto, "#1f77b4", "circle"),
              ("Pareto frontier", lambda i, c: i in pareto, "#2ca02c", "diamond"),
              ("infeasible", lambda i, c: not c.get("feasible"), "#9aa5b1", "x"))
    for col, (key, slo_key, label) in enumerate(LATENCY_AXES, start=1):
        for name, pick, color, symbol in groups:
            idx = [i for i, c in enumerate(cands) if pick(i, c)]
            if name == "Pareto frontier":
                idx.sort(key=lambda i: cands[i].get("price_usd_per_hour") or 0)
            fig.add_trace(go.Scatter(
                x=[cands[i].get("price_usd_per_hour") for i in idx], y=[cands[i].get(key) for i in idx],
                mode="lines+markers" if name == "Pareto frontier" else "markers", name=name, legendgroup=name,
                showlegend=col == 1, marker={"color": color, "symbol": symbol, "size": 10},
                line={"color": color, "dash": "dot"}, text=[_hover(i, cands[i]) for i in idx],
                hovertemplate="%{text}<extra></extra>"), row=1, col=col)
        if cheapest is not None:
            c = cands[cheapest]
            fig.add_trace(go.Scatter(x=[c.get("price_usd_per_hour")], y=[c.get(key)], mode="markers",
                                     name="cheapest feasible", legendgroup="cheapest", showlegend=col == 1,
                                     marker={"color": "#d62728", "symbol": "star", "size": 16},
                                     text=[_hover(cheapest, c)], hovertemplate="%{text}<extra></extra>"),
                          row=1, col=col)
        if slo.get(slo_key) is not None:
            fig.add_hline(y=slo[slo_key], line={"dash": "dash", "color": "#d62728"}, row=1, col=col,
                          annotation_text=f"SLO p{pct} {label} {num(slo[slo_key])} ms", annotation_position="top right")
        fig.update_xaxes(title_text="price (USD/hour, all replicas)", row=1, col=col)
        fig.update_yaxes(title_text=f"p{pct} {label} (ms)", row=1, col=col)
    return rf._layout(fig, f"Price vs latency at {num(doc.get('target_rate'))} req/s: Pareto frontier and SLOs",
                      height=460)


def rate_figure(doc: dict) -> go.Figure:
    cands = doc.get("candidates", [])
    labels = [f"#{i} {config_label(c)}" for i, c in enumerate(cands)]
    colors = ["#2ca02c" if c.get("feasible") else "#9aa5b1" for c in cands]
    fig = go.Figure(go.Bar(
        y=labels, x=[c.get("max_rate_per_replica") for c in cands], orientation="h", marker_color=colors,
        text=[replicas_text(c.get("replicas_needed")) if c.get("replicas_needed") else "infeasible" for c in cands],
        textposition=["inside" if (c.get("max_rate_per_replica") or 0) > 0 else "outside" for c in cands],
        customdata=[_hover(i, c) for i, c in enumerate(cands)],
        hovertemplate="%{customdata}<extra></extra>", showlegend=False))
    fig.update_xaxes(title_text="max sustainable rate per replica (req/s, within SLO)", rangemode="tozero")
    fig.update_yaxes(title_text="configuration", autorange="reversed")
    return rf._layout(fig, "Max sustainable rate per configuration (bar label: replicas for the target rate)",
                      height=max(300, 60 + 36 * len(cands)), margin={"l": 260, "r": 30, "t": 60, "b": 55})


def probes_figure(doc: dict) -> go.Figure | None:
    cands, slo = doc.get("candidates", []), doc.get("slo", {})
    if not any(c.get("probes") for c in cands):
        return None
    fig = make_subplots(rows=1, cols=2, subplot_titles=[f"p99 {lab} per probed rate" for _, _, lab in LATENCY_AXES])
    for k, c in enumerate(cands):
        probes = sorted(c.get("probes") or [], key=lambda p: p.get("rate", 0))
        name = f"#{k} {config_label(c)}"
        for col, (key, slo_key, label) in enumerate(LATENCY_AXES, start=1):
            fig.add_trace(go.Scatter(
                x=[p.get("rate") for p in probes], y=[p.get(key) for p in probes], mode="lines+markers",
                name=name, legendgroup=name, showlegend=col == 1, line={"color": rf.COLORS[k % len(rf.COLORS)]},
                marker={"symbol": ["circle" if p.get("ok") else "x" for p in probes], "size": 8},
                hovertemplate=f"%{{x}} req/s: p99 {label} %{{y:.2f}} ms<extra>{html.escape(name)}</extra>"),
                row=1, col=col)
            fig.update_xaxes(title_text="offered rate per replica (req/s)", row=1, col=col)
    rates = [p.get("rate") for c in cands for p in (c.get("probes") or []) if p.get("rate") is not None]
    for col, (key, slo_key, label) in enumerate(LATENCY_AXES, start=1):
        ys = [p.get(key) for c in cands for p in (c.get("probes") or []) if (p.get(key) or 0) > 0]
        marks = [slo[slo_key]] if slo.get(slo_key) else []
        if ys:  # a log axis labelled with real values (50 reads "50", not "5"), the SLO among its ticks
            lo, hi = min(ys + marks), max(ys + marks)
            fig.update_yaxes(type="log", range=log_range(lo, hi), **log_ticks(lo, hi, marks), row=1, col=col)
        fig.update_yaxes(title_text=f"p99 {label} (ms, log scale)", row=1, col=col)
    for col, (_, slo_key, label) in enumerate(LATENCY_AXES, start=1):
        if slo.get(slo_key) is not None and rates:
            # a trace, not add_hline: hline annotations take log10 units on a log axis
            fig.add_trace(go.Scatter(x=[min(rates), max(rates)], y=[slo[slo_key]] * 2, mode="lines",
                                     name="SLO", legendgroup="SLO", showlegend=col == 1,
                                     line={"dash": "dash", "color": "#d62728"},
                                     hovertemplate=f"SLO {label} {num(slo[slo_key])} ms<extra></extra>"), row=1, col=col)
    return rf._layout(fig, "Rate probes per configuration (o within SLO, x violates)", height=460)


def candidates_table(doc: dict) -> str:
    cands, pareto = doc.get("candidates", []), set(doc.get("pareto", []))
    rows = [[f"#{i} {config_label(c)}", c.get("max_rate_per_replica"), c.get("replicas_needed"),
             _replicas_range(c), c.get("price_usd_per_hour"), c.get("p99_ttft_ms"), c.get("p99_tpot_ms"),
             "yes" if c.get("feasible") else "no", "yes" if i in pareto else "", _cost_model(c), c.get("reason") or ""]
            for i, c in enumerate(cands)]
    return table(["configuration", "max rate per replica (req/s)", "replicas needed", "replicas (p90 error range)",
                  "price (USD/h)", "p99 TTFT (ms)", "p99 TPOT (ms)", "feasible", "Pareto", "cost model (known error)",
                  "reason"], rows, cls="candidates")


def _replicas_range(c: dict) -> str:
    u = c.get("uncertainty")
    return "{}-{}".format(*u["replicas_range"]) if u else ""


def _cost_model(c: dict) -> str:
    p = c.get("prediction") or {}
    return f"{p.get('label', '')} + engine {p.get('engine', '')}; {p.get('known_error', '')}" if p else ""


def render_plan(doc: dict) -> str:
    cands, slo, cheapest = doc.get("candidates", []), doc.get("slo", {}), doc.get("cheapest")
    best = cands[cheapest] if cheapest is not None else None
    cards = [card("target rate", "target_rate", doc.get("target_rate"), "req/s"),
             card("SLO TTFT", "slo.ttft_ms", slo.get("ttft_ms"), "ms"),
             card("SLO TPOT", "slo.tpot_ms", slo.get("tpot_ms"), "ms"),
             card("candidates", "num_candidates", len(cands)),
             card("feasible", "num_feasible", sum(bool(c.get("feasible")) for c in cands))]
    if best is not None:
        cards += [card("cheapest: price", "cheapest.price_usd_per_hour", best.get("price_usd_per_hour"), "USD/h"),
                  card("cheapest: replicas", "cheapest.replicas_needed", best.get("replicas_needed"))]
    verdict = (note(f"Cheapest feasible: #{cheapest} {config_label(best)}.") if best is not None
               else note("No configuration meets the SLOs at the target rate."))
    probes = probes_figure(doc)
    common = {k: v for k, v in (cands[0].get("scenario", {}) if cands else {}).items()}
    sections = [
        section("Plan", f'<div class="cards">{"".join(cards)}</div>' + verdict, "headline"),
        section("Pareto frontier: price vs latency", figure_div(pareto_figure(doc), "fig-pareto")
                + note("Hover a point for its configuration. Dashed red lines: the SLOs. Candidates without a "
                       "price (no replica count meets the SLOs) are listed in the table, not drawn."), "pareto"),
        section("Max sustainable rate per configuration", figure_div(rate_figure(doc), "fig-rates")
                + (figure_div(probes, "fig-probes") if probes is not None else ""), "rates"),
        section("Candidates", candidates_table(doc)
                + (f"<details><summary>scenario of candidate #0</summary>{key_values(list(common.items()))}</details>"
                   if common else ""), "candidates"),
    ]
    subtitle = (f"target {num(doc.get('target_rate'))} req/s, SLO p{num(slo.get('percentile', 99))} TTFT "
                f"{num(slo.get('ttft_ms'))} ms / TPOT {num(slo.get('tpot_ms'))} ms - servesim "
                f"{doc.get('servesim_version', '?')}")
    return page("servesim capacity plan", subtitle, sections, "plan")
