"""The comparison report: a base and its variants, metrics side by side with deltas, where each
run's numbers come from (cost model, engine, known error, power, price), latency CDFs overlaid and
bar charts of the key metrics.

Owns the compare page for a compare.json ({"kind": "compare", "base": summary, "variants":
[{"vary": {...}, "summary": summary}], "varied_keys": [...], optional "run_dirs": [dirs relative
to the file, base first, each a `simulate --out` directory]}) and for several run directories
(first = base). CDFs are drawn from the per-request tables (requests.csv / requests.parquet) when
they are there; a compare.json without them shows each run's p50/p90/p99 as markers, said so.
"""
from __future__ import annotations

import html
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports import run_figures as rf
from reports.page import data_value, figure_div, fmt, key_values, note, page, section
from reports.results import RunData, request_digest, section_of
from reports.run_report import HEADLINE, LATENCY_ROWS
from reports.tables import find_table

EXTRA_ROWS = (("kinetics.paper_intensity", "eflops_per_output_token", "Kinetics eFLOPs per output token (G)", 1e-9),
              ("energy", "j_per_output_token", "energy per output token (J)", 1),
              ("price", "usd_per_million_output_tokens", "price per 1M output tokens (USD)", 1),
              ("overload", "offered_request_rate", "offered request rate (req/s)", 1),
              ("overload", "sustainable_request_rate", "sustainable request rate (req/s; see the run reports)", 1))
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
    for sec, key, label, scale in EXTRA_ROWS:
        values = [section_of(s, sec).get(key) for s in summaries]
        if any(v is not None for v in values):
            rows.append((f"{sec}.{key}", label, scale, values))
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


OFFSET_PCT = 1.2  # vertical spread of the variants' markers, in percentile points (drawing only)


def percentile_points(names: list[str], summaries: list[dict]) -> go.Figure:
    """Without per-request data: each run's p50 / p90 / p99 as separate markers (not a line: three
    points are not a CDF): the base an open ring drawn last, each variant its own symbol, lifted
    by OFFSET_PCT steps so equal values stay visible (hover gives the true percentile)."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=[f"{label} percentiles" for _, label in rf.LATENCIES])
    order = list(range(1, len(names))) + [0]  # the base last, as an open ring around any equal variant
    for k in order:
        name, s = names[k], summaries[k]
        m = s.get("metrics", {})
        style = rf._style(k)
        marker = ({"color": style["line"]["color"], "symbol": "circle-open", "size": 22, "line": {"width": 3}}
                  if k == 0 else {"color": style["line"]["color"], "symbol": style["marker"]["symbol"], "size": 11})
        for col, (key, label) in enumerate(rf.LATENCIES, start=1):
            xs = [m.get(f"{p}_{key}") for p in ("median", "p90", "p99")]
            lift = 0.0 if k == 0 else (k - 1 - (len(names) - 2) / 2) * OFFSET_PCT  # equal variants side by side
            fig.add_trace(go.Scatter(x=xs, y=[p + lift for p in (50, 90, 99)], mode="markers", name=name,
                                     legendgroup=name, showlegend=col == 1, marker=marker, customdata=[50, 90, 99],
                                     hovertemplate=f"{label} %{{x:.2f}} ms at p%{{customdata}}<extra>{name}</extra>"),
                          row=1, col=col)
            fig.update_xaxes(title_text=f"{label} (ms)", row=1, col=col)
    fig.update_yaxes(title_text="percentile (%)", range=[0, 100.5], tickvals=[0, 25, 50, 75, 90, 99], row=1, col=1)
    fig.update_yaxes(range=[0, 100.5], tickvals=[0, 25, 50, 75, 90, 99])
    return rf._layout(fig, "Latency percentiles p50 / p90 / p99 (the summaries hold no more)", height=400)


def metric_bars(names: list[str], summaries: list[dict]) -> go.Figure:
    """Horizontal bars, one row per configuration (labels read across, not rotated)."""
    fig = make_subplots(rows=1, cols=len(BARS), subplot_titles=[label for _, label in BARS], shared_yaxes=True,
                        horizontal_spacing=0.04)
    colors = [rf.COLORS[i % len(rf.COLORS)] for i in range(len(names))]
    for col, (key, label) in enumerate(BARS, start=1):
        xs = [s.get("metrics", {}).get(key) for s in summaries]
        fig.add_trace(go.Bar(y=names, x=xs, orientation="h", marker_color=colors, showlegend=False,
                             text=[fmt(x) for x in xs], textposition="auto",
                             hovertemplate="%{y}: %{x:.4g}<extra>" + label + "</extra>"), row=1, col=col)
        fig.update_xaxes(title_text=label, rangemode="tozero", row=1, col=col)
    fig.update_yaxes(autorange="reversed")
    left = min(480, 40 + 7 * max(len(n) for n in names))
    return rf._layout(fig, "Key metrics per configuration", height=max(300, 120 + 44 * len(names)),
                      margin={"l": left, "r": 30, "t": 70, "b": 55})


PROVENANCE_ROWS = (("cost model", "prediction", "label"), ("serving engine", "prediction", "engine"),
                   ("known error", "prediction", "known_error"), ("kernel error", "prediction", "kernels_known_error"),
                   ("power model", "prediction", "power"), ("hardware", "hardware", "display_name"),
                   ("price (USD per GPU-hour)", "hardware", "price_usd_per_hour"),
                   ("price as of", "hardware", "price_as_of"))


def provenance_table(names: list[str], summaries: list[dict]) -> str:
    """Where each run's numbers come from; a row the same for every run is shown once."""
    rows = []
    for label, sec, key in PROVENANCE_ROWS:
        values = [s.get("provenance", {}).get(sec, {}).get(key) for s in summaries]
        if all(v is None for v in values):
            continue
        rows.append((label, values[:1] if all(v == values[0] for v in values) else values))
    versions = [s.get("servesim_version") for s in summaries]
    rows.append(("servesim version", versions[:1] if len(set(versions)) == 1 else versions))
    body = "".join(
        f'<tr><th>{html.escape(label)}</th>'
        + (f'<td class="text" colspan="{len(names)}" data-value="{data_value(vals[0])}">'
           f'{fmt(vals[0])} <span class="note">(all runs)</span></td>' if len(vals) == 1 else
           "".join(f'<td class="text" data-value="{data_value(v)}">{fmt(v)}</td>' for v in vals)) + "</tr>"
        for label, vals in rows)
    head = "<tr><th>provenance</th>" + "".join(f"<th class=text>{html.escape(n)}</th>" for n in names) + "</tr>"
    return f'<table class="compare-provenance"><thead>{head}</thead><tbody>{body}</tbody></table>'


