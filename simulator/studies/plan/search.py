"""Capacity search for one candidate configuration: the highest request rate one replica sustains
while meeting the SLOs, found by bracketing + bisection over the arrival rate.

Owns the steady-state rule, the SLO check of one probe, the search loop and the candidate record
(see `search_candidate`). Does not expand grids, store results or pick winners (sweep.py).

Steady-state rule (`steady_state`), on one probe of N requests sorted by arrival, thirds of
k = N // 3 requests, a run is sustainable when both hold:
  1. completions keep up with arrivals: over the window from the arrival of request k to the last
     arrival, (requests finished in the window) / (requests arrived in the window)
     >= 1 - rate_tolerance. Overloaded at arrival rate lam > service rate mu, this ratio tends
     to mu / lam.
  2. the queue does not grow: (median TTFT of the last third - median TTFT of the first third)
     / (median arrival time of the last third - that of the first third) <= growth_tolerance.
     Queueing delay in an overloaded queue grows by (lam - mu) / mu seconds per second, so both
     checks bound lam / mu to about 1 + tolerance; the first third doubles as warm-up.
Requests that can never be served (rejected at admission: longer than max_model_len or the KV
cache; the same at any rate) are counted in the saturation run; more than
max_unservable_fraction of them makes the candidate infeasible, fewer are left out of the
judgment. A probe is ok when no more requests failed than in the saturation run, it is steady,
and the p<percentile> TTFT and TPOT (vLLM bench-serve definitions) of the requests after the
first third (warm-up from an empty engine left out; the same for every p99 a probe reports) are
within the SLOs.
Finite probes are optimistic near saturation: latency tails and slow build-ups need long runs
(llama-3-8b/h100 default workload, p99 TTFT 500 ms: 33.1 req/s at 300 requests, 30.2 at 400,
27.7 at 800, 27.3 at 1600); raise probe_requests for a final answer.

Search: one saturation run (all requests at t=0) measures a throughput mu_sat, the first rate
tried. While every probe is ok the rate is multiplied by expand_factor (bracketing); once one
fails, the bracket [highest ok, lowest failed] (lowest ok bound 0) is bisected, max_probes - 1
probes in all; the answer is the highest ok rate. While nothing is ok yet, the search stops
early when halving the rate lowers no p99 latency that is over its SLO by 5% (the SLO is below the unloaded
latency floor).
Every probe uses the scenario's seed (common random numbers), so probes differ only in rate.
Early stopping (settings.early_stop): once one rate is ok, and for the operating-point probes, a
probe's simulation ends as soon as it is certain to fail (certain_slo_failure: a failed request,
or enough judged requests already over an SLO that its percentile must be over it). Overloaded
probes are the long ones, so this saves most of their time; it changes no decision: such a probe
fails either way, and the only rule that reads a failed probe's latencies (the floor check) runs
while no rate is ok yet, when probes always run to the end.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from simulator.engine import FAILED, FINISHED
from simulator.errors import ServesimError
from simulator.parallel import num_gpus
from simulator.scenario import Scenario, scenario_from_dict


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchSettings:
    probe_requests: int = 400
    max_probes: int = 8  # the saturation run included
    rate_tolerance: float = 0.1
    growth_tolerance: float = 0.1
    expand_factor: float = 2.0
    max_extra_replicas: int = 2  # operating-point retries when target/n is not ok
    max_unservable_fraction: float = 0.01  # requests rejected at admission at any rate
    early_stop: bool = True  # end a probe once it is certain to fail (certain_slo_failure); same answers

    def __post_init__(self) -> None:
        if self.probe_requests < 30:
            raise ServesimError(f"probe_requests={self.probe_requests} is invalid; allowed: >= 30")
        if self.max_probes < 2:
            raise ServesimError(f"max_probes={self.max_probes} is invalid; allowed: >= 2")
        for name in ("rate_tolerance", "growth_tolerance", "max_unservable_fraction"):
            if not 0 <= getattr(self, name) < 1:
                raise ServesimError(f"{name}={getattr(self, name)} is invalid; allowed: [0, 1)")
        if self.expand_factor <= 1:
            raise ServesimError(f"expand_factor={self.expand_factor} is invalid; allowed: > 1")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Slo:
    ttft_ms: float | None = None
    tpot_ms: float | None = None
    percentile: float = 99.0

    def __post_init__(self) -> None:
        if not 0 < self.percentile <= 100:
            raise ServesimError(f"slo percentile={self.percentile} is invalid; allowed: (0, 100]")
        for name in ("ttft_ms", "tpot_ms"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ServesimError(f"slo {name}={getattr(self, name)} is invalid; allowed: > 0")

    def as_dict(self) -> dict:
        return {"ttft_ms": self.ttft_ms, "tpot_ms": self.tpot_ms, "percentile": self.percentile}


def steady_state(arrival_s, first_token_s, finish_s, *, rate_tolerance: float = 0.1,
                 growth_tolerance: float = 0.1) -> tuple[bool, str | None]:
    """The rule in the module docstring, on completed requests; returns (ok, why not)."""
    order = np.argsort(np.asarray(arrival_s, dtype=np.float64), kind="stable")
    a, f, e = (np.asarray(x, dtype=np.float64)[order] for x in (arrival_s, first_token_s, finish_s))
    n = len(a)
    k = n // 3
    if k < 2:
        return False, f"too few requests ({n}) to judge a steady state; need >= 6"
    t1, t2 = a[k], a[-1]
    if not t2 > t1:
        return False, "requests arrive all at once: no sustained rate"
    arrived = n - 1 - k  # arrivals in (t1, t2]
    finished = int(np.count_nonzero((e > t1) & (e <= t2)))
    ratio = finished / arrived
    if ratio < 1 - rate_tolerance:
        return False, f"completions fall behind arrivals ({ratio:.2f} of the arrival rate)"
    ttft = f - a
    span = float(np.median(a[-k:]) - np.median(a[:k]))
    growth = float(np.median(ttft[-k:]) - np.median(ttft[:k])) / span
    if growth > growth_tolerance:
        return False, f"queue grows: TTFT rises {growth:.3f} s per s"
    return True, None


def _percentile(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def certain_slo_failure(slo: Slo):
    """A simulate `stop` check that ends a probe as soon as its outcome is certain to be "not ok":
    a request failed (no failures are allowed), or enough of the judged requests (those after the
    first third, in arrival order) already exceed an SLO that the p<percentile> must exceed it.
    np.percentile of n values is >= the value of rank floor((n - 1) q) (0-based, ascending), so it
    is above the SLO once n - floor((n - 1) q) values are; a request still waiting for its first
    token longer than the TTFT SLO counts (its TTFT can only grow). Uses the largest n the probe
    can judge, so the check never stops a probe that could still pass (the threshold grows with n)."""
    q = slo.percentile / 100.0
    ttft_s = slo.ttft_ms / 1e3 if slo.ttft_ms is not None else None
    tpot_s = slo.tpot_ms / 1e3 if slo.tpot_ms is not None else None

    def needed(n: int) -> int:
        return n - math.floor((n - 1) * q) if n else 1

    judged = []  # the probe's judged requests: arrival >= the (n // 3)-th smallest arrival, as probe()

    def check(rec, now: float) -> str | None:
        if rec.fail_reason:
            failed = min(rec.fail_reason)
            return f"a request failed: {rec.fail_reason[failed]}"
        if not judged:
            judged.append(rec.arrival_s >= np.sort(rec.arrival_s)[len(rec.arrival_s) // 3])
        k = judged[0]
        a, f = rec.arrival_s[k], rec.first_token_s[k]
        if ttft_s is not None:
            with np.errstate(invalid="ignore"):
                over = np.count_nonzero(f - a > ttft_s) + np.count_nonzero(np.isnan(f) & (a <= now) & (now - a > ttft_s))
            if over >= needed(len(a)):
                return f"p{slo.percentile:g} TTFT > SLO {slo.ttft_ms:g} ms: {over} of {len(a)} judged requests over it"
        if tpot_s is not None:
            out = rec.output_tokens[k]
            multi = out > 1
            done = multi & (rec.status[k] == FINISHED)
            tpot = (rec.finish_s[k][done] - f[done]) / (out[done] - 1)
            over = int(np.count_nonzero(tpot > tpot_s))
            if over >= needed(int(multi.sum())):
                return f"p{slo.percentile:g} TPOT > SLO {slo.tpot_ms:g} ms: {over} of {int(multi.sum())} judged requests over it"
        return None

    return check


def probe(scenario: Scenario, rate: float, slo: Slo, settings: SearchSettings, allowed_failures: int = 0,
          early_stop: bool = False) -> dict:
    """Simulate one replica at `rate` and judge it; returns the probe record. early_stop (only with
    no allowed failures): end the simulation once the probe is certain to fail
    (certain_slo_failure); its p99 fields are then None and its reason says so."""
    from simulator.run import simulate

    stop = certain_slo_failure(slo) if early_stop and not allowed_failures else None
    result = simulate(scenario.replace(rate=rate), stop=stop)
    rec = result.recorder
    out = {"rate": rate, "ok": False, "p99_ttft_ms": None, "p99_tpot_ms": None, "reason": None}
    if result.stopped:
        out["reason"] = f"{result.stopped} (stopped early: certain to fail)"
        out["stopped_early"] = True
        return out
    failed = np.flatnonzero(rec.status == FAILED)
    done = rec.status == FINISHED
    if len(failed) > allowed_failures:
        out["reason"] = f"{len(failed)} of {len(rec.status)} requests failed: {rec.fail_reason.get(int(failed[0]))}"
        return out
    arrival, first, finish = rec.arrival_s[done], rec.first_token_s[done], rec.finish_s[done]
    # latencies of the requests after the first third (warm-up from an empty engine left out)
    late = arrival >= np.sort(arrival)[len(arrival) // 3]
    outputs = rec.output_tokens[done][late]
    ttft_ms = (first - arrival)[late] * 1e3
    multi = outputs > 1
    tpot_ms = ((finish - first)[late] * 1e3)[multi] / (outputs[multi] - 1)
    q = slo.percentile
    out["p99_ttft_ms"], out["p99_tpot_ms"] = _percentile(ttft_ms, 99), _percentile(tpot_ms, 99)
    at_q = {"ttft_ms": _percentile(ttft_ms, q), "tpot_ms": _percentile(tpot_ms, q)}
    if q != 99:
        out.update({f"p{q:g}_{k}": v for k, v in at_q.items()})
    steady, why = steady_state(arrival, first, finish, rate_tolerance=settings.rate_tolerance,
                               growth_tolerance=settings.growth_tolerance)
    for name in ("ttft_ms", "tpot_ms"):
        limit = getattr(slo, name)
        if why is None and limit is not None and at_q[name] is not None and at_q[name] > limit:
            why = f"p{q:g} {name.split('_')[0].upper()} {at_q[name]:.1f} ms > SLO {limit:g} ms"
    out["ok"], out["reason"] = steady and why is None, why
    return out


def saturation_rate(scenario: Scenario, settings: SearchSettings) -> tuple[float, int, str | None]:
    """(request throughput with every request at t=0: an estimate of the service rate,
    requests rejected at admission, why infeasible when too many are)."""
    from simulator.run import simulate

    rec = simulate(scenario.replace(rate=math.inf)).recorder
    failed = np.flatnonzero(rec.status == FAILED)
    done = rec.status == FINISHED
    if len(failed) > settings.max_unservable_fraction * len(rec.status) or not done.any():
        return 0.0, len(failed), (f"{len(failed)} of {len(rec.status)} requests can never be served: "
                                  f"{rec.fail_reason.get(int(failed[0]))}")
    end = float(rec.finish_s[done].max())
    return (int(done.sum()) / end if end > 0 else math.inf), len(failed), None


def search_max_rate(scenario: Scenario, slo: Slo, settings: SearchSettings):
    """(highest ok rate or 0, probes, saturation throughput, unservable requests, why infeasible)."""
    mu, unservable, why = saturation_rate(scenario, settings)
    if why:
        return 0.0, [], mu, unservable, why
    lo, hi, rate, probes = 0.0, math.inf, mu, []
    for _ in range(settings.max_probes - 1):
        # early stopping once a rate is ok: the floor check below reads the p99s of failed probes
        # only while none is ok, so stopping later probes early leaves every decision unchanged
        p = probe(scenario, rate, slo, settings, unservable, early_stop=settings.early_stop and lo > 0)
        p["role"] = "search"
        probes.append(p)
        if lo == 0 and len(probes) > 1 and _at_floor(probes[-2], p, slo):
            break
        lo, hi = (rate, hi) if p["ok"] else (lo, rate)
        rate = lo * settings.expand_factor if math.isinf(hi) else (lo + hi) / 2
    if lo == 0:
        lowest = probes[-1]
        return 0.0, probes, mu, unservable, f"no probed rate met the SLOs (at {lowest['rate']:.3g} req/s: {lowest['reason']})"
    return lo, probes, mu, unservable, None


def _at_floor(prev: dict, cur: dict, slo: Slo) -> bool:
    """Both failed, and halving the rate lowered no p99 latency that is over its SLO by 5%: the
    SLO is below the unloaded latency, so lower rates will not help (and are slow to simulate)."""
    if prev["ok"] or cur["ok"]:
        return False
    over = [f"p99_{k}" for k in ("ttft_ms", "tpot_ms")
            if getattr(slo, k) is not None and cur[f"p99_{k}"] is not None and cur[f"p99_{k}"] > getattr(slo, k)]
    return bool(over) and all(prev[k] is not None and cur[k] >= 0.95 * prev[k] for k in over)


def search_candidate(task: dict) -> dict:
    """Worker: task = {"scenario", "config", "search", "slo", "target_rate"} (plain dicts) ->
    the candidate record of plan.json (without its index)."""
    from hardware import load_device
    from simulator.run import describe_prediction

    scenario = scenario_from_dict(task["scenario"])
    slo, settings, target = Slo(**task["slo"]), SearchSettings(**task["search"]), float(task["target_rate"])
    record = {"config": task["config"], "scenario": task["scenario"], "max_rate_per_replica": 0.0,
              "replicas_needed": None, "num_gpus": None, "price_usd_per_hour": None, "p99_ttft_ms": None, "p99_tpot_ms": None,
              "feasible": False, "reason": None, "saturation_rate": None, "num_unservable": None, "probes": []}
    try:
        best, probes, mu, unservable, why = search_max_rate(scenario, slo, settings)
        record.update(max_rate_per_replica=best, probes=probes, saturation_rate=mu, reason=why,
                      num_unservable=unservable)
        record["prediction"] = describe_prediction(scenario)
        if why is None:
            _operating_point(record, scenario, slo, settings, target, unservable,
                             load_device(scenario.hardware).price_usd_per_hour)
    except ServesimError as exc:
        record["reason"] = str(exc)
    return record


def capacity_range(max_rate: float, target: float, error_p90_pct: float | None) -> dict | None:
    """The capacity figures if the true speed is off by the known p90 error either way: the max
    rate per replica in [rate / (1 + e), rate / (1 - e)] and the replicas that range needs
    (e = the p90 |error| of held-out published points priced like this one; None if unknown)."""
    if error_p90_pct is None or max_rate <= 0:
        return None
    e = min(error_p90_pct / 100, 0.95)
    lo, hi = max_rate / (1 + e), max_rate / (1 - e)
    return {"speed_error_p90_pct": error_p90_pct, "max_rate_per_replica_range": [lo, hi],
            "replicas_range": [max(1, math.ceil(target / hi - 1e-9)), max(1, math.ceil(target / lo - 1e-9))],
            "basis": "p90 |error| of held-out published points priced like this candidate (profiles/data/fidelity.json)"}


def _operating_point(record: dict, s: Scenario, slo: Slo, settings: SearchSettings, target: float,
                     unservable: int, usd_per_gpu_hour: float) -> None:
    """replicas = ceil(target / max rate); latency from one probe at target / replicas per replica
    (one more replica, up to max_extra_replicas times, if that probe is not ok)."""
    n = max(1, math.ceil(target / record["max_rate_per_replica"] - 1e-9))
    for _ in range(settings.max_extra_replicas + 1):
        p = probe(s, target / n, slo, settings, unservable, early_stop=settings.early_stop)
        p["role"] = "operating"
        record["probes"].append(p)
        if p["ok"]:
            gpus = n * num_gpus(s.replace(replicas=1))  # a replica is tp x pp x DP ranks GPUs, or a P/D set
            record.update(replicas_needed=n, num_gpus=gpus, price_usd_per_hour=gpus * usd_per_gpu_hour, feasible=True,
                          p99_ttft_ms=p["p99_ttft_ms"], p99_tpot_ms=p["p99_tpot_ms"], reason=None)
            record["uncertainty"] = capacity_range(record["max_rate_per_replica"], target,
                                                   (record.get("prediction") or {}).get("speed_error_p90_pct"))
            return
        n += 1
    record["reason"] = f"no operating point at the target rate (last: {p['reason']})"
