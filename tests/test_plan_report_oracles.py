"""Exact oracles for the plan's documents and tables (issue 19, mutation survivors): format_plan and
format_disaggregated on hand-made documents (every line written out), the P:D candidate list and
its price order, the probe scenarios, and plan_disaggregated's search with a stand-in probe."""
from __future__ import annotations

from pathlib import Path

import simulator.studies.plan.disaggregated as dis
from simulator.run import describe_prediction
from simulator.scenario import Scenario
from simulator.studies.plan.disaggregated import _scenario, candidates, disaggregated_json, format_disaggregated
from simulator.studies.plan.search import SearchSettings, Slo
from simulator.studies.plan.table import format_plan

COLOCATED_RESET = {"num_prefill_instances": None, "num_decode_instances": 1, "prefill_tp": None, "decode_tp": None}


# ---- format_plan ------------------------------------------------------------------------------------
def _cand(config, feasible=True, price=2.13, ttft=None, tpot=None, **kw):
    return {"config": config, "feasible": feasible, "price_usd_per_hour": price, "p99_ttft_ms": ttft,
            "p99_tpot_ms": tpot, "reason": None, **kw}


C0 = _cand({"hardware": "l4", "tp": 1}, ttft=0.5, tpot=9.876, max_rate_per_replica=7.123456, replicas_needed=3,
           num_gpus=3, uncertainty={"replicas_range": [3, 4]}, scenario={"tp": 1},
           prediction={"calibrated": True, "kind": "fit", "speed_error_p90_pct": 12.3})
C1 = _cand({"hardware": "h100-sxm", "tp": 2}, ttft=100.0, tpot=5.0, max_rate_per_replica=40.0, replicas_needed=1,
           scenario={"tp": 2})  # a store from before num_gpus: GPUs = replicas x tp
C2 = _cand({"hardware": "l4", "tp": 2}, feasible=False, price=None, reason="no probed rate met the SLOs")
C3 = _cand({"tp": 4}, max_rate_per_replica=0.5, replicas_needed=60, num_gpus=240, uncertainty=None, scenario={"tp": 4},
           prediction={"calibrated": False})
DOC = {"target_rate": 30.0, "slo": {"ttft_ms": 200.0, "tpot_ms": 30.0, "percentile": 99.0},
       "candidates": [C0, C1, C2, C3], "pareto": [0, 1], "cheapest": 3}

# columns: "#" (left-aligned) then right-aligned, two spaces apart; widths 1, 8, 2, 17, 8, 9, 4, 5, 11, 11, 6, 20
HEADER = ("#  hardware  tp  max req/s/replica  replicas  p90 range  GPUs  USD/h  p99 TTFT ms  p99 TPOT ms  pareto  "
          + " " * 10 + "cost model")
RULE = "  ".join("-" * w for w in (1, 8, 2, 17, 8, 9, 4, 5, 11, 11, 6, 20))
# sorted by (price, p99 TTFT or 0, index): #3 (2.13, 0), #0 (2.13, 0.5), #1 (2.13, 100)
ROW3 = ("3  " + " " * 8 + "   4  " + " " * 14 + "0.5  " + " " * 6 + "60  " + " " * 6 + "n/a   240   2.13  "
        + " " * 8 + "n/a  " + " " * 8 + "n/a  " + " " * 6 + "  ideal (uncalibrated)")
ROW0 = ("0  " + " " * 6 + "l4   1  " + " " * 12 + "7.123  " + " " * 7 + "3  " + " " * 6 + "3-4     3   2.13  "
        + " " * 8 + "0.5  " + " " * 7 + "9.88  " + " " * 5 + "*   fitted, p90 err 12%")
ROW1 = ("1  h100-sxm   2  " + " " * 15 + "40  " + " " * 7 + "1  " + " " * 6 + "n/a     2   2.13  "
        + " " * 6 + "100.0  " + " " * 7 + "5.00  " + " " * 5 + "*  " + " " * 17 + "n/a")


def test_format_plan_every_line():
    assert format_plan(DOC).split("\n") == [
        "target 30 req/s; SLO p99 TTFT <= 200 ms, p99 TPOT <= 30 ms; 4 candidates, 3 feasible",
        "Cheapest feasible configurations (all; p99 latencies at target/replicas per replica):",
        HEADER, RULE, ROW3, ROW0, ROW1,
        "cheapest: #3 tp=4: 60 replica(s), $2.13/h",
        "replicas p90 range: the replicas needed if the true speed is off by the known p90 error of held-out "
        "published points priced the same way (cost model column)",
        "Pareto frontier (price vs p99 TTFT, p99 TPOT): #0 $2.13/h 0/9.9 ms, #1 $2.13/h 100/5.0 ms",
        "infeasible #2 hardware=l4 tp=2: no probed rate met the SLOs",
    ]


