"""Log-axis ticks that read as real values: 1-2-5 steps (or decades on a wide range), each labelled
with its value ("0.05", "50", "200", "1k", "20k"), plus any value a chart marks (an SLO line).

Owns the tick choice only. Plotly's own log ticks (dtick "D2") label the minor ticks "2" and "5"
without their decade, so a 50 ms line sits beside a "5"; fixed tickvals/ticktext avoid that.
"""
from __future__ import annotations

import math

STEPS = (1, 2, 5)
MAX_DECADES_FOR_125 = 2.5


def tick_text(v: float) -> str:
    """The value without an exponent: 0.05, 2, 50, 500; thousands and millions as 1k, 20k, 1M."""
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    if v >= 1:
        return f"{v:,.0f}" if v == int(v) else f"{v:,.3g}"
    return f"{v:.6f}".rstrip("0").rstrip(".")


def log_ticks(lo: float, hi: float, marks=()) -> dict:
    """{"tickvals", "ticktext"} for a log axis over [lo, hi] (positive values), with `marks` added."""
    lo, hi = max(lo, 1e-12), max(hi, lo * 1.0001)
    d0, d1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = STEPS if math.log10(hi / lo) <= MAX_DECADES_FOR_125 else (1,)
    vals = [m * 10.0**d for d in range(d0, d1 + 1) for m in steps]
    vals = [v for v in vals if lo / 1.0001 <= v <= hi * 1.0001]
    if len(vals) < 2:  # a narrow range: its ends
        vals = sorted({float(f"{lo:.2g}"), float(f"{hi:.2g}")})
    vals = sorted(set(vals) | {float(m) for m in marks if m and m > 0})
    return {"tickvals": vals, "ticktext": [tick_text(v) for v in vals]}


def log_range(lo: float, hi: float, pad: float = 1.15) -> list[float]:
    """Plotly's log-axis range (log10 units) around [lo, hi] with a little room."""
    return [math.log10(max(lo, 1e-12) / pad), math.log10(max(hi, lo) * pad)]
