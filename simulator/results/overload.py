"""Is the queue stable? Offered vs served request rate, backlog growth and the sustainable rate.

Owns the summary's "overload" section: an open-loop run whose arrivals outpace the engine never
reaches a steady state, its queue (and TTFT) grows for as long as requests keep arriving, and its
latency percentiles then depend on how many requests were sent. Works on the per-request arrays
only (arrival, first token, finish times and status; O(n log n), no step records), so it costs the
same for a measured run. Does not compute the vLLM metrics (metrics.py) or print (table.py).

Method (queueing-theory textbook facts, e.g. Harchol-Balter, "Performance Modeling and Design of
Computer Systems", 2013, ch. 2-3: a queue with arrival rate above its service rate has a backlog
that grows linearly at their difference):
- window: from the first to the last arrival; offered rate = (n - 1) / window (req/s).
- backlog N(t) = requests arrived by t - requests finished or failed by t, at SAMPLES evenly spaced
  times in the last two thirds of the window (the first third is warm-up); its least-squares
  slope is the backlog growth rate (req/s).
- queueing signal: median TTFT of the last third of arrivals / median TTFT of the first third.
- overloaded when the backlog grows at more than GROWTH_FRACTION of the offered rate AND the TTFT
  ratio exceeds TTFT_GROWTH (either alone can be warm-up: long outputs fill the batch for longer
  than a third of the window without any queue).
- sustainable rate: overloaded -> requests completed per second over those last two thirds (the
  engine was saturated then, so this is its service rate), or the run's served rate (completed /
  duration) when larger (a batchy engine finishes few requests inside the window); otherwise the
  offered rate, a lower bound (the run did not push the engine to its limit).
Not applicable to closed-loop runs (arrivals follow completions) or when every request arrives at
once (rate = inf: an offline throughput run), nor to runs with fewer than MIN_REQUESTS requests.
"""
from __future__ import annotations

import numpy as np

from simulator.engine import FINISHED

SAMPLES = 256
GROWTH_FRACTION = 0.05
TTFT_GROWTH = 2.0
MIN_REQUESTS = 30
METHOD = ("backlog (arrived - finished) sampled over the last 2/3 of the arrival window, least-squares "
          f"slope; overloaded if slope > {GROWTH_FRACTION:g} x offered rate and median TTFT of the last third "
          f"of arrivals > {TTFT_GROWTH:g} x the first third's; sustainable rate = completions/s over the last "
          "2/3 of the arrival window when overloaded, else the offered rate (a lower bound)")


def overload_section(rec, metrics: dict, *, closed_loop: bool = False) -> dict:
    """The "overload" section from a recorder's per-request arrays (`arrival_s`, `first_token_s`,
    `finish_s`: seconds, NaN where it did not happen; `status`: FINISHED / FAILED codes) and the
    summary's metrics (`request_throughput`, req/s). Rates are requests per second, TTFTs ms."""
    served = metrics.get("request_throughput")
    out = {"applicable": False, "overloaded": False, "served_request_rate": served, "method": METHOD}
    arrival = np.asarray(rec.arrival_s, dtype=np.float64)
    n = len(arrival)
    if closed_loop:
        return {**out, "reason": "closed loop: each user sends its next request when the last one finishes"}
    if n < MIN_REQUESTS:
        return {**out, "reason": f"{n} requests; at least {MIN_REQUESTS} are needed to see a trend"}
    # open-loop arrivals are recorded sorted: index them directly (no n-sized copies on 10M-request runs)
    order = None if bool(np.all(arrival[1:] >= arrival[:-1])) else np.argsort(arrival, kind="stable")
    arrived = arrival if order is None else arrival[order]
    t0, t1 = float(arrived[0]), float(arrived[-1])
    if not t1 > t0:
        return {**out, "reason": "every request arrives at once (rate = inf): an offline throughput run"}
    offered = (n - 1) / (t1 - t0)
    leave = np.sort(np.asarray(rec.finish_s, dtype=np.float64))  # NaN (never left) sorts last, as +inf would
    lo = t0 + (t1 - t0) / 3
    ts = np.linspace(lo, t1, SAMPLES)
    backlog = np.searchsorted(arrived, ts, side="right") - np.searchsorted(leave, ts, side="right")
    growth = float(np.polyfit(ts, backlog.astype(np.float64), 1)[0])
    ok = np.asarray(rec.status) == FINISHED
    third = n // 3
    first, last = (_median(_ttft_ms(rec, idx, ok)) for idx in (
        (slice(0, third) if order is None else order[:third]), (slice(n - third, n) if order is None else order[-third:])))
    ratio = last / first if first and first > 0 and not np.isnan(last) else float("nan")
    queue_grows = growth > GROWTH_FRACTION * offered
    ttft_grows = bool(ratio > TTFT_GROWTH) if not np.isnan(ratio) else queue_grows
    overloaded = bool(queue_grows and ttft_grows)
    if ok.all():
        done = leave
    else:
        done = np.asarray(rec.finish_s, dtype=np.float64)[ok]
        done.sort()  # in place: one copy of the finished requests' times
    saturated = float(np.searchsorted(done, t1, side="right") - np.searchsorted(done, lo, side="left")) / (t1 - lo)
    # a batchy engine (static batching) may finish few requests inside the window: the run's own
    # served rate (completed / duration) is then the better estimate of a saturated engine's rate
    if served is not None and np.isfinite(served):
        saturated = max(saturated, float(served))
    return {**out, "applicable": True, "overloaded": overloaded,
            "offered_request_rate": offered,
            "sustainable_request_rate": saturated if overloaded else offered,
            "sustainable_rate_is_lower_bound": not overloaded,
            "backlog_growth_rate": growth,
            "arrival_window_s": t1 - t0,
            "first_third_median_ttft_ms": first, "last_third_median_ttft_ms": last, "ttft_growth": ratio}


def _ttft_ms(rec, idx, ok: np.ndarray) -> np.ndarray:
    """TTFT (ms) of the finished requests among `idx` (a slice or index array)."""
    ttft = (np.asarray(rec.first_token_s, dtype=np.float64)[idx] - np.asarray(rec.arrival_s, dtype=np.float64)[idx]) * 1e3
    return ttft[ok[idx]]


def _median(x: np.ndarray) -> float:
    return float(np.median(x)) if len(x) else float("nan")


def overload_lines(section: dict | None) -> list[str]:
    """The warning the text table and the report print for an overloaded run ([] otherwise)."""
    if not section or not section.get("overloaded"):
        return []
    o = section
    return [f"WARNING: overloaded. Requests arrive at {o['offered_request_rate']:.2f} req/s but the engine "
            f"sustains about {o['sustainable_request_rate']:.2f} req/s: the queue grew all run "
            f"(+{o['backlog_growth_rate']:.2f} requests/s; median TTFT {o['first_third_median_ttft_ms'] / 1e3:.1f} s "
            f"in the first third of arrivals, {o['last_third_median_ttft_ms'] / 1e3:.1f} s in the last).",
            "This run's latencies describe a queue that never drains: they grow with the number of requests "
            f"sent. Offer less than {o['sustainable_request_rate']:.2f} req/s to this configuration, or add replicas."]
