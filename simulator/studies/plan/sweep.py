"""Capacity planning: for every candidate configuration (a cross product of scenario changes),
the highest rate one replica sustains within the SLOs (search.py), the replicas and price
needed for a target rate, the cheapest feasible candidate and the Pareto frontier.

Owns the plan inputs -> tasks step (one plain-dict task per candidate, hashed with
sweep_store.config_hash), the resumable sweep over them (finished candidates are read back from
the store, the rest run on the local or Ray backend and are stored as they finish) and the
plan document:
    {"kind": "plan", "servesim_version", "target_rate", "slo", "candidates": [...],
     "pareto": [indices], "cheapest": index | null}
Pareto frontier: feasible candidates that no other feasible candidate matches or beats on all of
price_usd_per_hour, p99_ttft_ms and p99_tpot_ms (at the operating load) while beating it on one.
Per-replica search: each candidate is simulated as one replica fed a Poisson (or the base
arrival process) stream; a router splitting a stream over n replicas smooths it, so this errs
on the side of more replicas. Does not render tables (table.py).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from simulator.errors import ServesimError
from simulator.scenario import Scenario
from simulator.studies.compare.variants import json_safe, variant_scenarios
from simulator.studies.plan.search import SearchSettings, Slo, search_candidate
from simulator.studies.sweep_store import SweepStore, cache_dir, config_hash, run_tasks

SEARCH_VERSION = 3  # bump when the search changes what a stored candidate means (2: early-stopped probes; 3: num_gpus)


def planning_base(base: Scenario, settings: SearchSettings, slo: Slo, target_rate: float) -> Scenario:
    """The base as the search sees it: one replica, probe_requests requests, the plan's SLOs,
    rate = the target (each probe replaces it), trace lengths with synthetic arrivals."""
    if base.closed_loop_users:
        raise ServesimError("plan searches over the arrival rate; closed_loop_users cannot be used with it")
    changes = dict(replicas=1, num_requests=settings.probe_requests, slo_ttft_ms=slo.ttft_ms,
                   slo_tpot_ms=slo.tpot_ms, rate=target_rate)
    if base.trace:
        changes["trace_arrivals"] = "rate"
    return base.replace(**changes)


def plan_tasks(base: Scenario, grid: dict[str, list], *, settings: SearchSettings, slo: Slo,
               target_rate: float) -> list[dict]:
    if not target_rate > 0 or target_rate == float("inf"):
        raise ServesimError(f"target_rate={target_rate} is invalid; allowed: a finite number > 0 (requests/s)")
    pbase = planning_base(base, settings, slo, target_rate)
    return [{"scenario": json_safe(s.as_dict()), "config": config, "search": settings.as_dict(),
             "slo": slo.as_dict(), "target_rate": target_rate, "search_version": SEARCH_VERSION}
            for config, s in variant_scenarios(pbase, grid)]


def plan_hash(tasks: list[dict]) -> str:
    return config_hash([config_hash(t) for t in tasks])


def default_store(tasks: list[dict]) -> Path:
    """<cache dir>/sweeps/<plan hash> (sweep_store.cache_dir: ~/.cache/servesim unless set)."""
    return cache_dir() / "sweeps" / plan_hash(tasks)[:16]


def run_sweep(tasks: list[dict], store: SweepStore, *, backend: str = "local", jobs: int | None = None,
              ray_address: str | None = None, on_progress: Callable[[], None] | None = None
              ) -> tuple[list[dict], int, int]:
    """(candidate records in task order, number computed now, number read from the store)."""
    keys = [config_hash(t) for t in tasks]
    results: list[dict | None] = []
    for key, task in zip(keys, tasks):
        stored = store.load(key)
        results.append(stored["candidate"] if stored and stored.get("task") == task else None)
    todo = [i for i, r in enumerate(results) if r is None]
    reused = len(tasks) - len(todo)
    if on_progress:
        for _ in range(reused):
            on_progress()

    def done(j: int, record: dict) -> None:
        i = todo[j]
        record = json.loads(json.dumps(json_safe(record)))  # the stored form, so resumed == fresh
        store.save(keys[i], {"hash": keys[i], "task": tasks[i], "candidate": record})
        results[i] = record
        if on_progress:
            on_progress()

    run_tasks(search_candidate, [tasks[i] for i in todo], on_done=done, backend=backend, jobs=jobs,
              ray_address=ray_address)
    return results, len(todo), reused


_OBJECTIVES = ("price_usd_per_hour", "p99_ttft_ms", "p99_tpot_ms")


def _objectives(c: dict) -> tuple[float, ...]:
    return tuple(float("inf") if c[k] is None else c[k] for k in _OBJECTIVES)


def pareto_indices(candidates: list[dict]) -> list[int]:
    """Feasible, non-dominated candidates, cheapest first."""
    feasible = [i for i, c in enumerate(candidates) if c["feasible"]]
    objs = {i: _objectives(candidates[i]) for i in feasible}

    def dominated(i: int) -> bool:
        return any(all(a <= b for a, b in zip(objs[j], objs[i])) and objs[j] != objs[i] for j in feasible)

    return sorted((i for i in feasible if not dominated(i)), key=lambda i: (objs[i], i))


def cheapest_index(candidates: list[dict]) -> int | None:
    feasible = [i for i, c in enumerate(candidates) if c["feasible"]]
    return min(feasible, key=lambda i: (_objectives(candidates[i]), i)) if feasible else None


def plan_document(candidates: list[dict], *, target_rate: float, slo: Slo) -> dict:
    from simulator.results import version

    return {"kind": "plan", "servesim_version": version(), "target_rate": target_rate, "slo": slo.as_dict(),
            "candidates": candidates, "pareto": pareto_indices(candidates),
            "cheapest": cheapest_index(candidates)}


def plan_json(doc: dict) -> str:
    return json.dumps(json_safe(doc), indent=2, sort_keys=True)