def test_format_plan_top():
    lines = format_plan(DOC, top=2).split("\n")
    assert lines[1] == "Cheapest feasible configurations (2 of 3, --top; p99 latencies at target/replicas per replica):"
    assert lines[4:6] == [ROW3, ROW0] and lines[6].startswith("cheapest: #3")


def test_format_plan_default_top_is_ten():
    cands = [_cand({"tp": 1}, price=float(i + 1), ttft=1.0, tpot=1.0, max_rate_per_replica=1.0, replicas_needed=1,
                   num_gpus=1) for i in range(11)]
    lines = format_plan({"target_rate": 1.0, "slo": DOC["slo"], "candidates": cands, "pareto": [], "cheapest": 0})
    lines = lines.split("\n")
    assert lines[1] == "Cheapest feasible configurations (10 of 11, --top; p99 latencies at target/replicas per replica):"
    assert [ln.split()[0] for ln in lines[4:14]] == [str(i) for i in range(10)]
    assert lines[14] == "cheapest: #0 tp=1: 1 replica(s), $1.00/h"


def test_format_plan_index_column_is_left_aligned():
    cands = [_cand({"tp": 1}, price=12.5, ttft=1.0, tpot=1.0, max_rate_per_replica=1.0, replicas_needed=1,
                   num_gpus=1) for _ in range(11)]
    cands[10]["price_usd_per_hour"] = 10.0  # #10 is the cheapest
    lines = format_plan({"target_rate": 1.0, "slo": DOC["slo"], "candidates": cands, "pareto": [], "cheapest": 10})
    lines = lines.split("\n")
    # widths: "#" 2, "tp" 2, "max req/s/replica" 17, ... "USD/h" 5: prices with 2 decimals
    assert lines[4].startswith("10   1  " + " " * 16 + "1  ") and " 10.00  " in lines[4]
    assert lines[5].startswith("0    1  ") and " 12.50  " in lines[5]


def test_format_plan_large_rate_in_exponent_form():
    c = _cand({"tp": 1}, price=1.0, ttft=1.0, tpot=1.0, max_rate_per_replica=123456.0, replicas_needed=1, num_gpus=1)
    row = format_plan({"target_rate": 1.0, "slo": DOC["slo"], "candidates": [c], "pareto": [], "cheapest": 0})
    assert row.split("\n")[4].split()[:3] == ["0", "1", "1.235e+05"]  # 4 significant digits, "{:.4g}"


def test_format_plan_nothing_feasible():
    doc = {"target_rate": 0.5, "slo": {"ttft_ms": None, "tpot_ms": None, "percentile": 90.0},
           "candidates": [_cand({}, feasible=False, price=None, reason="too slow")], "pareto": [], "cheapest": None}
    assert format_plan(doc).split("\n") == [
        "target 0.5 req/s; SLO none (steady state only); 1 candidates, 0 feasible",
        "cheapest: none of the candidates meets the SLOs",
        "Pareto frontier (price vs p99 TTFT, p99 TPOT): empty",
        "infeasible #0 base: too slow",
    ]
    doc["slo"] = {"ttft_ms": None, "tpot_ms": 12.5, "percentile": 90.0}
    assert format_plan(doc).split("\n")[0] == "target 0.5 req/s; SLO p90 TPOT <= 12.5 ms; 1 candidates, 0 feasible"


# ---- format_disaggregated ----------------------------------------------------------------------------
PD_DOC = {
    "target_rate": 2.5, "slo": {"ttft_ms": 500.0, "tpot_ms": 50.0, "percentile": 99.0},
    "probes": [
        {"kind": "colocated", "replicas": 1, "tp": 1, "num_gpus": 1, "usd_per_hour": 0.71, "p99_ttft_ms": 812.345,
         "p99_tpot_ms": 12.34, "ok": False, "reason": "p99 TTFT 812.3 ms > SLO 500 ms"},
        {"kind": "disaggregated", "num_prefill_instances": 1, "num_decode_instances": 2, "prefill_tp": 2,
         "decode_tp": 1, "num_gpus": 4, "usd_per_hour": 2.84, "p99_ttft_ms": None, "p99_tpot_ms": 8.76, "ok": True,
         "reason": None},
        {"kind": "colocated", "replicas": 2, "tp": 1, "num_gpus": 2, "usd_per_hour": 1.42, "p99_ttft_ms": 90.0,
         "p99_tpot_ms": None, "ok": False, "reason": "1 of 60 requests failed: x"}],
    "disaggregated": {"num_gpus": 4, "usd_per_hour": 2.84}, "colocated": None,
    "provenance": {"prediction": {"label": "L", "engine": "E", "known_error": "K"}, "method": "M"},
    "kv_transfer_link": "nvlink",
}


