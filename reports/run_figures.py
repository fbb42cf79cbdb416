"""Plotly figures of one run (and overlays of several): latency CDFs, throughput, batch size,
KV cache and preemptions over time, step time breakdown, roofline placement, eFLOPs.

Owns what is drawn and how it is labelled (every axis has units). Inputs are the numpy columns
of requests.csv / steps.csv and the summary dict; series go through reports/series.py so a
large run stays light. Returns None where the data a figure needs is absent.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports.series import (binned_max, binned_mean, binned_rate, binned_sum, bin_centers, ecdf_points,
                            step_points, subset_indices, time_edges)

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
BOUND_NAMES = ("compute", "memory", "overhead")
BOUND_COLORS = ("#d62728", "#1f77b4", "#7f7f7f")
LATENCIES = (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT"), ("e2el_ms", "E2E latency"))
TEMPLATE = "plotly_white"


def _layout(fig: go.Figure, title: str, height: int = 380, **kw) -> go.Figure:
    layout = {"title": {"text": title, "x": 0.01}, "template": TEMPLATE, "height": height,
              "margin": {"l": 70, "r": 30, "t": 60, "b": 55}, "legend": {"orientation": "h", "y": -0.22}}
    fig.update_layout(**{**layout, **kw})
    return fig


def latency_cdfs(runs: list[tuple[str, dict]]) -> go.Figure | None:
    """TTFT / TPOT / E2E empirical CDFs of finished requests, one line per run."""
    runs = [(n, r) for n, r in runs if r is not None]
    if not runs:
        return None
    fig = make_subplots(rows=1, cols=3, subplot_titles=[f"{label} CDF" for _, label in LATENCIES])
    for k, (name, req) in enumerate(runs):
        ok = req["status"] == "finished"
        for col, (key, label) in enumerate(LATENCIES, start=1):
            x, y = ecdf_points(req[key][ok])
            fig.add_trace(go.Scatter(
                x=x, y=y * 100, mode="lines", name=name, legendgroup=name, showlegend=col == 1,
                line={"color": COLORS[k % len(COLORS)], "shape": "hv"},
                hovertemplate=f"{label} %{{x:.2f}} ms<br>%{{y:.2f}}% of requests<extra>{name}</extra>",
            ), row=1, col=col)
            fig.update_xaxes(title_text=f"{label} (ms)", row=1, col=col)
    fig.update_yaxes(title_text="requests at or below (%)", range=[0, 100.5], row=1, col=1)
    return _layout(fig, "Latency CDFs (finished requests)", height=400)


def _edges(run_steps: dict, requests: dict | None) -> np.ndarray:
    end = float(np.max(run_steps["start_s"] + run_steps["duration_s"])) if len(run_steps["start_s"]) else 0.0
    if requests is not None and np.isfinite(requests["finish_s"]).any():
        end = max(end, float(np.nanmax(requests["finish_s"])))
    events = len(requests["finish_s"]) if requests is not None else len(run_steps["start_s"]) // 20
    return time_edges(end, events)


def throughput(steps: dict, requests: dict | None) -> go.Figure | None:
    """Tokens per second (top) and finished requests per second (bottom), summed over replicas."""
    if steps is None or not len(steps["start_s"]):
        return None
    edges = _edges(steps, requests)
    t, x = steps["start_s"] + steps["duration_s"], bin_centers(edges)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.62, 0.38])
    for k, (key, name, dash) in enumerate((("num_logits", "output tokens/s", "solid"),
                                           ("num_prefill_tokens", "prefill tokens/s", "dot"))):
        fig.add_trace(go.Scatter(x=x, y=binned_rate(t, steps[key], edges), name=name,
                                 line={"color": COLORS[2 * k], "dash": dash},
                                 hovertemplate="%{x:.1f} s: %{y:.1f} tok/s<extra>" + name + "</extra>"), row=1, col=1)
    if requests is not None:
        done = requests["status"] == "finished"
        fig.add_trace(go.Scatter(x=x, y=binned_rate(requests["finish_s"][done], np.ones(int(done.sum())), edges),
                                 name="finished requests/s", line={"color": COLORS[1]},
                                 hovertemplate="%{x:.1f} s: %{y:.2f} req/s<extra></extra>"), row=2, col=1)
    fig.update_xaxes(title_text="simulated time (s)", row=2, col=1)
    fig.update_yaxes(title_text="tokens/s", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="requests/s", rangemode="tozero", row=2, col=1)
    return _layout(fig, f"Throughput over time ({len(edges) - 1} bins of {edges[1]:.3g} s, all replicas)",
                   height=460, legend={"orientation": "h", "y": -0.16})


def batch_size(steps: dict, requests: dict | None) -> go.Figure | None:
    if steps is None or not len(steps["start_s"]):
        return None
    edges = _edges(steps, requests)
    t, d, x = steps["start_s"], steps["duration_s"], bin_centers(edges)
    fig = go.Figure()
    series = (("running sequences (time-weighted mean)", binned_mean(t, steps["num_running"], d, edges), "solid"),
              ("decode batch size (time-weighted mean)", binned_mean(t, steps["num_decode"], d, edges), "dot"),
              ("running sequences (max)", binned_max(t, steps["num_running"], edges), "dash"))
    for k, (name, y, dash) in enumerate(series):
        fig.add_trace(go.Scatter(x=x, y=y, name=name, line={"color": COLORS[k], "dash": dash},
                                 hovertemplate="%{x:.1f} s: %{y:.1f} sequences<extra></extra>"))
    fig.update_xaxes(title_text="simulated time (s)")
    fig.update_yaxes(title_text="batch size (sequences per replica)", rangemode="tozero")
    return _layout(fig, "Batch size over time (per replica)")


def kv_and_preemptions(steps: dict, requests: dict | None) -> go.Figure | None:
    if steps is None or not len(steps["start_s"]):
        return None
    edges = _edges(steps, requests)
    t, x = steps["start_s"], bin_centers(edges)
    usage = steps["kv_blocks_used"] / np.maximum(steps["kv_blocks_total"], 1) * 100
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=x, y=binned_mean(t, usage, steps["duration_s"], edges), name="KV usage (mean)",
                             line={"color": COLORS[0]}, hovertemplate="%{x:.1f} s: %{y:.2f}%<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=binned_max(t, usage, edges), name="KV usage (max)",
                             line={"color": COLORS[0], "dash": "dot"},
                             hovertemplate="%{x:.1f} s: %{y:.2f}%<extra></extra>"))
    if "preemptions_total" in steps:  # running count at each step's end (exact times)
        px, py = step_points(np.concatenate([[0.0], t + steps["duration_s"]]),
                             np.concatenate([[0], steps["preemptions_total"]]))
        fig.add_trace(go.Scatter(x=px, y=py, name="preemptions (cumulative)", line={"color": COLORS[1], "shape": "hv"},
                                 hovertemplate="%{x:.1f} s: %{y} preemptions<extra></extra>"), secondary_y=True)
    elif requests is not None:  # older result files: each request's count at its finish time
        fin = np.isfinite(requests["finish_s"])
        order = np.argsort(requests["finish_s"][fin], kind="stable")
        ft = requests["finish_s"][fin][order]
        cum = np.cumsum(requests["num_preemptions"][fin][order])
        px, py = step_points(np.concatenate([[0.0], ft]), np.concatenate([[0], cum]))
        fig.add_trace(go.Scatter(x=px, y=py, name="preemptions (cumulative, by request finish time)",
                                 line={"color": COLORS[1], "shape": "hv"},
                                 hovertemplate="%{x:.1f} s: %{y} preemptions<extra></extra>"), secondary_y=True)
    fig.update_xaxes(title_text="simulated time (s)")
    fig.update_yaxes(title_text="KV cache blocks used (%)", range=[0, 101], secondary_y=False)
    any_preemption = (bool(steps["preemptions_total"][-1] > 0) if "preemptions_total" in steps
                      else _any_preemption(requests))
    fixed = {} if any_preemption else {"range": [0, 1], "dtick": 1}  # all zero: no 0.2 ticks
    fig.update_yaxes(title_text="preemptions (count)", rangemode="tozero", secondary_y=True, showgrid=False,
                     **fixed)
    return _layout(fig, "KV cache usage and preemptions over time")


def _any_preemption(requests: dict | None) -> bool:
    return requests is not None and bool(np.any(requests["num_preemptions"] > 0))


def step_breakdown(steps: dict, requests: dict | None) -> go.Figure | None:
    """Share of step time per part (compute / memory / communication / overhead) per time bin."""
    if steps is None or not len(steps["start_s"]):
        return None
    edges = _edges(steps, requests)
    t, x = steps["start_s"], bin_centers(edges)
    total = binned_sum(t, steps["duration_s"], edges)
    denom = np.where(total > 0, total, np.nan)
    fig = go.Figure()
    parts = (("compute_s", "compute-bound ops"), ("memory_s", "memory-bound ops"),
             ("comm_s", "communication"), ("overhead_s", "fixed overhead"))
    for k, (key, name) in enumerate(parts):
        share = binned_sum(t, steps[key], edges) / denom * 100
        fig.add_trace(go.Scatter(x=x, y=share, name=name, stackgroup="parts", mode="lines",
                                 line={"width": 0.5, "color": ("#d62728", "#1f77b4", "#2ca02c", "#7f7f7f")[k]},
                                 hovertemplate="%{x:.1f} s: %{y:.1f}%<extra>" + name + "</extra>"))
    fig.update_xaxes(title_text="simulated time (s)")
    fig.update_yaxes(title_text="share of step time (%)", range=[0, 100])
    return _layout(fig, "Step time breakdown over time", legend={"orientation": "h", "y": -0.22,
                                                                  "traceorder": "normal"})


def roofline(steps: dict, hardware: dict) -> go.Figure | None:
    """Each step's arithmetic intensity vs achieved FLOP/s (one rank), under the device roofline."""
    peak, bw = hardware.get("peak_flops"), hardware.get("memory_bandwidth_bytes_per_s")
    if steps is None or not peak or not bw:
        return None
    ok = (steps["bytes"] > 0) & (steps["duration_s"] > 0)
    idx = np.flatnonzero(ok)[subset_indices(int(ok.sum()))]
    ai = steps["flops"][idx] / steps["bytes"][idx]
    achieved = steps["flops"][idx] / steps["duration_s"][idx] / 1e12
    ridge = peak / bw
    lo = min(float(ai.min()) if len(ai) else ridge, ridge) / 4
    hi = max(float(ai.max()) if len(ai) else ridge, ridge) * 4
    xs = np.geomspace(lo, hi, 200)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=np.minimum(peak, bw * xs) / 1e12, name="device roofline",
                             line={"color": "#111", "width": 2},
                             hovertemplate="%{x:.3g} FLOP/byte: %{y:.1f} TFLOP/s<extra>roofline</extra>"))
    bound = steps["bound"][idx].astype(int)
    for b, name in enumerate(BOUND_NAMES):
        m = bound == b
        if m.any():
            fig.add_trace(go.Scatter(
                x=ai[m], y=achieved[m], mode="markers", name=f"{name}-bound steps",
                marker={"size": 4, "opacity": 0.5, "color": BOUND_COLORS[b]},
                hovertemplate="%{x:.3g} FLOP/byte: %{y:.2f} TFLOP/s<extra>" + name + "</extra>"))
    # The ridge as a trace: add_vline's annotation would take log10 units on this log axis.
    fig.add_trace(go.Scatter(x=[ridge, ridge], y=[bw * lo / 1e12, peak / 1e12 * 1.5], mode="lines+text",
                             name=f"ridge {ridge:.0f} FLOP/byte", line={"dash": "dash", "color": "#555"},
                             text=["", f"ridge {ridge:.0f} FLOP/byte"], textposition="top center",
                             hovertemplate="ridge %{x:.1f} FLOP/byte<extra></extra>"))
    fig.update_xaxes(type="log", dtick="D2", title_text="arithmetic intensity (FLOP/byte)")
    fig.update_yaxes(type="log", dtick="D2", title_text="achieved compute (TFLOP/s per GPU)")
    shown = f"{len(idx):,} of {int(ok.sum()):,} steps" if len(idx) < ok.sum() else f"{len(idx):,} steps"
    return _layout(fig, f"Roofline placement of steps ({shown}) on {hardware.get('name', 'the device')}")


