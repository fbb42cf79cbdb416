"""Tests for simulator/studies/plan/search.py: the steady-state rule on synthetic arrays (hand-computed
ratios and growth rates), settings validation, and the search's invariants on tiny scenarios."""
from __future__ import annotations

import math

import numpy as np
import pytest

from simulator.errors import ServesimError
from simulator.scenario import Scenario
from simulator.studies.plan.search import (
    SearchSettings,
    Slo,
    probe,
    search_candidate,
    search_max_rate,
    steady_state,
)

TINY = Scenario(num_requests=60, prompt_tokens="uniform:32:128", output_tokens="uniform:8:24")
FAST = SearchSettings(probe_requests=60, max_probes=5)

# 300 requests arriving every 0.1 s: thirds of k = 100, window (a[100], a[299]] = (10.0, 29.9]
A = np.arange(300) / 10.0


def test_steady_constant_service():
    ok, why = steady_state(A, A + 0.05, A + 1.0)
    assert ok and why is None


def test_overloaded_deterministic_queue_falls_behind():
    # D/D/1 with service 0.125 s (mu = 8 < lam = 10): start_i = 0.125 i, finish_i = 0.125 (i + 1).
    # Finishes in (10, 29.9]: i + 1 in 81..239 -> 159; arrivals in the window: 199; 159/199 = 0.799
    start = 0.125 * np.arange(300)
    ok, why = steady_state(A, start + 0.01, start + 0.125)
    assert not ok and why == "completions fall behind arrivals (0.80 of the arrival rate)"
    assert steady_state(A, start + 0.01, start + 0.125, rate_tolerance=0.21)[0] is False  # queue grows too
    # with a generous rate tolerance the growth check decides: TTFT = 0.25 i - 0.1 i + 0.01 grows
    # by 0.025 s per request = 0.25 s per s of arrivals
    ok, why = steady_state(A, start + 0.01, start + 0.125, rate_tolerance=0.5)
    assert not ok and why == "queue grows: TTFT rises 0.250 s per s"


@pytest.mark.parametrize("g, ok", [(0.05, True), (0.2, False)])
def test_growth_rule_exact(g, ok):
    # TTFT = g * arrival: medians of the thirds' arrivals are 4.95 and 24.95, so growth = g exactly
    first = A + g * A
    result = steady_state(A, first, first + 0.01, rate_tolerance=0.5, growth_tolerance=0.1)
    assert result == (True, None) if ok else result == (False, f"queue grows: TTFT rises {g:.3f} s per s")


def test_steady_is_order_independent():
    perm = np.random.default_rng(0).permutation(300)
    start = 0.125 * np.arange(300)
    assert steady_state(A[perm], (start + 0.01)[perm], (start + 0.125)[perm]) == \
        steady_state(A, start + 0.01, start + 0.125)


def test_steady_degenerate_inputs():
    assert steady_state(A[:5], A[:5], A[:5] + 1) == (False, "too few requests (5) to judge a steady state; need >= 6")
    z = np.zeros(30)
    assert steady_state(z, z + 1, z + 2) == (False, "requests arrive all at once: no sustained rate")


@pytest.mark.parametrize("kwargs, fragment", [
    ({"probe_requests": 10}, "probe_requests=10"), ({"max_probes": 1}, "max_probes=1"),
    ({"rate_tolerance": 1.0}, "rate_tolerance=1.0"), ({"expand_factor": 1.0}, "expand_factor=1.0"),
])
def test_settings_validation(kwargs, fragment):
    with pytest.raises(ServesimError, match=fragment):
        SearchSettings(**kwargs)


def test_slo_validation():
    with pytest.raises(ServesimError, match="percentile=0"):
        Slo(percentile=0)
    with pytest.raises(ServesimError, match="ttft_ms=-1"):
        Slo(ttft_ms=-1)


def test_search_brackets_the_answer():
    slo = Slo(ttft_ms=50.0, tpot_ms=10.0)
    best, probes, mu, unservable, why = search_max_rate(TINY, slo, FAST)
    assert why is None and unservable == 0 and len(probes) == FAST.max_probes - 1
    assert probes[0]["rate"] == mu  # the saturation throughput is the first rate tried
    ok_rates = [p["rate"] for p in probes if p["ok"]]
    bad_rates = [p["rate"] for p in probes if not p["ok"]]
    assert best == max(ok_rates) and (not bad_rates or min(bad_rates) > best)
    for p in probes:  # each ok probe meets the SLOs at p99 (the default percentile)
        if p["ok"]:
            assert p["p99_ttft_ms"] <= 50.0 and p["p99_tpot_ms"] <= 10.0


def test_probe_is_deterministic_and_reports_percentile():
    a = probe(TINY, 20.0, Slo(ttft_ms=1e6, percentile=90), FAST)
    b = probe(TINY, 20.0, Slo(ttft_ms=1e6, percentile=90), FAST)
    assert a == b and a["ok"] and set(a) >= {"rate", "ok", "p99_ttft_ms", "p99_tpot_ms", "p90_ttft_ms"}
    assert a["p90_ttft_ms"] <= a["p99_ttft_ms"]


def test_unreachable_slo_stops_at_latency_floor():
    best, probes, mu, _, why = search_max_rate(TINY, Slo(ttft_ms=1e-3), SearchSettings(probe_requests=60, max_probes=12))
    assert best == 0 and why.startswith("no probed rate met the SLOs")
    assert len(probes) < 11  # stopped early: halving the rate no longer lowers TTFT


def task(scenario: Scenario, target: float = 30.0) -> dict:
    return {"scenario": scenario.as_dict(), "config": {}, "search": FAST.as_dict(),
            "slo": Slo(ttft_ms=500.0).as_dict(), "target_rate": target}


def test_candidate_record_replicas_and_price():
    rec = search_candidate(task(TINY.replace(hardware="l4")))
    assert rec["feasible"] and rec["reason"] is None
    assert rec["replicas_needed"] >= math.ceil(30.0 / rec["max_rate_per_replica"])
    assert rec["price_usd_per_hour"] == pytest.approx(rec["replicas_needed"] * 1 * 0.71)  # l4: $0.71/h
    op = [p for p in rec["probes"] if p["role"] == "operating"]
    assert op[-1]["ok"] and op[-1]["rate"] == 30.0 / rec["replicas_needed"]
    assert rec["p99_ttft_ms"] == op[-1]["p99_ttft_ms"]


def test_candidate_infeasible_reasons():
    bad_tp = search_candidate(task(TINY.replace(tp=3)))
    assert not bad_tp["feasible"] and "tp=3 does not divide" in bad_tp["reason"]
    too_long = search_candidate(task(TINY.replace(max_model_len=64)))
    assert not too_long["feasible"] and "requests can never be served" in too_long["reason"]
    assert too_long["price_usd_per_hour"] is None and too_long["replicas_needed"] is None


def test_probe_latencies_leave_out_the_warmup_third():
    from simulator.run import simulate

    rec = simulate(TINY.replace(rate=25.0)).recorder
    late = np.argsort(rec.arrival_s, kind="stable")[len(rec.arrival_s) // 3:]
    ttft_ms = (rec.first_token_s - rec.arrival_s)[late] * 1e3
    out = rec.output_tokens[late]
    tpot_ms = ((rec.finish_s - rec.first_token_s)[late] * 1e3)[out > 1] / (out[out > 1] - 1)
    p = probe(TINY, 25.0, Slo(), FAST)
    assert p["p99_ttft_ms"] == float(np.percentile(ttft_ms, 99))
    assert p["p99_tpot_ms"] == float(np.percentile(tpot_ms, 99))