def test_format_disaggregated_every_line():
    assert format_disaggregated(PD_DOC).split("\n") == [
        "P/D plan for 2.5 req/s, SLO p99 TTFT 500.0 ms, TPOT 50.0 ms",
        "  1 colocated x tp1" + " " * 15 + "   1 GPUs $   0.71/h  p99 TTFT 812.3 ms  p99 TPOT 12.3 ms  "
        "p99 TTFT 812.3 ms > SLO 500 ms",
        "  1P x tp2 : 2D x tp1" + " " * 13 + "   4 GPUs $   2.84/h  p99 TTFT None ms  p99 TPOT 8.8 ms  ok",
        "  2 colocated x tp1" + " " * 15 + "   2 GPUs $   1.42/h  p99 TTFT 90.0 ms  p99 TPOT None ms  "
        "1 of 60 requests failed: x",
        "cheapest disaggregated: 4 GPUs, $2.84/h",
        "cheapest colocated: none within max_instances",
        "cost model: L + engine E; known error: K",
        "KV transfer link: nvlink; method: M",
    ]


def test_format_disaggregated_other_percentile():
    doc = {**PD_DOC, "slo": {"ttft_ms": 400.0, "tpot_ms": 40.0, "percentile": 90.0},
           "probes": [{**PD_DOC["probes"][0], "p90_ttft_ms": 700.04, "p90_tpot_ms": 11.06, "reason": "slow"}],
           "disaggregated": None, "colocated": {"num_gpus": 2, "usd_per_hour": 1.42}}
    lines = format_disaggregated(doc).split("\n")
    assert lines[0] == "P/D plan for 2.5 req/s, SLO p90 TTFT 400.0 ms, TPOT 40.0 ms"
    assert lines[1].endswith("   1 GPUs $   0.71/h  p90 TTFT 700.0 ms  p90 TPOT 11.1 ms  slow")
    assert lines[2:4] == ["cheapest disaggregated: none within max_instances", "cheapest colocated: 2 GPUs, $1.42/h"]


def test_disaggregated_json_text():
    assert disaggregated_json({"a": Path("x"), "b": [1]}) == '{\n "a": "x",\n "b": [\n  1\n ]\n}'


# ---- the candidate list ----------------------------------------------------------------------------------
def test_candidates_price_from_the_device_and_every_field():
    # l4 at $0.71/h; prefill instances tp 2, decode tp 1, colocated tp 2; up to 3 instances
    base = Scenario(model="llama-3-8b", hardware="l4", tp=2, decode_tp=1)
    got = candidates(base, 3)
    col = lambda r: {"kind": "colocated", "replicas": r, "tp": 2, "num_gpus": 2 * r, "usd_per_hour": 2 * r * 0.71}
    pd = lambda p, d: {"kind": "disaggregated", "num_prefill_instances": p, "num_decode_instances": d, "prefill_tp": 2,
                       "decode_tp": 1, "num_gpus": 2 * p + d, "usd_per_hour": (2 * p + d) * 0.71}
    # 1.42, 2.13, 2.84 (colocated sorts before disaggregated at a tie), 2.84, 3.55, 4.26
    assert got == [col(1), pd(1, 1), col(2), pd(1, 2), pd(2, 1), col(3)]


def test_candidates_gpus_count_both_pools():
    base = Scenario(model="llama-3-8b", hardware="l4", price_usd_per_hour=1.0, decode_tp=2)
    got = {(c["num_prefill_instances"], c["num_decode_instances"]): c["num_gpus"] for c in candidates(base, 3)
           if c["kind"] == "disaggregated"}
    assert got == {(1, 1): 3, (1, 2): 5, (2, 1): 4}  # P x 1 + D x 2


def test_candidates_equal_price_splits_by_decode_instances():
    base = Scenario(model="llama-3-8b", hardware="l4", price_usd_per_hour=1.0)
    got = [(c["kind"], c.get("num_prefill_instances"), c.get("num_decode_instances"), c["usd_per_hour"])
           for c in candidates(base, 3)]
    assert got == [("colocated", None, None, 1.0), ("colocated", None, None, 2.0), ("disaggregated", 1, 1, 2.0),
                   ("colocated", None, None, 3.0), ("disaggregated", 2, 1, 3.0), ("disaggregated", 1, 2, 3.0)]


