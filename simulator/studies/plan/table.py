"""Human-readable rendering of a plan document (the `servesim plan` output): the cheapest
feasible configurations, the Pareto frontier and why the others are infeasible."""
from __future__ import annotations

from simulator.cost import short_label


def _num(v, fmt: str = "{:.4g}") -> str:
    return "n/a" if v is None else fmt.format(v)


def _config_text(c: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in c["config"].items()) or "base"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows]


def _range(u: dict | None) -> str:
    return "n/a" if not u else "{}-{}".format(*u["replicas_range"])


def short_cost_model(c: dict) -> str:
    return short_label(c.get("prediction"))


def _slo_text(slo: dict) -> str:
    q = f"p{slo['percentile']:g}"
    parts = [f"{q} {name} <= {slo[key]:g} ms" for name, key in (("TTFT", "ttft_ms"), ("TPOT", "tpot_ms"))
             if slo.get(key) is not None]
    return ", ".join(parts) or "none (steady state only)"


def format_plan(doc: dict, *, top: int = 10) -> str:
    cands, pareto = doc["candidates"], set(doc["pareto"])
    keys = list(dict.fromkeys(k for c in cands for k in c["config"]))
    feasible = sorted((i for i, c in enumerate(cands) if c["feasible"]),
                      key=lambda i: (cands[i]["price_usd_per_hour"], cands[i]["p99_ttft_ms"] or 0, i))
    lines = [f"target {doc['target_rate']:g} req/s; SLO {_slo_text(doc['slo'])}; "
             f"{len(cands)} candidates, {len(feasible)} feasible"]
    header = ["#"] + keys + ["max req/s/replica", "replicas", "p90 range", "GPUs", "USD/h", "p99 TTFT ms",
                             "p99 TPOT ms", "pareto", "cost model"]
    rows = []
    for i in feasible[:top]:
        c = cands[i]
        gpus = c.get("num_gpus") or c["replicas_needed"] * c["scenario"]["tp"]  # stores from before num_gpus
        rows.append([str(i)] + [str(c["config"].get(k, "")) for k in keys] +
                    [_num(c["max_rate_per_replica"]), str(c["replicas_needed"]), _range(c.get("uncertainty")), str(gpus),
                     _num(c["price_usd_per_hour"], "{:.2f}"), _num(c["p99_ttft_ms"], "{:.1f}"),
                     _num(c["p99_tpot_ms"], "{:.2f}"), "*" if i in pareto else "", short_cost_model(c)])
    if rows:
        shown = f"{len(rows)} of {len(feasible)}, --top" if len(rows) < len(feasible) else "all"
        lines += [f"Cheapest feasible configurations ({shown}; p99 latencies at target/replicas per replica):"]
        lines += _table(header, rows)
    if doc["cheapest"] is not None:
        c = cands[doc["cheapest"]]
        lines.append(f"cheapest: #{doc['cheapest']} {_config_text(c)}: {c['replicas_needed']} replica(s), "
                     f"${c['price_usd_per_hour']:.2f}/h")
    else:
        lines.append("cheapest: none of the candidates meets the SLOs")
    if rows:
        lines.append("replicas p90 range: the replicas needed if the true speed is off by the known p90 error of "
                     "held-out published points priced the same way (cost model column)")
    lines.append("Pareto frontier (price vs p99 TTFT, p99 TPOT): " +
                 (", ".join(f"#{i} ${cands[i]['price_usd_per_hour']:.2f}/h {cands[i]['p99_ttft_ms']:.0f}/"
                            f"{cands[i]['p99_tpot_ms']:.1f} ms" for i in doc["pareto"]) or "empty"))
    for i, c in enumerate(cands):
        if not c["feasible"]:
            lines.append(f"infeasible #{i} {_config_text(c)}: {c['reason']}")
    return "\n".join(lines)
