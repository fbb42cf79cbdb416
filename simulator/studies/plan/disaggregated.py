"""`plan --disaggregated`: the cheapest prefill:decode configuration meeting the TTFT and TPOT
SLOs at a target rate (the DistServe / Splitwise question), next to the cheapest colocated one.

Owns the candidate list and the search. Candidates: every (P, D) with P, D >= 1 and
P + D <= max_instances (prefill instances of prefill_tp GPUs, decode instances of decode_tp),
and, for comparison, colocated replicas 1..max_instances of tp GPUs. Each is priced as
GPUs x USD per GPU-hour (hardware catalog or price_usd_per_hour) and probed in increasing price
order at the target rate with the whole deployment simulated (search.probe: sustainable, and the
SLO percentile of TTFT and TPOT within the SLOs, measured after the first third of requests); the
first ok candidate of each kind is the answer. Provenance: the cost model and engine of both
pools (run.describe_prediction), the probes run, the settings.
"""
from __future__ import annotations

import json

from hardware import load_device
from simulator.cost import provenance_line
from simulator.parallel import COLOCATED
from simulator.studies.plan.search import SearchSettings, Slo, probe


def candidates(base, max_instances: int) -> list[dict]:
    """Every P:D split and colocated replica count up to `max_instances` instances, cheapest first."""
    price = base.price_usd_per_hour if base.price_usd_per_hour is not None else load_device(base.hardware).price_usd_per_hour
    p_tp, d_tp = base.prefill_tp or base.tp, base.decode_tp or base.tp
    out = []
    for p in range(1, max_instances):
        for d in range(1, max_instances - p + 1):
            gpus = p * p_tp + d * d_tp
            out.append({"kind": "disaggregated", "num_prefill_instances": p, "num_decode_instances": d,
                        "prefill_tp": p_tp, "decode_tp": d_tp, "num_gpus": gpus, "usd_per_hour": gpus * price})
    for r in range(1, max_instances + 1):
        out.append({"kind": "colocated", "replicas": r, "tp": base.tp, "num_gpus": r * base.tp,
                    "usd_per_hour": r * base.tp * price})
    return sorted(out, key=lambda c: (c["usd_per_hour"], c["kind"], c.get("num_decode_instances", 0)))


def _scenario(base, c: dict, probe_requests: int):
    common = dict(num_requests=probe_requests, router="least_loaded")
    if c["kind"] == "colocated":
        return base.replace(**{**COLOCATED, "replicas": c["replicas"]}, **common)
    return base.replace(replicas=1, num_prefill_instances=c["num_prefill_instances"],
                        num_decode_instances=c["num_decode_instances"], prefill_tp=c["prefill_tp"],
                        decode_tp=c["decode_tp"], **common)


def plan_disaggregated(base, *, target_rate: float, slo: Slo, settings: SearchSettings, max_instances: int = 8,
                       both: bool = True) -> dict:
    """The plan document: the cheapest ok disaggregated and colocated candidates and every probe.
    `both`: also find the colocated answer (else stop at the first ok disaggregated one)."""
    from simulator.run import describe_prediction

    found: dict[str, dict] = {}
    probes = []
    for c in candidates(base, max_instances):
        if c["kind"] in found or (not both and c["kind"] == "colocated"):
            continue
        s = _scenario(base, c, settings.probe_requests)
        rec = probe(s, target_rate, slo, settings)
        probes.append({**c, **rec})
        if rec["ok"]:
            found[c["kind"]] = {**c, **rec}
        if len(found) == (2 if both else 1):
            break
    best = found.get("disaggregated")
    return {
        "target_rate": target_rate, "slo": slo.as_dict(), "max_instances": max_instances,
        "disaggregated": best, "colocated": found.get("colocated"),
        "probes": probes, "settings": settings.as_dict(),
        "base_scenario": base.as_dict(),
        "kv_transfer_link": base.kv_transfer_link or "the device's interconnect",
        "provenance": {"prediction": describe_prediction(base.replace(**COLOCATED)),
                       "method": "candidates probed cheapest first at the target rate (studies/plan/disaggregated.py)"},
    }


def format_disaggregated(doc: dict) -> str:
    lines = [f"P/D plan for {doc['target_rate']:g} req/s, SLO p{doc['slo']['percentile']:g} "
             f"TTFT {doc['slo']['ttft_ms']} ms, TPOT {doc['slo']['tpot_ms']} ms"]
    for c in doc["probes"]:
        shape = (f"{c['num_prefill_instances']}P x tp{c['prefill_tp']} : {c['num_decode_instances']}D x tp{c['decode_tp']}"
                 if c["kind"] == "disaggregated" else f"{c['replicas']} colocated x tp{c['tp']}")
        q = f"p{doc['slo']['percentile']:g}"
        ttft, tpot = c.get(f"{q}_ttft_ms"), c.get(f"{q}_tpot_ms")
        lines.append(f"  {shape:<32} {c['num_gpus']:>3} GPUs ${c['usd_per_hour']:>7.2f}/h  {q} TTFT "
                     f"{ttft if ttft is None else round(ttft, 1)} ms  {q} TPOT {tpot if tpot is None else round(tpot, 1)} ms  "
                     f"{'ok' if c['ok'] else c['reason']}")
    for kind in ("disaggregated", "colocated"):
        c = doc[kind]
        lines.append(f"cheapest {kind}: " + ("none within max_instances" if c is None else
                                             f"{c['num_gpus']} GPUs, ${c['usd_per_hour']:.2f}/h"))
    lines.append(provenance_line(doc["provenance"]["prediction"]))
    lines.append(f"KV transfer link: {doc['kv_transfer_link']}; method: {doc['provenance']['method']}")
    return "\n".join(lines)


def disaggregated_json(doc: dict) -> str:
    return json.dumps(doc, indent=1, default=str)
