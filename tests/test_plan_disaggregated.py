"""`plan --disaggregated`: candidates cheapest first, and the answer is the cheapest ok probe."""
from __future__ import annotations

from simulator.scenario import Scenario
from simulator.studies import SearchSettings, Slo, plan_disaggregated
from simulator.studies.plan.disaggregated import candidates


def test_candidates_are_every_split_and_replica_count_cheapest_first():
    base = Scenario(price_usd_per_hour=1.0, prefill_tp=2, decode_tp=1)
    got = candidates(base, 3)
    splits = sorted((c["num_prefill_instances"], c["num_decode_instances"]) for c in got if c["kind"] == "disaggregated")
    assert splits == [(1, 1), (1, 2), (2, 1)]
    assert [c["replicas"] for c in got if c["kind"] == "colocated"] == [1, 2, 3]
    prices = [c["usd_per_hour"] for c in got]
    assert prices == sorted(prices)
    one_one = next(c for c in got if c.get("num_prefill_instances") == 1 and c.get("num_decode_instances") == 1)
    assert one_one["num_gpus"] == 3 and one_one["usd_per_hour"] == 3.0  # 1 x tp2 + 1 x tp1


def test_plan_returns_the_cheapest_ok_split_with_provenance():
    base = Scenario(model="llama-3-8b", engine="ideal", profile="none", frontend="offline", prompt_tokens="512",
                    output_tokens="32", price_usd_per_hour=1.0)
    slo = Slo(ttft_ms=500.0, tpot_ms=50.0)
    doc = plan_disaggregated(base, target_rate=2.0, slo=slo, settings=SearchSettings(probe_requests=60),
                             max_instances=3)
    best = doc["disaggregated"]
    assert best is not None and best["ok"]
    cheaper = [p for p in doc["probes"] if p["kind"] == "disaggregated" and p["usd_per_hour"] < best["usd_per_hour"]]
    assert all(not p["ok"] for p in cheaper)
    assert (best["num_prefill_instances"], best["num_decode_instances"]) == (1, 1)  # light load: the smallest split
    assert doc["colocated"]["replicas"] == 1
    assert doc["provenance"]["prediction"]
