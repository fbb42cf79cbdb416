"""Exact oracles for simulator/studies/plan/sweep.py (issue 19, mutation survivors): the planning base,
the task list and its hashes (sha256 of the key-sorted JSON, computed here with hashlib), the resumable
sweep with a stand-in runner, the Pareto frontier and cheapest pick on hand-made ties, and plan.json."""
from __future__ import annotations

import hashlib
import json

import pytest

import simulator.studies.plan.sweep as sweep
from simulator.errors import ServesimError
from simulator.scenario import Scenario
from simulator.studies.plan.search import SearchSettings, Slo
from simulator.studies.plan.sweep import (
    cheapest_index,
    default_store,
    pareto_indices,
    plan_document,
    plan_hash,
    plan_json,
    plan_tasks,
    planning_base,
    run_sweep,
)
from simulator.studies.sweep_store import SweepStore

SETTINGS = SearchSettings(probe_requests=60, max_probes=5)
SLO = Slo(ttft_ms=200.0, tpot_ms=30.0)


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_planning_base_fields():
    base = Scenario(replicas=4, num_requests=1000, rate=1.0)
    s = planning_base(base, SETTINGS, SLO, 12.5)
    assert (s.replicas, s.num_requests, s.slo_ttft_ms, s.slo_tpot_ms, s.rate) == (1, 60, 200.0, 30.0, 12.5)


def test_planning_base_refuses_closed_loops():
    with pytest.raises(ServesimError) as e:
        planning_base(Scenario(closed_loop_users=4), SETTINGS, SLO, 1.0)
    assert str(e.value) == "plan searches over the arrival rate; closed_loop_users cannot be used with it"


@pytest.mark.parametrize("rate", [0.0, -1.0, float("inf"), float("nan")])
def test_target_rate_message(rate):
    with pytest.raises(ServesimError) as e:
        plan_tasks(Scenario(), {}, settings=SETTINGS, slo=SLO, target_rate=rate)
    assert str(e.value) == f"target_rate={rate} is invalid; allowed: a finite number > 0 (requests/s)"


def test_target_rates_below_one_request_per_second_are_allowed():
    (task,) = plan_tasks(Scenario(), {}, settings=SETTINGS, slo=SLO, target_rate=0.5)
    assert task["target_rate"] == 0.5 and task["scenario"]["rate"] == 0.5


def test_task_dicts_and_hashes(tmp_path, monkeypatch):
    tasks = plan_tasks(Scenario(), {"tp": [1, 2]}, settings=SETTINGS, slo=SLO, target_rate=50.0)
    assert [sorted(t) for t in tasks] == [["config", "scenario", "search", "search_version", "slo", "target_rate"]] * 2
    assert [t["config"] for t in tasks] == [{"tp": 1}, {"tp": 2}]
    assert all(t["search"] == SETTINGS.as_dict() and t["slo"] == SLO.as_dict() and t["target_rate"] == 50.0
               and t["search_version"] == 3 for t in tasks)
    assert [t["scenario"]["tp"] for t in tasks] == [1, 2] and tasks[0]["scenario"]["rate"] == 50.0
    assert plan_hash(tasks) == _sha([_sha(t) for t in tasks])
    monkeypatch.setenv("SERVESIM_CACHE_DIR", str(tmp_path))
    assert default_store(tasks) == tmp_path / "sweeps" / _sha([_sha(t) for t in tasks])[:16]


