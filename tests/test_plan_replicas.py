"""Exact replica counts of a plan candidate (issue 19): replicas = ceil(target / max rate per
replica), the operating probe runs at target / replicas, and the price is replicas x tp x the
device's $/h. The search and the probes are replaced by stand-ins (a replica sustains exactly
`max_rate` req/s), so the counts are exact numbers, not `>=` bounds that a retry could mask.
"""

import pytest

import simulator.studies.plan.search as search
from simulator.scenario import Scenario
from simulator.studies.plan.search import SearchSettings, Slo, capacity_range, search_candidate

L4_USD_PER_HOUR = 0.71  # hardware/data/l4.toml


def _candidate(monkeypatch, target: float, max_rate: float, *, tp: int = 1, always_ok: bool = False) -> dict:
    probes = []

    def fake_search(scenario, slo, settings):
        return max_rate, [], 1.5 * max_rate, 0, None

    def fake_probe(scenario, rate, slo, settings, allowed_failures=0, early_stop=False):
        probes.append(rate)
        ok = always_ok or rate <= max_rate * (1 + 1e-12)
        return {"rate": rate, "ok": ok, "p99_ttft_ms": 10.0, "p99_tpot_ms": 1.0, "reason": None if ok else "slow"}

    monkeypatch.setattr(search, "search_max_rate", fake_search)
    monkeypatch.setattr(search, "probe", fake_probe)
    scenario = Scenario(model="llama-3-8b", hardware="l4", tp=tp, num_requests=60)
    task = {"scenario": scenario.as_dict(), "config": {}, "search": SearchSettings(probe_requests=60).as_dict(),
            "slo": Slo(ttft_ms=500.0).as_dict(), "target_rate": target}
    rec = search_candidate(task)
    rec["_probe_rates"] = probes
    return rec


@pytest.mark.parametrize("target, max_rate, replicas", [
    (30.0, 7.0, 5),  # 4.29 -> 5
    (28.0, 7.0, 4),  # exactly 4: no spare replica
    (30.0, 40.0, 1),  # one replica is more than enough
    (100.0, 9.99, 11),  # 10.01 -> 11
    (0.5, 0.2, 3),  # 2.5 -> 3
    (0.3, 0.1, 3),  # 0.3 / 0.1 = 2.9999999999999996 in floats: still 3
    (0.9, 0.03, 30),  # 0.9 / 0.03 = 30.000000000000004 in floats: 30, not 31
])
def test_replicas_round_up_and_one_operating_probe_suffices(monkeypatch, target, max_rate, replicas):
    rec = _candidate(monkeypatch, target, max_rate)
    assert rec["feasible"] and rec["reason"] is None
    assert rec["replicas_needed"] == replicas
    # the first operating probe already runs at target / replicas <= max rate: no retry was needed
    assert rec["_probe_rates"] == [pytest.approx(target / replicas, rel=1e-12)]
    assert rec["price_usd_per_hour"] == pytest.approx(replicas * L4_USD_PER_HOUR, rel=1e-12)


@pytest.mark.parametrize("target, max_rate, replicas", [(30.0, 7.0, 5), (30.0, 40.0, 1), (0.5, 0.2, 3)])
def test_replicas_when_every_probe_is_ok(monkeypatch, target, max_rate, replicas):
    """Probes always ok: nothing can correct a wrong count afterwards."""
    rec = _candidate(monkeypatch, target, max_rate, always_ok=True)
    assert rec["replicas_needed"] == replicas and len(rec["_probe_rates"]) == 1


def test_price_counts_every_gpu_of_a_replica(monkeypatch):
    rec = _candidate(monkeypatch, 30.0, 7.0, tp=2)
    assert rec["replicas_needed"] == 5 and rec["price_usd_per_hour"] == pytest.approx(5 * 2 * L4_USD_PER_HOUR)


def test_retry_adds_one_replica_when_the_operating_probe_fails(monkeypatch):
    """The replica stand-in sustains 7 req/s but probes above 5 req/s fail: 30/5 -> 6 replicas."""
    probes = []
    monkeypatch.setattr(search, "search_max_rate", lambda *a: (7.0, [], 9.0, 0, None))

    def fake_probe(scenario, rate, slo, settings, allowed_failures=0, early_stop=False):
        probes.append(rate)
        return {"rate": rate, "ok": rate <= 5.0, "p99_ttft_ms": 1.0, "p99_tpot_ms": 1.0, "reason": "x"}

    monkeypatch.setattr(search, "probe", fake_probe)
    task = {"scenario": Scenario(hardware="l4").as_dict(), "config": {}, "search": SearchSettings().as_dict(),
            "slo": Slo(ttft_ms=500.0).as_dict(), "target_rate": 30.0}
    rec = search_candidate(task)
    assert probes == [6.0, 5.0] and rec["replicas_needed"] == 6  # ceil(30/7) = 5 tried first, then 6


def test_capacity_range_by_hand():
    """max rate 10, target 30, p90 error 20%: rate in [10/1.2, 10/0.8] = [8.33, 12.5];
    replicas ceil(30/12.5) = 3 .. ceil(30/8.33) = 4."""
    r = capacity_range(10.0, 30.0, 20.0)
    assert r["max_rate_per_replica_range"] == pytest.approx([10 / 1.2, 12.5])
    assert r["replicas_range"] == [3, 4]
    assert capacity_range(10.0, 30.0, None) is None and capacity_range(0.0, 30.0, 20.0) is None
    assert capacity_range(10.0, 25.0, 20.0)["replicas_range"] == [2, 3]  # 25/12.5 = 2 exactly
