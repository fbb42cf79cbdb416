"""The fidelity table as printed by `servesim validate --published` and benchmarks/fidelity.py.

Owns the text layout only (fidelity.report() computes every figure): one line per point
(measured, predicted, error, the cost model that priced it), then summaries by split, device,
regime and engine, the cross-device speed ratios, failures and the excluded points with reasons.
"""
from __future__ import annotations

import math

SUMMARY_COLUMNS = ("points", "median |err|", "p90 |err|", "max |err|", "<=10%", ">25%", "speed ratio")


def _pct(v: float) -> str:
    return f"{v:+.1f}%" if math.isfinite(v) else "n/a"


def _stats_line(name: str, s: dict) -> str:
    if not s.get("simulated"):
        return f"  {name:28s} {s.get('points', 0):>6}  (none simulated)"
    return (f"  {name:28s} {s['simulated']:>6} {s['median_abs_error_pct']:>12.1f}% {s['p90_abs_error_pct']:>9.1f}%"
            f" {s['max_abs_error_pct']:>9.1f}% {s['within_10_pct']:>6} {s['beyond_25_pct']:>5} {s['median_speed_ratio']:>11.2f}x")


def format_fidelity(report: dict, *, points: bool = True) -> str:
    lines = []
    if points:
        lines.append(f"{'point':40s} {'split':11s} {'regime':14s} {'device':9s} {'engine':10s} {'metric':24s} "
                     f"{'measured':>10s} {'predicted':>10s} {'error':>8s}  cost model")
        for p in report["points"]:
            lines.append(f"{p['id']:40s} {p['split']:11s} {p['regime']:14s} {p['device']:9s} "
                         f"{p['engine']:10s} {p['metric']:24s} {p['measured']:>10.4g} {p['predicted']:>10.4g} "
                         f"{_pct(p['error_pct']):>8s}  {p['cost_model']}")
        lines.append("")
    header = f"  {'':28s} " + " ".join(f"{c:>{w}s}" for c, w in zip(SUMMARY_COLUMNS, (6, 13, 10, 10, 6, 5, 12)))
    lines += ["error = predicted / measured - 1; speed ratio = predicted speed / measured speed (>1: optimistic)",
              header, _stats_line("all simulated", report["overall"]), _stats_line("held out (never fitted)", report["holdout"])]
    for group, title in (("split", "by split"), ("device", "held out, by device (speed metrics)"),
                         ("regime", "held out, by regime"), ("engine", "held out, by engine (speed metrics)"),
                         ("architecture", "held out, by architecture class (speed metrics)")):
        lines.append(f" {title}:")
        lines += [_stats_line(k.split("=", 1)[1], v) for k, v in report["by"].items() if k.startswith(group + "=")]
    pairs, ps = report["cross_device"], report["cross_device_summary"]
    lines += ["", f"cross-device speedups (same workload on two devices): {ps.get('pairs', 0)} pairs"
              + (f", median |err| {ps['median_abs_error_pct']:.1f}%, max {ps['max_abs_error_pct']:.1f}%, "
                 f"within 10%: {ps['within_10_pct']}" if ps.get("pairs") else "")]
    for p in pairs if points else ():
        lines.append(f"  {p['pair'][:34]:34s} {p['metric'][:18]:18s} {p['devices']:22s} measured {p['measured_speedup']:6.2f}x "
                     f"predicted {p['predicted_speedup']:6.2f}x  {_pct(p['error_pct']):>8s}  ({p['split']})")
    if report["failed"]:
        lines += ["", f"not simulated ({len(report['failed'])}):"] + [f"  {f['id']}: {f['error']}" for f in report["failed"]]
    ex = report["excluded"]
    lines += ["", f"excluded ({ex['points']} published points the simulator cannot reproduce as published):"]
    lines += [f"  {n:4d}  {why}" for why, n in sorted(ex["reasons"].items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)
