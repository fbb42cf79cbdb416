"""Human-readable rendering of a compare document (the `servesim compare` table).

Owns the column list (metric paths into a build_summary dict) and the delta arithmetic: for each
variant, value - base and (value - base) / base. Columns whose section is not in the summary
(Kinetics eFLOPs, energy, price, added by other parts of build_summary) print "n/a".
"""
from __future__ import annotations

import math

from simulator.cost import short_label

# header -> path into the summary dict; the first path present wins
COLUMNS = (
    ("req/s", (("metrics", "request_throughput"),)),
    ("out tok/s", (("metrics", "output_throughput"),)),
    ("p50 TTFT ms", (("metrics", "median_ttft_ms"),)),
    ("p99 TTFT ms", (("metrics", "p99_ttft_ms"),)),
    ("p99 TPOT ms", (("metrics", "p99_tpot_ms"),)),
    ("p99 ITL ms", (("metrics", "p99_itl_ms"),)),
    ("goodput req/s", (("metrics", "request_goodput"),)),
    ("USD/Mtok", (("price", "usd_per_million_output_tokens"),)),
    ("J/tok", (("energy", "j_per_output_token"),)),
    ("eFLOPs/tok", (("kinetics", "paper_intensity", "eflops_per_output_token"),)),
)
PREDICTION = ("provenance", "prediction")  # each run's cost model and known error (cost/known_error.py)
OPTIONAL = {"goodput req/s"}  # shown only when some run has SLOs


def metric(summary: dict, paths) -> float | None:
    for path in paths:
        node = summary
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, (int, float)) and not isinstance(node, bool) and math.isfinite(node):
            return float(node)
    return None


def delta(value: float | None, base: float | None) -> tuple[float | None, float | None]:
    """(absolute, percent) change of value vs base; percent is None when base is 0."""
    if value is None or base is None:
        return None, None
    diff = value - base
    return diff, (diff / base * 100.0 if base != 0 else (0.0 if diff == 0 else None))


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _fmt_delta(d: float | None, pct: float | None) -> str:
    if d is None:
        return "n/a"
    return f"{d:+.4g} ({'n/a' if pct is None else f'{pct:+.1f}%'})"


def _value_text(v) -> str:
    return "none" if v is None else str(v)


def table_rows(doc: dict) -> tuple[list[str], list[list[str]]]:
    runs = [doc["base"]] + [v["summary"] for v in doc["variants"]]
    cols = [(h, p) for h, p in COLUMNS if h not in OPTIONAL or any(metric(r, p) is not None for r in runs)]
    keys = doc["varied_keys"]
    header = ["run"] + keys + [h for h, _ in cols] + ["cost model (p90 err)"]
    base_vals = [metric(doc["base"], p) for _, p in cols]
    rows = [["base"] + [_value_text(doc["base"]["scenario"].get(k)) for k in keys] + [_fmt(v) for v in base_vals]
            + [cost_model_text(doc["base"])]]
    for i, var in enumerate(doc["variants"], start=1):
        vals = [metric(var["summary"], p) for _, p in cols]
        rows.append([f"#{i}"] + [_value_text(var["vary"].get(k)) for k in keys] + [_fmt(v) for v in vals]
                    + [cost_model_text(var["summary"])])
        rows.append(["  vs base"] + [""] * len(keys) + [_fmt_delta(*delta(v, b)) for v, b in zip(vals, base_vals)] + [""])
    return header, rows


def cost_model_text(summary: dict) -> str:
    """A run's cost model in a few words with its known p90 speed error."""
    return short_label(summary.get(PREDICTION[0], {}).get(PREDICTION[1]))


def format_compare(doc: dict) -> str:
    header, rows = table_rows(doc)
    widths = [max(len(r[c]) for r in [header] + rows) for c in range(len(header))]
    line = lambda r: "  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(r, widths)))
    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    s = doc["base"]["scenario"]
    out.append(f"base: {s['model']} on {s['replicas']}x{s['tp']} {s['hardware']}, scheduler {s['scheduler']}, "
               f"{s['num_requests']} requests at rate {s['rate']}; deltas are variant - base (absolute and %)")
    out.append("cost model: kernels fitted on measured tables (fitted), carried over by the transfer model (transfer) "
               "or the ideal roofline, with the p90 |error| of held-out published points priced that way")
    return "\n".join(out)