def _vary_label(vary: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in vary.items()) or "variant"


def _page(names: list[str], summaries: list[dict], cdf_fig, cdf_note: str, varied: list[str], title: str) -> str:
    varied_rows = [[k] + [s.get("scenario", {}).get(k) for s in summaries] for k in varied]
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
        section("Where the numbers come from", provenance_table(names, summaries), "provenance"),
        section("Latency CDFs", figure_div(cdf_fig, "fig-cdf") + note(cdf_note), "latency"),
        section("Key metrics", figure_div(metric_bars(names, summaries), "fig-bars"), "bars"),
    ]
    sc = base.get("scenario", {})
    subtitle = (f"{len(names)} configurations; varied: {', '.join(varied) or 'none'}; base {sc.get('model', '?')} "
                f"on {sc.get('hardware', '?')} - servesim {base.get('servesim_version', '?')}")
    return page(title, subtitle, sections, "compare")


def render_compare(doc: dict) -> str:
    variants = doc.get("variants", [])
    names = ["base"] + [_vary_label(v.get("vary", {})) for v in variants]
    summaries = [doc["base"]] + [v["summary"] for v in variants]
    varied = list(doc.get("varied_keys") or sorted({k for v in variants for k in v.get("vary", {})}))
    runs = run_dirs(doc)
    if runs is not None:
        digests = [request_digest(RunData(name=n, summary=s, requests_path=find_table(d, "requests")))
                   for n, s, d in zip(names, summaries, runs)]
        fig = rf.latency_cdfs(list(zip(names, digests)))
        return _page(names, summaries, fig, CDF_NOTE, varied, "servesim comparison")
    return _page(names, summaries, percentile_points(names, summaries),
                 "This compare.json has no per-request tables beside it, so only each run's p50, p90 and p99 are "
                 "drawn: markers, not lines; variants are spread by a percentile point or so to stay visible, "
                 "the base is the open ring. Per-run requests tables beside compare.json give full CDFs.",
                 varied, "servesim comparison")


CDF_NOTE = ("Empirical CDFs of finished requests from each run's per-request table. Lines differ in dash and "
            "marker, so a variant equal to the base lies on it without hiding it.")


def run_dirs(doc: dict) -> list[Path] | None:
    """The per-run directories a compare.json names in "run_dirs" (base first, relative to the file),
    when every one of them has a requests table; else None."""
    rel, root = doc.get("run_dirs"), doc.get("_source_dir")
    if not rel or root is None or len(rel) != 1 + len(doc.get("variants", [])):
        return None
    dirs = [Path(root) / d for d in rel]
    return dirs if all(find_table(d, "requests") is not None for d in dirs) else None


def compare_from_runs(runs: list[RunData]) -> str:
    names = [r.name for r in runs]
    if len(set(names)) < len(names):
        names = [f"{i + 1}: {n}" for i, n in enumerate(names)]
    summaries = [r.summary for r in runs]
    scen = [s.get("scenario", {}) for s in summaries]
    varied = sorted(k for k in scen[0] if any(s.get(k) != scen[0].get(k) for s in scen[1:]))
    if all(r.has_requests for r in runs):
        fig = rf.latency_cdfs(list(zip(names, [request_digest(r) for r in runs])))
        return _page(names, summaries, fig, CDF_NOTE, varied, "servesim comparison of runs")
    return _page(names, summaries, percentile_points(names, summaries),
                 "Some runs lack a per-request table: p50 / p90 / p99 markers only.", varied,
                 "servesim comparison of runs")