def eflops(kinetics: dict | None) -> go.Figure | None:
    """Kinetics eFLOPs = compute + I x memory (formulas.md), as its two parts: total and per token."""
    if not kinetics or "eflops_compute" not in kinetics or "eflops_memory" not in kinetics:
        return None
    fig = make_subplots(rows=1, cols=2, subplot_titles=["whole run", "per output token"])
    pairs = (("eflops_compute", "compute"), ("eflops_memory", "memory (I x bytes)"))
    for k, (key, name) in enumerate(pairs):
        per = kinetics.get(f"{key}_per_output_token")
        fig.add_trace(go.Bar(x=["eFLOPs"], y=[kinetics[key]], name=name, marker_color=COLORS[k],
                             legendgroup=name, hovertemplate="%{y:.4g} eFLOPs<extra>" + name + "</extra>"),
                      row=1, col=1)
        if per is not None:
            fig.add_trace(go.Bar(x=["eFLOPs per output token"], y=[per], name=name, marker_color=COLORS[k],
                                 legendgroup=name, showlegend=False,
                                 hovertemplate="%{y:.4g} eFLOPs/token<extra>" + name + "</extra>"), row=1, col=2)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="effective FLOPs (eFLOPs)", row=1, col=1)
    fig.update_yaxes(title_text="eFLOPs per output token", row=1, col=2)
    return _layout(fig, "Kinetics cost: eFLOPs, compute vs memory")
