"""Overload detection (simulator/results/overload.py): hand-built queues with closed forms, and the
README's L4 example that offers ~8 req/s to an engine that serves ~1."""
from types import SimpleNamespace

import numpy as np
import pytest

from simulator.engine import FAILED, FINISHED
from simulator.results.overload import overload_lines, overload_section
from simulator.results.summary import build_summary
from simulator.results.table import format_summary
from simulator.run import simulate
from simulator.scenario import Scenario


def queue(service_s: float, n: int = 90):
    """One arrival per second (t = 0..n-1), one server, first token 0.1 s into service."""
    arrival = np.arange(n, dtype=np.float64)
    start = np.zeros(n)
    free = 0.0
    for i in range(n):
        start[i] = max(arrival[i], free)
        free = start[i] + service_s
    return SimpleNamespace(arrival_s=arrival, first_token_s=start + 0.1, finish_s=start + service_s,
                           status=np.full(n, FINISHED))


def test_underloaded_queue_is_stable_and_offered_rate_is_a_lower_bound():
    o = overload_section(queue(0.5), {"request_throughput": 90 / 89.5})
    assert o["applicable"] and not o["overloaded"]
    assert o["offered_request_rate"] == pytest.approx(1.0, rel=1e-12)  # 89 gaps over 89 s
    assert o["sustainable_request_rate"] == o["offered_request_rate"] and o["sustainable_rate_is_lower_bound"]
    assert o["first_third_median_ttft_ms"] == pytest.approx(100.0) and o["ttft_growth"] == pytest.approx(1.0)
    assert abs(o["backlog_growth_rate"]) < 0.01  # the backlog is 0 or 1 request all along
    assert overload_lines(o) == []


def test_overloaded_queue_grows_at_arrival_minus_service_rate():
    o = overload_section(queue(2.0), {"request_throughput": 0.5})
    assert o["overloaded"] and not o["sustainable_rate_is_lower_bound"]
    # request i starts at 2i: TTFT = i + 0.1 s; medians of i = 0..29 and 60..89 are 14.6 s and 74.6 s
    assert o["first_third_median_ttft_ms"] == pytest.approx(14_600.0)
    assert o["last_third_median_ttft_ms"] == pytest.approx(74_600.0)
    # completions at 30, 32, ..., 88 inside [89/3, 89]: 30 of them in 2/3 * 89 s
    assert o["sustainable_request_rate"] == pytest.approx(30 / (89 * 2 / 3), rel=1e-12)
    assert o["backlog_growth_rate"] == pytest.approx(1.0 - 0.5, abs=0.02)  # lambda - mu (staircase)
    text = " ".join(overload_lines(o))
    assert "1.00 req/s" in text and "0.51 req/s" in text and "14.6 s" in text and "74.6 s" in text


def test_not_judged_without_a_trend_to_see():
    q = queue(0.5)
    assert overload_section(q, {}, closed_loop=True)["reason"].startswith("closed loop")
    at_once = SimpleNamespace(**{**vars(q), "arrival_s": np.zeros(90)})
    assert "rate = inf" in overload_section(at_once, {})["reason"]
    few = SimpleNamespace(**{k: v[:29] for k, v in vars(q).items()})
    assert not overload_section(few, {})["applicable"]


def test_failed_requests_leave_the_backlog_when_they_fail():
    q = queue(2.0)
    q.status[:] = FAILED  # every request rejected on arrival: nothing queues
    q.finish_s = q.arrival_s.copy()
    o = overload_section(q, {"request_throughput": 0.0})
    assert not o["overloaded"] and abs(o["backlog_growth_rate"]) < 1e-9


def test_l4_example_is_flagged_in_json_and_table():
    """README: `servesim simulate --hardware l4 --num-requests 300` (default rate 8 req/s)."""
    summary = build_summary(simulate(Scenario(hardware="l4", num_requests=300)))
    o = summary["overload"]
    assert o["overloaded"] and o["offered_request_rate"] > 5
    assert 0.8 < o["sustainable_request_rate"] < 1.5 and o["ttft_growth"] > 5
    text = format_summary(summary)
    assert "WARNING: overloaded" in text and "Sustainable request rate (req/s):                 ~ " in text
    calm = build_summary(simulate(Scenario(num_requests=300)))  # h100: serves what it is offered
    assert not calm["overload"]["overloaded"] and "WARNING" not in format_summary(calm)
    assert "queue: stable" in format_summary(calm)
