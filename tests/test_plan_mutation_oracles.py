"""Exact oracles for simulator/studies/plan/search.py (issue 19, mutation survivors). The simulator is
replaced by hand-built recorders (simulate -> a result whose latencies are written out here), and the
search by stand-in probes, so every percentile, ratio, probed rate and message is a hand-computed number.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

import simulator.run as run
import simulator.studies.plan.search as search
from simulator.engine import FAILED, FINISHED
from simulator.errors import ServesimError
from simulator.scenario import Scenario
from simulator.studies.plan.search import (
    SearchSettings,
    Slo,
    _at_floor,
    capacity_range,
    certain_slo_failure,
    probe,
    saturation_rate,
    search_candidate,
    search_max_rate,
    steady_state,
)

BASE = Scenario(num_requests=9)


# ---- settings ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"probe_requests": 29}, "probe_requests=29 is invalid; allowed: >= 30"),
    ({"max_probes": 1}, "max_probes=1 is invalid; allowed: >= 2"),
    ({"rate_tolerance": 1.0}, "rate_tolerance=1.0 is invalid; allowed: [0, 1)"),
    ({"growth_tolerance": -0.1}, "growth_tolerance=-0.1 is invalid; allowed: [0, 1)"),
    ({"max_unservable_fraction": 1.5}, "max_unservable_fraction=1.5 is invalid; allowed: [0, 1)"),
    ({"expand_factor": 1.0}, "expand_factor=1.0 is invalid; allowed: > 1"),
    ({"expand_factor": 0.5}, "expand_factor=0.5 is invalid; allowed: > 1"),
])
def test_settings_messages_whole(kwargs, message):
    with pytest.raises(ServesimError) as e:
        SearchSettings(**kwargs)
    assert str(e.value) == message


def test_settings_bounds_are_inclusive_where_documented():
    s = SearchSettings(probe_requests=30, max_probes=2, rate_tolerance=0.0, growth_tolerance=0.0,
                       max_unservable_fraction=0.0, expand_factor=1.001)
    assert s.as_dict() == {"probe_requests": 30, "max_probes": 2, "rate_tolerance": 0.0, "growth_tolerance": 0.0,
                           "expand_factor": 1.001, "max_extra_replicas": 2, "max_unservable_fraction": 0.0,
                           "early_stop": True}
    assert SearchSettings().as_dict() == {"probe_requests": 400, "max_probes": 8, "rate_tolerance": 0.1,
                                          "growth_tolerance": 0.1, "expand_factor": 2.0, "max_extra_replicas": 2,
                                          "max_unservable_fraction": 0.01, "early_stop": True}


@pytest.mark.parametrize("kwargs, message", [
    ({"percentile": 0}, "slo percentile=0 is invalid; allowed: (0, 100]"),
    ({"percentile": 100.5}, "slo percentile=100.5 is invalid; allowed: (0, 100]"),
    ({"ttft_ms": 0}, "slo ttft_ms=0 is invalid; allowed: > 0"),
    ({"tpot_ms": -2}, "slo tpot_ms=-2 is invalid; allowed: > 0"),
])
def test_slo_messages_whole(kwargs, message):
    with pytest.raises(ServesimError) as e:
        Slo(**kwargs)
    assert str(e.value) == message


def test_slo_bounds_and_dict():
    assert Slo(percentile=100, ttft_ms=0.001).as_dict() == {"ttft_ms": 0.001, "tpot_ms": None, "percentile": 100}
    assert Slo(percentile=0.5).percentile == 0.5  # any percentile in (0, 100], below 1 too
    assert Slo().as_dict() == {"ttft_ms": None, "tpot_ms": None, "percentile": 99.0}


# ---- steady state at its boundaries ---------------------------------------------------------------
def test_six_requests_are_enough():
    a = np.arange(6.0)  # k = 2: window (a[2], a[5]] = (2, 5], 3 arrivals, finishes 2.5, 3.5, 4.5
    assert steady_state(a, a + 0.1, a + 0.5) == (True, None)


def test_window_is_open_at_its_start_and_closed_at_its_end():
    a = np.arange(6.0)  # k = 2: window (2, 5], 3 arrivals
    # finishing exactly at t = 2 is outside the window: 2 of 3 (0.67) fall behind
    assert steady_state(a, a + 0.01, np.array([0.5, 1.5, 2.0, 3.5, 4.5, 6.0])) == (
        False, "completions fall behind arrivals (0.67 of the arrival rate)")
    # finishing exactly at t = 5 is inside: 3 of 3
    assert steady_state(a, a + 0.01, np.array([0.5, 1.5, 2.5, 3.5, 5.0, 6.0])) == (True, None)


def test_rate_ratio_exactly_at_the_tolerance_passes():
    # 16 requests 1 s apart: k = 5, window (5, 15], 10 arrivals; request 14 finishes at 20, so 9 of
    # the 10 finish in the window: ratio 0.9 = 1 - 0.1
    a = np.arange(16.0)
    e = a + 0.5
    e[14] = 20.0
    assert steady_state(a, a + 0.1, e, rate_tolerance=0.1) == (True, None)
    assert steady_state(a, a + 0.1, e, rate_tolerance=0.05) == (
        False, "completions fall behind arrivals (0.90 of the arrival rate)")


def test_growth_exactly_at_the_tolerance_passes():
    # 15 requests 1 s apart: k = 5; thirds' median arrivals 2 and 12 (span 10); TTFT 0.5 s for the
    # first two thirds, 3.0 s for the last: growth (3.0 - 0.5) / 10 = 0.25 s per s
    a = np.arange(15.0)
    ttft = np.where(a >= 10, 3.0, 0.5)
    f = a + ttft
    assert steady_state(a, f, f + 0.01, rate_tolerance=0.5, growth_tolerance=0.25) == (True, None)
    assert steady_state(a, f, f + 0.01, rate_tolerance=0.5, growth_tolerance=0.2499) == (
        False, "queue grows: TTFT rises 0.250 s per s")


# ---- certain_slo_failure --------------------------------------------------------------------------
def _rec(first, finish, out, status=None, arrival=None):
    n = len(first)
    return SimpleNamespace(arrival_s=np.arange(n, dtype=float) if arrival is None else np.asarray(arrival, float),
                           first_token_s=np.asarray(first, float), finish_s=np.asarray(finish, float),
                           output_tokens=np.asarray(out), status=np.full(n, FINISHED) if status is None
                           else np.asarray(status), fail_reason={})


def test_tpot_stop_threshold_and_message():
    # 9 requests at t = 0..8, judged: the last 6 (arrival >= 3); p99 of 6 needs 6 - floor(5 * 0.99) = 2 over.
    # TPOT = (finish - first) / (out - 1): 0.02 s for all but requests 7 and 8 (0.05 s), SLO 30 ms
    a = np.arange(9.0)
    first, out = a + 0.1, np.full(9, 11)
    finish = first + 0.2
    check = certain_slo_failure(Slo(tpot_ms=30))
    one = finish.copy()
    one[8] = first[8] + 0.5
    assert check(_rec(first, one, out), now=100.0) is None
    two = one.copy()
    two[7] = first[7] + 0.5
    assert certain_slo_failure(Slo(tpot_ms=30))(_rec(first, two, out), now=100.0) == \
        "p99 TPOT > SLO 30 ms: 2 of 6 judged requests over it"


def _exact(ttft_s, tpot_s=None, out=11):
    """9 requests at t = 0..8 s with the given TTFTs (s) and, if given, per-token times (s) over out - 1 gaps."""
    a = np.arange(9.0)
    first = a + np.asarray(ttft_s, float)
    finish = first + (out - 1) * np.asarray(0.0 if tpot_s is None else tpot_s, float)
    return _rec(first, finish, np.full(9, out))


def test_stop_thresholds_are_strict_at_the_slo():
    # binary fractions, so every latency is exact: judged requests 3..8, 2 over stop a p99 of 6
    at = [0.0] * 3 + [0.125] * 6  # TTFT exactly at the 125 ms SLO: not over
    assert certain_slo_failure(Slo(ttft_ms=125))(_exact(at), now=100.0) is None
    over = [0.0] * 7 + [0.1251] * 2
    assert certain_slo_failure(Slo(ttft_ms=125))(_exact(over), now=100.0) is not None
    just_under = [0.0] * 7 + [0.12495] * 2  # 124.95 ms: under 125 ms (but over 125 / 1.001 ms)
    assert certain_slo_failure(Slo(ttft_ms=125))(_exact(just_under), now=100.0) is None
    # TPOT exactly 31.25 ms per token over 10 gaps: not over; 31.24 ms (over 31.25 / 1.001) neither
    assert certain_slo_failure(Slo(tpot_ms=31.25))(_exact([0.125] * 9, [0.03125] * 9), now=100.0) is None
    assert certain_slo_failure(Slo(tpot_ms=31.25))(_exact([0.125] * 9, [0.03124] * 9), now=100.0) is None
    tpot = [0.03] * 7 + [0.0313] * 2
    assert certain_slo_failure(Slo(tpot_ms=31.25))(_exact([0.125] * 9, tpot), now=100.0) == \
        "p99 TPOT > SLO 31.25 ms: 2 of 6 judged requests over it"


def test_tpot_gaps_are_output_tokens_minus_one():
    # 10 gaps of 31 ms (under a 32 ms SLO) or 33 ms (over): two over stop a p99 of 6
    tpot = [0.031] * 7 + [0.033] * 2
    assert certain_slo_failure(Slo(tpot_ms=32))(_exact([0.125] * 9, tpot), now=100.0) is not None
    tpot = [0.031] * 8 + [0.033]
    assert certain_slo_failure(Slo(tpot_ms=32))(_exact([0.125] * 9, tpot), now=100.0) is None


def test_p100_stops_at_the_first_judged_request_over():
    # percentile 100: rank floor(5 * 1.0) = 5, so 6 - 5 = 1 over is enough
    ttft = [0.0] * 8 + [0.25]
    assert certain_slo_failure(Slo(ttft_ms=125, percentile=100))(_exact(ttft), now=100.0) == \
        "p100 TTFT > SLO 125 ms: 1 of 6 judged requests over it"


def test_waiting_exactly_the_slo_is_not_over():
    a = np.arange(9.0)
    first = a + 0.0625
    first[7:] = np.nan  # requests 7 and 8 still wait for their first token
    rec = _rec(first, a + 1.0, np.full(9, 2))
    check = certain_slo_failure(Slo(ttft_ms=125))
    assert check(rec, now=8.125) is None  # request 7 has waited 1.125 s, request 8 exactly 0.125 s
    assert certain_slo_failure(Slo(ttft_ms=125))(rec, now=8.25) == \
        "p99 TTFT > SLO 125 ms: 2 of 6 judged requests over it"


def test_tpot_ignores_single_token_and_unfinished_requests():
    a = np.arange(9.0)
    first, finish = a + 0.1, a + 10.0  # every TPOT would be huge
    out = np.full(9, 1)  # ... but no judged request has a TPOT: nothing to judge yet
    assert certain_slo_failure(Slo(tpot_ms=1))(_rec(first, finish, out), now=100.0) is None
    out = np.full(9, 2)
    status = np.full(9, FINISHED)
    status[3:8] = 0  # pending: only request 8 has finished; 1 over < the 2 needed of 6 multi-token judged
    assert certain_slo_failure(Slo(tpot_ms=1))(_rec(first, finish, out, status), now=100.0) is None


def test_ttft_stop_message_and_percentile_50():
    # p50 of 6 judged: rank floor(5 * 0.5) = 2, so 6 - 2 = 4 must be over
    a = np.arange(9.0)
    ttft = np.array([0.0] * 3 + [0.2] * 4 + [0.05] * 2)
    check = certain_slo_failure(Slo(ttft_ms=100, percentile=50))
    assert check(_rec(a + ttft, a + 1, np.full(9, 2)), now=100.0) == \
        "p50 TTFT > SLO 100 ms: 4 of 6 judged requests over it"


def test_first_failed_request_is_named():
    rec = _rec(np.arange(9.0), np.arange(9.0) + 1, np.full(9, 2))
    rec.fail_reason = {5: "b", 2: "a"}
    assert certain_slo_failure(Slo(ttft_ms=1e9))(rec, now=0.0) == "a request failed: a"


# ---- probe on a hand-built run ---------------------------------------------------------------------
# 9 requests 1 s apart; TTFT 0.1 s except requests 7 (0.2 s) and 8 (0.4 s); every request ends 0.5 s
# after arriving; outputs 3 tokens except request 4 (1 token) and 7 (5 tokens).
A = np.arange(9.0)
TTFT = np.array([0.1] * 7 + [0.2, 0.4])
OUT = np.array([3, 3, 3, 3, 1, 3, 3, 5, 3])
# judged: requests 3..8. TTFT ms [100, 100, 100, 100, 200, 400]: p99 at rank 0.99 * 5 = 4.95 ->
# 200 + 0.95 * 200 = 390; p50 at rank 2.5 -> 100.
# TPOT ms of the multi-token ones (3, 5, 6, 7, 8): 400/2, 400/2, 400/2, 300/4, 100/2 = [200, 200, 200, 75, 50]:
# p99 at rank 3.96 of [50, 75, 200, 200, 200] -> 200; p50 (rank 2) -> 200.
# steady: k = 3, window (3, 8]: arrivals 4..8 (5), finishes 3.5..7.5 (5): ratio 1; TTFT thirds' medians
# 0.1 and 0.2 over arrival medians 1 and 7: growth 0.1 / 6 <= 0.1.


def _fake_simulate(monkeypatch, status=None, fail_reason=None, stopped=None, finish=None, ttft=TTFT):
    calls = []

    def simulate(scenario, stop=None, **kw):
        calls.append((scenario.rate, stop))
        rec = SimpleNamespace(arrival_s=A.copy(), first_token_s=A + ttft, finish_s=A + 0.5 if finish is None else finish,
                              output_tokens=OUT.copy(), status=np.full(9, FINISHED) if status is None else status,
                              fail_reason=fail_reason or {})
        return SimpleNamespace(recorder=rec, stopped=stopped)

    monkeypatch.setattr(run, "simulate", simulate)
    return calls


def test_probe_percentiles_and_ok(monkeypatch):
    calls = _fake_simulate(monkeypatch)
    p = probe(BASE, 3.5, Slo(ttft_ms=400, tpot_ms=250), SearchSettings(probe_requests=30))
    assert p == {"rate": 3.5, "ok": True, "p99_ttft_ms": pytest.approx(390.0, rel=1e-12),
                 "p99_tpot_ms": pytest.approx(200.0, rel=1e-12), "reason": None}
    assert calls == [(3.5, None)]  # no early stop unless asked


@pytest.mark.parametrize("slo, reason", [
    (Slo(ttft_ms=300), "p99 TTFT 390.0 ms > SLO 300 ms"),
    (Slo(tpot_ms=150), "p99 TPOT 200.0 ms > SLO 150 ms"),
    (Slo(ttft_ms=300, tpot_ms=150), "p99 TTFT 390.0 ms > SLO 300 ms"),  # the first failing SLO is named
])
def test_probe_slo_reasons(monkeypatch, slo, reason):
    _fake_simulate(monkeypatch)
    p = probe(BASE, 2.0, slo, SearchSettings(probe_requests=30))
    assert p["ok"] is False and p["reason"] == reason


def test_probe_other_percentile_adds_its_fields(monkeypatch):
    _fake_simulate(monkeypatch)
    p = probe(BASE, 2.0, Slo(ttft_ms=150, tpot_ms=250, percentile=50), SearchSettings(probe_requests=30))
    assert p["ok"] is True and p["reason"] is None
    assert p["p50_ttft_ms"] == pytest.approx(100.0, rel=1e-12) and p["p50_tpot_ms"] == pytest.approx(200.0, rel=1e-12)
    assert p["p99_ttft_ms"] == pytest.approx(390.0, rel=1e-12)
    p = probe(BASE, 2.0, Slo(ttft_ms=90, percentile=50), SearchSettings(probe_requests=30))
    assert p["reason"] == "p50 TTFT 100.0 ms > SLO 90 ms"


def test_probe_slo_exactly_met_is_ok(monkeypatch):
    # TTFT 0.125 s and 0.375 s to the end (binary fractions: exact ms): TTFT 125 ms, TPOT 375 / 2 = 187.5 ms
    # (187.5 / 4 = 93.75 for request 7, whose 5 tokens are judged too; 1-token request 4 has none)
    _fake_simulate(monkeypatch, ttft=np.full(9, 0.125), finish=A + 0.5)
    p = probe(BASE, 2.0, Slo(ttft_ms=125, tpot_ms=187.5), SearchSettings(probe_requests=30))
    assert (p["ok"], p["p99_ttft_ms"], p["p99_tpot_ms"], p["reason"]) == (True, 125.0, 187.5, None)
    p = probe(BASE, 2.0, Slo(ttft_ms=124.9), SearchSettings(probe_requests=30))
    assert p["reason"] == "p99 TTFT 125.0 ms > SLO 124.9 ms"


def test_probe_passes_its_tolerances(monkeypatch):
    finish = A + 0.5
    finish[4:8] = 50.0  # 1 of 5 finish in the window: ratio 0.2
    _fake_simulate(monkeypatch, finish=finish)
    p = probe(BASE, 2.0, Slo(ttft_ms=1.0), SearchSettings(probe_requests=30, rate_tolerance=0.85))
    assert p["reason"] == "p99 TTFT 390.0 ms > SLO 1 ms"  # 0.2 >= 1 - 0.85: steady enough
    _fake_simulate(monkeypatch)
    p = probe(BASE, 2.0, Slo(ttft_ms=1e6), SearchSettings(probe_requests=30, growth_tolerance=0.01))
    assert p["reason"] == "queue grows: TTFT rises 0.017 s per s"  # 0.1 s over 6 s of arrivals


def test_probe_without_multi_token_requests_has_no_tpot(monkeypatch):
    _fake_simulate(monkeypatch)
    real = run.simulate

    def single(scenario, stop=None, **kw):
        result = real(scenario, stop=stop, **kw)
        result.recorder.output_tokens[:] = 1
        return result

    monkeypatch.setattr(run, "simulate", single)
    p = probe(BASE, 2.0, Slo(ttft_ms=400, tpot_ms=1.0), SearchSettings(probe_requests=30))
    assert p == {"rate": 2.0, "ok": True, "p99_ttft_ms": pytest.approx(390.0, rel=1e-12), "p99_tpot_ms": None,
                 "reason": None}


def test_probe_unsteady_reason_comes_first(monkeypatch):
    finish = A + 0.5
    finish[4:8] = 50.0  # only request 3 (3.5) finishes in the window (3, 8]: 1 of 5
    _fake_simulate(monkeypatch, finish=finish)
    p = probe(BASE, 2.0, Slo(ttft_ms=1.0), SearchSettings(probe_requests=30))
    assert p["ok"] is False and p["reason"] == "completions fall behind arrivals (0.20 of the arrival rate)"


def test_probe_failures(monkeypatch):
    status = np.full(9, FINISHED)
    status[2] = FAILED
    _fake_simulate(monkeypatch, status=status, fail_reason={2: "too long"})
    p = probe(BASE, 2.0, Slo(ttft_ms=400), SearchSettings(probe_requests=30))
    assert p == {"rate": 2.0, "ok": False, "p99_ttft_ms": None, "p99_tpot_ms": None,
                 "reason": "1 of 9 requests failed: too long"}
    # one failure allowed (unservable at any rate): judged on the 8 others; request 2 is left out, so
    # the judged third starts at arrival 3 again: the same p99s
    calls = _fake_simulate(monkeypatch, status=status, fail_reason={2: "too long"})
    p = probe(BASE, 2.0, Slo(ttft_ms=400), SearchSettings(probe_requests=30), allowed_failures=1, early_stop=True)
    assert p["ok"] is True and p["p99_ttft_ms"] == pytest.approx(390.0, rel=1e-12)
    assert calls[0][1] is None  # early stopping only without allowed failures


def test_probe_stopped_early(monkeypatch):
    calls = _fake_simulate(monkeypatch, stopped="p99 TTFT > SLO 1 ms: 2 of 6 judged requests over it")
    p = probe(BASE, 2.0, Slo(ttft_ms=1.0), SearchSettings(probe_requests=30), early_stop=True)
    assert callable(calls[0][1])
    assert p == {"rate": 2.0, "ok": False, "p99_ttft_ms": None, "p99_tpot_ms": None, "stopped_early": True,
                 "reason": "p99 TTFT > SLO 1 ms: 2 of 6 judged requests over it (stopped early: certain to fail)"}


# ---- saturation run ----------------------------------------------------------------------------------
def _saturation(monkeypatch, finish, status, reasons=None):
    seen = []

    def simulate(scenario, stop=None, **kw):
        seen.append(scenario.rate)
        n = len(finish)
        rec = SimpleNamespace(finish_s=np.asarray(finish, float), status=np.asarray(status),
                              fail_reason=reasons or {}, arrival_s=np.zeros(n))
        return SimpleNamespace(recorder=rec, stopped=None)

    monkeypatch.setattr(run, "simulate", simulate)
    return seen


def test_saturation_rate_is_finished_over_last_finish(monkeypatch):
    seen = _saturation(monkeypatch, [1.0, 2.0, 3.0, 4.0], [FINISHED] * 4)
    assert saturation_rate(BASE, SearchSettings()) == (1.0, 0, None) and seen == [math.inf]
    _saturation(monkeypatch, [0.0, 0.0], [FINISHED] * 2)
    assert saturation_rate(BASE, SearchSettings()) == (math.inf, 0, None)


def test_unservable_fraction_boundary(monkeypatch):
    # 100 requests, 1 failed: 1 > 0.01 * 100 is false -> 99 finished by t = 9.9 s: 10 req/s
    finish = np.full(100, 9.9)
    status = np.full(100, FINISHED)
    status[7] = FAILED
    _saturation(monkeypatch, finish, status, {7: "too long"})
    assert saturation_rate(BASE, SearchSettings()) == (pytest.approx(10.0, rel=1e-12), 1, None)
    status[3] = FAILED
    _saturation(monkeypatch, finish, status, {3: "prompt too long", 7: "too long"})
    assert saturation_rate(BASE, SearchSettings()) == (
        0.0, 2, "2 of 100 requests can never be served: prompt too long")


def test_nothing_finished_is_infeasible(monkeypatch):
    _saturation(monkeypatch, [np.nan] * 2, [FAILED] * 2, {0: "a", 1: "b"})
    assert saturation_rate(BASE, SearchSettings(max_unservable_fraction=0.99)) == (
        0.0, 2, "2 of 2 requests can never be served: a")


# ---- the search loop with stand-in probes --------------------------------------------------------------
def _search(monkeypatch, ok_up_to=10.0, mu=4.0, p99=lambda rate: 10.0, sat_why=None, **settings):
    rates, early = [], []

    def fake_probe(scenario, rate, slo, settings, allowed_failures=0, early_stop=False):
        rates.append(rate)
        early.append(early_stop)
        ok = rate <= ok_up_to
        return {"rate": rate, "ok": ok, "p99_ttft_ms": p99(rate), "p99_tpot_ms": 1.0,
                "reason": None if ok else "slow"}

    monkeypatch.setattr(search, "saturation_rate", lambda s, st: (mu, 3, sat_why))
    monkeypatch.setattr(search, "probe", fake_probe)
    out = search_max_rate(BASE, Slo(ttft_ms=50.0), SearchSettings(probe_requests=30, **settings))
    return out, rates, early


def test_bracket_then_bisect(monkeypatch):
    # ok up to 10 req/s, mu = 4: 4 ok, 8 ok, 16 no, 12 no, 10 ok, 11 no, 10.5 no (7 probes)
    (best, probes, mu, unservable, why), rates, early = _search(monkeypatch)
    assert rates == [4.0, 8.0, 16.0, 12.0, 10.0, 11.0, 10.5]
    assert (best, mu, unservable, why) == (10.0, 4.0, 3, None)
    assert [p["role"] for p in probes] == ["search"] * 7
    assert early == [False] + [True] * 6  # early stopping once a rate is ok


def test_expand_factor_and_probe_count(monkeypatch):
    (best, *_), rates, early = _search(monkeypatch, expand_factor=3.0, max_probes=6, early_stop=False)
    assert rates == [4.0, 12.0, 8.0, 10.0, 11.0] and best == 10.0 and early == [False] * 5


def test_saturation_infeasible_skips_the_search(monkeypatch):
    out, rates, _ = _search(monkeypatch, sat_why="2 of 100 requests can never be served: x")
    assert out == (0.0, [], 4.0, 3, "2 of 100 requests can never be served: x") and rates == []


def test_latency_floor_stops_the_search(monkeypatch):
    # nothing ok and halving the rate leaves p99 TTFT at 100 ms (> 50 ms): stop after 2 probes
    (best, probes, _, _, why), rates, _ = _search(monkeypatch, ok_up_to=0.0, p99=lambda rate: 100.0)
    assert rates == [4.0, 2.0] and best == 0.0
    assert why == "no probed rate met the SLOs (at 2 req/s: slow)"


def test_no_floor_while_latency_keeps_falling(monkeypatch):
    (best, probes, _, _, why), rates, _ = _search(monkeypatch, ok_up_to=0.0, p99=lambda rate: 100.0 * rate)
    assert rates == [4.0, 2.0, 1.0, 0.5, 0.25, 0.125, 0.0625]
    assert best == 0.0 and why == "no probed rate met the SLOs (at 0.0625 req/s: slow)"


def _p(ok=False, ttft=None, tpot=None):
    return {"ok": ok, "p99_ttft_ms": ttft, "p99_tpot_ms": tpot}


@pytest.mark.parametrize("prev, cur, slo, expected", [
    (_p(ttft=100.0), _p(ttft=95.0), Slo(ttft_ms=50), True),  # exactly 0.95 x: counts as no improvement
    (_p(ttft=100.0), _p(ttft=94.9), Slo(ttft_ms=50), False),
    (_p(ok=True, ttft=100.0), _p(ttft=100.0), Slo(ttft_ms=50), False),
    (_p(ttft=100.0), _p(ok=True, ttft=100.0), Slo(ttft_ms=50), False),
    (_p(ttft=100.0), _p(ttft=40.0), Slo(ttft_ms=50), False),  # under its SLO: nothing over
    (_p(ttft=100.0), _p(ttft=100.0), Slo(tpot_ms=5), False),  # no TTFT SLO; TPOT None: nothing over
    (_p(tpot=10.0), _p(tpot=10.0), Slo(tpot_ms=5), True),
    (_p(ttft=None), _p(ttft=100.0), Slo(ttft_ms=50), False),  # the previous probe has no p99
    (_p(ttft=100.0, tpot=10.0), _p(ttft=100.0, tpot=5.0), Slo(ttft_ms=50, tpot_ms=4), False),  # TPOT fell
])
def test_at_floor_cases(prev, cur, slo, expected):
    assert _at_floor(prev, cur, slo) is expected


# ---- the candidate record --------------------------------------------------------------------------------
def _task(target=30.0, scenario=None):
    return {"scenario": (scenario or Scenario(hardware="l4", num_requests=60)).as_dict(), "config": {"tp": 1},
            "search": SearchSettings(probe_requests=60).as_dict(), "slo": Slo(ttft_ms=500.0).as_dict(),
            "target_rate": target}


def test_infeasible_record(monkeypatch):
    monkeypatch.setattr(search, "search_max_rate", lambda *a: (0.0, [{"rate": 4.0}], 4.0, 2, "too slow"))
    rec = search_candidate(_task())
    assert rec["scenario"] == _task()["scenario"]
    assert {k: rec[k] for k in ("config", "max_rate_per_replica", "replicas_needed", "num_gpus", "price_usd_per_hour",
                                "p99_ttft_ms", "p99_tpot_ms", "feasible", "reason", "saturation_rate",
                                "num_unservable", "probes")} == {
        "config": {"tp": 1}, "max_rate_per_replica": 0.0, "replicas_needed": None, "num_gpus": None,
        "price_usd_per_hour": None, "p99_ttft_ms": None, "p99_tpot_ms": None, "feasible": False, "reason": "too slow",
        "saturation_rate": 4.0, "num_unservable": 2, "probes": [{"rate": 4.0}]}
    assert rec["prediction"]["label"] and "uncertainty" not in rec


def test_error_becomes_the_reason(monkeypatch):
    def boom(*a):
        raise ServesimError("tp=3 does not divide 32 heads")

    monkeypatch.setattr(search, "search_max_rate", boom)
    task = _task()
    rec = search_candidate(task)
    assert rec == {"config": {"tp": 1}, "scenario": task["scenario"], "max_rate_per_replica": 0.0,
                   "replicas_needed": None, "num_gpus": None, "price_usd_per_hour": None, "p99_ttft_ms": None,
                   "p99_tpot_ms": None, "feasible": False, "reason": "tp=3 does not divide 32 heads",
                   "saturation_rate": None, "num_unservable": None, "probes": []}


def test_operating_point_gives_up_after_the_extra_replicas(monkeypatch):
    rates = []
    monkeypatch.setattr(search, "search_max_rate", lambda *a: (7.0, [], 9.0, 1, None))

    def fake_probe(scenario, rate, slo, settings, allowed_failures=0, early_stop=False):
        rates.append((rate, allowed_failures, early_stop))
        return {"rate": rate, "ok": False, "p99_ttft_ms": 1.0, "p99_tpot_ms": 1.0, "reason": f"slow at {rate:g}"}

    monkeypatch.setattr(search, "probe", fake_probe)
    rec = search_candidate(_task(30.0))
    # ceil(30 / 7) = 5 replicas, then 6 and 7 (max_extra_replicas = 2); each probe allows the 1 unservable
    assert rates == [(6.0, 1, True), (5.0, 1, True), (30.0 / 7, 1, True)]
    assert rec["feasible"] is False and rec["replicas_needed"] is None
    assert rec["reason"] == f"no operating point at the target rate (last: slow at {30.0 / 7:g})"
    assert [p["role"] for p in rec["probes"]] == ["operating"] * 3


def test_operating_point_record_and_uncertainty(monkeypatch):
    monkeypatch.setattr(search, "search_max_rate", lambda *a: (10.0, [], 12.0, 0, None))
    monkeypatch.setattr(search, "probe", lambda s, rate, *a, **k: {"rate": rate, "ok": True, "p99_ttft_ms": 12.5,
                                                                    "p99_tpot_ms": 3.25, "reason": None})
    monkeypatch.setattr(run, "describe_prediction", lambda s: {"label": "x", "speed_error_p90_pct": 20.0})
    rec = search_candidate(_task(30.0))
    # 30 / 10 = 3 replicas of 1 L4 GPU at $0.71/h; p90 error 20%: rate in [10/1.2, 10/0.8] -> replicas 3..4
    assert (rec["replicas_needed"], rec["num_gpus"], rec["feasible"], rec["reason"]) == (3, 3, True, None)
    assert rec["price_usd_per_hour"] == pytest.approx(3 * 0.71, rel=1e-12)
    assert (rec["p99_ttft_ms"], rec["p99_tpot_ms"]) == (12.5, 3.25)
    assert rec["uncertainty"]["replicas_range"] == [3, 4]
    assert rec["uncertainty"]["max_rate_per_replica_range"] == pytest.approx([10 / 1.2, 12.5], rel=1e-12)


def test_capacity_range_whole_record_and_edges():
    assert capacity_range(10.0, 30.0, 20.0) == {
        "speed_error_p90_pct": 20.0, "max_rate_per_replica_range": [10 / 1.2, 10 / 0.8], "replicas_range": [3, 4],
        "basis": "p90 |error| of held-out published points priced like this candidate (profiles/data/fidelity.json)"}
    # the error is capped at 95%: rate in [10 / 1.95, 10 / 0.05] = [5.13, 200]
    r = capacity_range(10.0, 100.0, 300.0)
    assert r["max_rate_per_replica_range"] == pytest.approx([10 / 1.95, 200.0], rel=1e-12)
    assert r["replicas_range"] == [1, 20]  # ceil(100 / 200) = 1, ceil(100 / 5.128) = 20
    assert capacity_range(10.0, 1e-12, 20.0)["replicas_range"] == [1, 1]  # never fewer than one replica
    assert capacity_range(-1.0, 30.0, 20.0) is None
    assert capacity_range(0.5, 1.0, 20.0)["replicas_range"] == [2, 3]  # rate in [0.417, 0.625]