def test_trace_base_takes_rate_arrivals(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n0,10,2\n1,20,3\n")
    (task,) = plan_tasks(Scenario(trace=str(trace)), {}, settings=SETTINGS, slo=SLO, target_rate=2.0)
    assert task["scenario"]["trace_arrivals"] == "rate"


# ---- run_sweep with a stand-in runner ------------------------------------------------------------------------
def test_run_sweep_stores_the_json_form_and_reuses_matching_tasks(tmp_path, monkeypatch):
    tasks = plan_tasks(Scenario(), {"tp": [1, 2, 4]}, settings=SETTINGS, slo=SLO, target_rate=50.0)
    ran = []

    def fake_run_tasks(fn, todo, *, on_done, backend, jobs, ray_address):
        ran.append((fn, [t["config"] for t in todo], backend, jobs, ray_address))
        for j, t in enumerate(todo):
            on_done(j, {"config": t["config"], "rate": float("inf"), "pair": (1, 2)})

    monkeypatch.setattr(sweep, "run_tasks", fake_run_tasks)
    store, ticks = SweepStore(tmp_path), []
    results, computed, reused = run_sweep(tasks, store, jobs=3, on_progress=lambda: ticks.append(1))
    assert (computed, reused, len(ticks)) == (3, 0, 3)
    assert ran == [(sweep.search_candidate, [{"tp": 1}, {"tp": 2}, {"tp": 4}], "local", 3, None)]
    # stored as JSON: inf as "inf" (json_safe), tuples as lists; the result is that stored form
    assert results[0] == {"config": {"tp": 1}, "rate": "inf", "pair": [1, 2]}
    key = _sha(tasks[1])
    assert json.loads(store.path(key).read_text()) == {"hash": key, "task": tasks[1], "candidate": results[1]}
    # a stored record whose task differs is recomputed; the others are read back
    stored = json.loads(store.path(key).read_text())
    store.save(key, {**stored, "task": {**tasks[1], "target_rate": 1.0}})
    ran.clear()
    ticks.clear()
    again, computed, reused = run_sweep(tasks, store, backend="ray", ray_address="auto",
                                        on_progress=lambda: ticks.append(1))
    assert (computed, reused, len(ticks)) == (1, 2, 3) and again == results
    assert ran == [(sweep.search_candidate, [{"tp": 2}], "ray", None, "auto")]


# ---- Pareto frontier and cheapest ---------------------------------------------------------------------------
def _c(price, ttft, tpot, feasible=True):
    return {"feasible": feasible, "price_usd_per_hour": price, "p99_ttft_ms": ttft, "p99_tpot_ms": tpot}


def test_pareto_missing_latency_counts_as_infinite():
    cs = [_c(5.0, None, 1.0), _c(5.0, 100.0, 1.0), _c(4.0, 200.0, None), _c(1.0, 1.0, 1.0, feasible=False)]
    # 0 (inf TTFT) is dominated by 1; 2 (inf TPOT) is cheaper than 1, so neither dominates
    assert pareto_indices(cs) == [2, 1]
    assert cheapest_index(cs) == 2


def test_pareto_order_is_by_objectives_then_index():
    cs = [_c(3.0, 10.0, 1.0), _c(2.0, 20.0, 2.0), _c(2.0, 20.0, 2.0), _c(1.0, 30.0, 3.0)]
    assert pareto_indices(cs) == [3, 1, 2, 0]  # equal candidates both stay, in index order
    assert cheapest_index(cs) == 3
    assert cheapest_index([_c(2.0, 5.0, 1.0), _c(2.0, 4.0, 1.0), _c(2.0, 4.0, 1.0)]) == 1


def test_plan_document_and_json():
    cs = [_c(2.0, 20.0, 2.0), _c(1.0, float("inf"), 3.0)]
    doc = plan_document(cs, target_rate=30.0, slo=SLO)
    assert {k: doc[k] for k in ("kind", "target_rate", "slo", "candidates", "pareto", "cheapest")} == {
        "kind": "plan", "target_rate": 30.0, "slo": SLO.as_dict(), "candidates": cs, "pareto": [1, 0], "cheapest": 1}
    assert isinstance(doc["servesim_version"], str) and doc["servesim_version"]
    text = plan_json({"b": [float("inf"), float("nan")], "a": 1})
    assert text == '{\n  "a": 1,\n  "b": [\n    "inf",\n    null\n  ]\n}'
