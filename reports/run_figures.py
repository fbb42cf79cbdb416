"""Plotly figures of one run (and overlays of several): latency CDFs, throughput, batch size,
KV cache and preemptions over time, step time breakdown, roofline placement, eFLOPs.

Owns what is drawn and how it is labelled (every axis has units; log axes are labelled with real
values, reports/axes.py). Inputs are a run's digests (reports/digest.py: CDF points, time-binned
sums, a step sample; bounded whatever the run's size) and the summary dict. Returns None where
the data a figure needs is absent.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports.axes import log_range, log_ticks
from reports.digest import RequestDigest, StepDigest

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
BOUND_NAMES = ("compute", "memory", "overhead")
BOUND_COLORS = ("#d62728", "#1f77b4", "#7f7f7f")
LATENCIES = (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT"), ("e2el_ms", "E2E latency"))
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star")
TEMPLATE = "plotly_white"
LOG_SPAN = 20  # a latency axis is logarithmic when its values span more than this factor


def _layout(fig: go.Figure, title: str, height: int = 380, **kw) -> go.Figure:
    layout = {"title": {"text": title, "x": 0.01}, "template": TEMPLATE, "height": height,
              "margin": {"l": 70, "r": 30, "t": 60, "b": 55}, "legend": {"orientation": "h", "y": -0.22}}
    fig.update_layout(**{**layout, **kw})
    return fig


def _style(k: int) -> dict:
    """Run k's line: its color, and a dash + marker of its own, so equal runs stay visible (the base,
    k = 0, is drawn widest and solid underneath; each variant over it dashed)."""
    return {"line": {"color": COLORS[k % len(COLORS)], "dash": DASHES[k % len(DASHES)], "width": 3.5 if k == 0 else 2},
            "marker": {"symbol": SYMBOLS[k % len(SYMBOLS)], "size": 7, "maxdisplayed": 12}}


def latency_cdfs(runs: list[tuple[str, RequestDigest]]) -> go.Figure | None:
    """TTFT / TPOT / E2E empirical CDFs of finished requests, one line per run (log latency axis)."""
    runs = [(n, r) for n, r in runs if r is not None]
    if not runs:
        return None
    fig = make_subplots(rows=1, cols=3, subplot_titles=[f"{label} CDF" for _, label in LATENCIES],
                        horizontal_spacing=0.07)
    for col, (key, label) in enumerate(LATENCIES, start=1):
        points = [(name, *digest.cdf(key)) for name, digest in runs]
        values = np.concatenate([x for _, x, _ in points]) if points else np.zeros(0)
        values = values[values > 0]
        for k, (name, x, y) in enumerate(points):
            fig.add_trace(go.Scatter(
                x=x, y=y * 100, mode="lines+markers" if len(runs) > 1 else "lines", name=name, legendgroup=name,
                showlegend=col == 1, line={**_style(k)["line"], "shape": "hv"}, marker=_style(k)["marker"],
                hovertemplate=f"{label} %{{x:.4g}} ms<br>%{{y:.2f}}% of requests<extra>{name}</extra>",
            ), row=1, col=col)
        axis = {"title_text": f"{label} (ms)"}
        if len(values) and values.max() > LOG_SPAN * values.min():  # wide: a log axis with real-value ticks
            lo, hi = float(values.min()), float(values.max())
            axis.update(type="log", range=log_range(lo, hi), title_text=f"{label} (ms, log scale)", **log_ticks(lo, hi))
        fig.update_xaxes(row=1, col=col, **axis)
    fig.update_yaxes(title_text="requests at or below (%)", range=[0, 100.5], row=1, col=1)
    fig.update_yaxes(range=[0, 100.5])
    exact = all(d.exact for _, d in runs)
    title = "Latency CDFs (finished requests" + ("" if exact else "; quantiles from a 0.6%-wide log histogram") + ")"
    return _layout(fig, title, height=420)


def _x(edges: np.ndarray) -> np.ndarray:
    return (edges[:-1] + edges[1:]) / 2


def _bins_title(edges: np.ndarray) -> str:
    return f"{len(edges) - 1} bins of {edges[1] - edges[0]:.3g} s"


def throughput(steps: StepDigest | None, requests: RequestDigest | None) -> go.Figure | None:
    """Tokens per second (top) and finished requests per second (bottom), summed over replicas."""
    if steps is None:
        return None
    edges, x = steps.edges, _x(steps.edges)
    width = np.diff(edges)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.62, 0.38])
    for k, (key, name, dash) in enumerate((("num_logits", "output tokens/s", "solid"),
                                           ("num_prefill_tokens", "prefill tokens/s", "dot"))):
        fig.add_trace(go.Scatter(x=x, y=steps.sums[key] / width, name=name, line={"color": COLORS[2 * k], "dash": dash},
                                 hovertemplate="%{x:.1f} s: %{y:,.1f} tok/s<extra>" + name + "</extra>"), row=1, col=1)
    if requests is not None:
        fig.add_trace(go.Scatter(x=x, y=requests.finished / width, name="finished requests/s", line={"color": COLORS[1]},
                                 hovertemplate="%{x:.1f} s: %{y:.2f} req/s<extra></extra>"), row=2, col=1)
    fig.update_xaxes(title_text="simulated time (s)", row=2, col=1)
    fig.update_yaxes(title_text="tokens/s", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="requests/s", rangemode="tozero", row=2, col=1)
    return _layout(fig, f"Throughput over time ({_bins_title(edges)}, all replicas)",
                   height=460, legend={"orientation": "h", "y": -0.16})


def batch_size(steps: StepDigest | None) -> go.Figure | None:
    if steps is None:
        return None
    x = _x(steps.edges)
    fig = go.Figure()
    series = (("running sequences (time-weighted mean)", steps.mean("num_running"), "solid"),
              ("decode batch size (time-weighted mean)", steps.mean("num_decode"), "dot"),
              ("running sequences (max)", steps.maxima["num_running"], "dash"))
    for k, (name, y, dash) in enumerate(series):
        fig.add_trace(go.Scatter(x=x, y=y, name=name, line={"color": COLORS[k], "dash": dash},
                                 hovertemplate="%{x:.1f} s: %{y:.1f} sequences<extra></extra>"))
    fig.update_xaxes(title_text="simulated time (s)")
    fig.update_yaxes(title_text="batch size (sequences per replica)", rangemode="tozero")
    return _layout(fig, "Batch size over time (per replica)")


def kv_and_preemptions(steps: StepDigest | None, requests: RequestDigest | None) -> go.Figure | None:
    if steps is None:
        return None
    x = _x(steps.edges)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=x, y=steps.mean("kv_usage_pct"), name="KV usage (mean)", line={"color": COLORS[0]},
                             hovertemplate="%{x:.1f} s: %{y:.2f}%<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=steps.maxima["kv_usage_pct"], name="KV usage (max)",
                             line={"color": COLORS[0], "dash": "dot"}, hovertemplate="%{x:.1f} s: %{y:.2f}%<extra></extra>"))
    cum, name = None, "preemptions (cumulative)"
    if steps.preemptions_total is not None:  # running count at each step's end (exact times)
        cum = np.fmax.accumulate(np.nan_to_num(steps.preemptions_total, nan=0.0))
    elif requests is not None:  # older result files: each request's count at its finish time
        cum, name = np.cumsum(requests.preemptions), "preemptions (cumulative, by request finish time)"
    if cum is not None:
        fig.add_trace(go.Scatter(x=steps.edges, y=np.concatenate([[0.0], cum]), name=name,
                                 line={"color": COLORS[1], "shape": "hv"},
                                 hovertemplate="%{x:.1f} s: %{y:,.0f} preemptions<extra></extra>"), secondary_y=True)
    fig.update_xaxes(title_text="simulated time (s)")
    fig.update_yaxes(title_text="KV cache blocks used (%)", range=[0, 101], secondary_y=False)
    fixed = ({"tickmode": "auto", "nticks": 6} if cum is not None and cum[-1] > 0
             else {"range": [0, 1], "dtick": 1})  # all zero: no 0.2 ticks
    fig.update_yaxes(title_text="preemptions (count)", rangemode="tozero", secondary_y=True, showgrid=False,
                     tickformat=",d", **fixed)
    return _layout(fig, "KV cache usage and preemptions over time")


def step_breakdown(steps: StepDigest | None) -> go.Figure | None:
    """Share of step time per part (compute / memory / communication / overhead) per time bin."""
    if steps is None:
        return None
    x = _x(steps.edges)
    total = steps.sums["duration_s"]
    denom = np.where(total > 0, total, np.nan)
    fig = go.Figure()
    parts = (("compute_s", "compute-bound ops"), ("memory_s", "memory-bound ops"),
             ("comm_s", "communication"), ("overhead_s", "fixed overhead"))
    for k, (key, name) in enumerate(parts):
        fig.add_trace(go.Scatter(x=x, y=steps.sums[key] / denom * 100, name=name, stackgroup="parts", mode="lines",
                                 line={"width": 0.5, "color": ("#d62728", "#1f77b4", "#2ca02c", "#7f7f7f")[k]},
                                 hovertemplate="%{x:.1f} s: %{y:.1f}%<extra>" + name + "</extra>"))
    fig.update_xaxes(title_text="simulated time (s)")
    fig.update_yaxes(title_text="share of step time (%)", range=[0, 100])
    return _layout(fig, "Step time breakdown over time", legend={"orientation": "h", "y": -0.22, "traceorder": "normal"})


def roofline(steps: StepDigest | None, hardware: dict) -> go.Figure | None:
    """A uniform sample of steps: arithmetic intensity vs achieved FLOP/s (one rank), under the
    device roofline."""
    peak, bw = hardware.get("peak_flops"), hardware.get("memory_bandwidth_bytes_per_s")
    if steps is None or not peak or not bw:
        return None
    s = steps.sample
    ai = s["flops"] / s["bytes"]
    achieved = s["flops"] / s["duration_s"] / 1e12
    ridge = peak / bw
    lo = min(float(ai.min()) if len(ai) else ridge, ridge) / 4
    hi = max(float(ai.max()) if len(ai) else ridge, ridge) * 4
    xs = np.geomspace(lo, hi, 200)
    roof = np.minimum(peak, bw * xs) / 1e12
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=roof, name="device roofline", line={"color": "#111", "width": 2},
                             hovertemplate="%{x:.3g} FLOP/byte: %{y:.1f} TFLOP/s<extra>roofline</extra>"))
    bound = s["bound"]
    for b, name in enumerate(BOUND_NAMES):
        m = bound == b
        if m.any():
            fig.add_trace(go.Scatter(
                x=ai[m], y=achieved[m], mode="markers", name=f"{name}-bound steps",
                marker={"size": 4, "opacity": 0.5, "color": BOUND_COLORS[b]},
                hovertemplate="%{x:.3g} FLOP/byte: %{y:.2f} TFLOP/s<extra>" + name + "</extra>"))
    # The ridge as a trace: add_vline's annotation would take log10 units on this log axis.
    y_lo = min(float(roof.min()), float(achieved.min()) if len(achieved) else roof.min())
    fig.add_trace(go.Scatter(x=[ridge, ridge], y=[y_lo, peak / 1e12 * 1.5], mode="lines+text",
                             name=f"ridge {ridge:.0f} FLOP/byte", line={"dash": "dash", "color": "#555"},
                             text=["", f"ridge {ridge:.0f} FLOP/byte"], textposition="top center",
                             hovertemplate="ridge %{x:.1f} FLOP/byte<extra></extra>"))
    fig.update_xaxes(type="log", range=log_range(lo, hi, 1), title_text="arithmetic intensity (FLOP/byte)",
                     **log_ticks(lo, hi))
    fig.update_yaxes(type="log", range=log_range(y_lo, peak / 1e12 * 4, 1.1),
                     title_text="achieved compute (TFLOP/s per GPU)", **log_ticks(y_lo, peak / 1e12 * 4))
    total = steps.totals.get("sampleable", len(ai))
    shown = f"a uniform sample of {len(ai):,} of {total:,} steps" if len(ai) < total else f"{len(ai):,} steps"
    return _layout(fig, f"Roofline placement of steps ({shown}) on {hardware.get('name', 'the device')}")


EFLOPS_ROWS = (
    ("paper_intensity", "Kinetics count at I = 562.5 FLOP/byte (the paper's B200): the headline figure"),
    ("device_intensity", "the same count at this device's own ridge (its eFLOPs / peak = ideal roofline time)"),
    ("all_ops", "every op the cost model charged (prefill, weights, activations, logits), I = 562.5"),
)


def eflops(kinetics: dict | None) -> go.Figure | None:
    """eFLOPs per output token = compute + I x memory bytes (Kinetics, arXiv 2506.05333, sec. 3), as its
    two parts, for the three counts the summary holds (EFLOPS_ROWS says what each one counts)."""
    rows = [(key, label, (kinetics or {}).get(key) or {}) for key, label in EFLOPS_ROWS]
    rows = [(k, label, r) for k, label, r in rows if r.get("eflops_compute_per_output_token") is not None]
    if not rows:
        return None
    fig = go.Figure()
    labels = [label.split(":")[0] if ":" in label else label.split(" (")[0] for _, label, _ in rows]
    for part, name, color in (("compute", "compute FLOPs", COLORS[0]), ("memory", "I x memory bytes", COLORS[1])):
        ys = [r[f"eflops_{part}_per_output_token"] / 1e9 for _, _, r in rows]
        fig.add_trace(go.Bar(y=labels, x=ys, orientation="h", name=name, marker_color=color,
                             hovertemplate="%{x:,.1f} G eFLOPs per output token<extra>" + name + "</extra>"))
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title_text="eFLOPs per output token (billions, G)", rangemode="tozero")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Kinetics cost per output token: compute + intensity x memory traffic", height=300,
                   margin={"l": 420, "r": 30, "t": 60, "b": 55},
                   legend={"orientation": "h", "y": -0.3, "traceorder": "normal"})