def test_probe_scenarios():
    base = Scenario(model="llama-3-8b", hardware="l4", price_usd_per_hour=1.0, num_requests=500, replicas=4)
    s = _scenario(base, {"kind": "colocated", "replicas": 3}, 60)
    assert (s.replicas, s.num_requests, s.router) == (3, 60, "least_loaded")
    assert {k: getattr(s, k) for k in COLOCATED_RESET} == COLOCATED_RESET
    s = _scenario(base, {"kind": "disaggregated", "num_prefill_instances": 2, "num_decode_instances": 3,
                         "prefill_tp": 2, "decode_tp": 1}, 60)
    assert (s.replicas, s.num_prefill_instances, s.num_decode_instances, s.prefill_tp, s.decode_tp, s.num_requests,
            s.router) == (1, 2, 3, 2, 1, 60, "least_loaded")


# ---- plan_disaggregated with a stand-in probe -----------------------------------------------------------------
def _plan(monkeypatch, both=True, max_instances=3, ok=None):
    seen = []
    ok = ok or (lambda s: s.num_prefill_instances is None and s.replicas >= 2 or
                (s.num_prefill_instances or 0) + s.num_decode_instances >= 3)

    def fake_probe(s, rate, slo, settings, allowed_failures=0, early_stop=False):
        seen.append((s.num_prefill_instances, s.num_decode_instances, s.replicas, s.num_requests, rate))
        good = ok(s)
        return {"rate": rate, "ok": good, "p99_ttft_ms": 1.0, "p99_tpot_ms": 1.0, "reason": None if good else "slow"}

    monkeypatch.setattr(dis, "probe", fake_probe)
    base = Scenario(model="llama-3-8b", hardware="l4", price_usd_per_hour=1.0)
    kw = {} if max_instances is None else {"max_instances": max_instances}
    doc = dis.plan_disaggregated(base, target_rate=2.0, slo=Slo(ttft_ms=500.0),
                                 settings=SearchSettings(probe_requests=60), both=both, **kw)
    return base, doc, seen


def test_plan_disaggregated_cheapest_of_each_kind(monkeypatch):
    # order: col 1 ($1), col 2 ($2), 1P:1D ($2), col 3 ($3), 2P:1D ($3), 1P:2D ($3);
    # ok: colocated with >= 2 replicas, P/D with >= 3 instances
    base, doc, seen = _plan(monkeypatch)
    assert seen == [(None, 1, 1, 60, 2.0), (None, 1, 2, 60, 2.0), (1, 1, 1, 60, 2.0), (2, 1, 1, 60, 2.0)]
    assert (doc["colocated"]["replicas"], doc["colocated"]["usd_per_hour"]) == (2, 2.0)
    best = doc["disaggregated"]
    assert (best["num_prefill_instances"], best["num_decode_instances"], best["usd_per_hour"], best["ok"]) == \
        (2, 1, 3.0, True)
    assert [p["ok"] for p in doc["probes"]] == [False, True, False, True]
    assert doc["target_rate"] == 2.0 and doc["max_instances"] == 3
    assert doc["slo"] == {"ttft_ms": 500.0, "tpot_ms": None, "percentile": 99.0}
    assert doc["settings"] == SearchSettings(probe_requests=60).as_dict() and doc["base_scenario"] == base.as_dict()
    assert doc["kv_transfer_link"] == "the device's interconnect"
    assert doc["provenance"] == {
        "prediction": describe_prediction(base.replace(**COLOCATED_RESET)),
        "method": "candidates probed cheapest first at the target rate (studies/plan/disaggregated.py)"}


def test_plan_disaggregated_only(monkeypatch):
    _, doc, seen = _plan(monkeypatch, both=False)
    assert seen == [(1, 1, 1, 60, 2.0), (2, 1, 1, 60, 2.0)] and doc["colocated"] is None
    assert doc["disaggregated"]["num_prefill_instances"] == 2


def test_plan_disaggregated_default_max_instances(monkeypatch):
    _, doc, seen = _plan(monkeypatch, max_instances=None, ok=lambda s: False)
    # 8 instances: 7 + 6 + ... + 1 = 28 P:D splits and 8 colocated counts, all probed
    assert doc["max_instances"] == 8 and len(seen) == 36
    assert doc["disaggregated"] is None and doc["colocated"] is None

