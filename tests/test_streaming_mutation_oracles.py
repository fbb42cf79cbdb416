"""Exact oracles for the streamed accounting and the arrival wrappers (engine/step_totals.py,
engine/gap_log.py, engine/arrivals.py), for the cases mutation testing found unjudged (issue 19):
totals folded over several blocks, edge values (one-row blocks, 1-block KV pools, prefills of one
token, integers past 2**53), the measured-power count, zero and tiny gaps in the sketch, the fold
threshold, and the frontend delay, multi-turn parking and closed-loop users driven by hand.

Every expected value is worked out by hand in the comments."""
from __future__ import annotations

import math

import numpy as np
import pytest
import simpy
from ddsketch.mapping import LogarithmicMapping

import simulator.engine.gap_log as gap_log
from simulator.engine import GapLog, StepTotals
from simulator.engine.arrivals import after_previous_turn, start_closed_loop, through_frontend
from simulator.engine.recorder import RunRecorder


# ---- step totals ---------------------------------------------------------------------------------
def test_step_totals_fold_over_blocks_by_hand():
    """Two blocks. Block 1: one step on replica 0, 1 s, decode only (3 decodes), bound 0.
    Block 2: two steps on replicas 0 and 1, 2 s and 4 s, bound 1 and 2, prefill 0 and 5 tokens."""
    watts = lambda b: np.full(len(b["duration_s"]), 10.0)  # noqa: E731
    t = StepTotals(power_w=watts)
    t.add({"duration_s": np.array([1.0]), "start_s": np.array([0.0]), "replica": np.array([0]),
           "bound": np.array([0]), "num_running": np.array([3]), "num_decode": np.array([3]),
           "num_prefill_tokens": np.array([0]), "flops": np.array([7.0]), "bytes": np.array([2.0]),
           "power_w": np.array([120.0])})
    t.add({"duration_s": np.array([2.0, 4.0]), "start_s": np.array([1.0, 1.0]), "replica": np.array([0, 1]),
           "bound": np.array([1, 2]), "num_running": np.array([1, 2]), "num_decode": np.array([1, 0]),
           "num_prefill_tokens": np.array([0, 5]), "flops": np.array([3.0, 100.0]), "bytes": np.array([1.0, 50.0]),
           "power_w": np.array([300.0, np.nan])})
    assert t.num_steps == 3 and t.busy_s == 7.0 and t.end_s == 5.0
    assert t.weighted == {"num_running": 1 * 3 + 2 * 1 + 4 * 2, "num_decode": 1 * 3 + 2 * 1 + 4 * 0}
    assert t.replica_busy_s.tolist() == [3.0, 4.0]  # replica 0: 1 + 2 s; replica 1: 4 s
    assert t.steps_by_bound.tolist() == [1, 1, 1] and t.steps_by_bound.dtype == np.int64
    assert t.time_by_bound.tolist() == [1.0, 2.0, 4.0]
    assert t.decode_only == {"flops": 7.0 + 3.0, "bytes": 2.0 + 1.0}  # the 5-token prefill step is left out
    assert t.busy_gpu_j == 10.0 * 7.0
    assert t.num_measured_power == 2  # finite measured watts, over both blocks: the NaN step is not measured
    assert t.max_batch == 3  # max(3 + 0, 1 + 0, 0 + 1)
    assert t.sum("num_decode") == 4 and t.max("num_running") == 3.0 and t.max("flops") == 100.0


def test_step_totals_one_row_block_and_empty_block():
    t = StepTotals()
    t.add({"duration_s": np.zeros(0), "num_decode": np.zeros(0)})
    assert t.num_steps == 0 and not t.has("num_decode")
    t.add({"duration_s": np.array([0.5]), "start_s": np.array([2.0]), "num_decode": np.array([0])})
    assert t.num_steps == 1 and t.busy_s == 0.5 and t.end_s == 2.5 and t.has("num_decode")
    # no prefill column: no step counts a prefill; 0 decodes gives a batch of 0
    assert t.max_batch == 0 and t.sum("num_decode") == 0


def test_step_totals_fresh_and_unknown_columns():
    t = StepTotals()
    assert (t.max_batch, t.end_s, t.num_measured_power, len(t.replica_busy_s)) == (0, 0.0, 0, 0)
    t.add({"duration_s": np.array([0.25]), "start_s": np.array([0.0]), "num_decode": np.array([2])})
    assert t.end_s == 0.25 and t.max_batch == 2 and len(t.replica_busy_s) == 0  # no replica column
    assert t.sum("flops") == 0 and isinstance(t.sum("flops"), int)
    assert t.max("flops") == 0.0 and t.max("num_decode") == 2.0
    assert t.has("num_decode") and not t.has("flops")


@pytest.mark.parametrize("decode, prefill, want", [
    ([4], [1], 5),  # a 1-token prefill is a prefill: 4 decodes + 1
    ([5, 4], [0, 1], 5),  # max(5 + 0, 4 + 1)
    ([5, 3], [0, 1], 5),  # max(5 + 0, 3 + 1)
])
def test_step_totals_max_batch_counts_a_prefill_as_one(decode, prefill, want):
    t = StepTotals.of({"duration_s": np.ones(len(decode)), "num_decode": np.array(decode),
                       "num_prefill_tokens": np.array(prefill)})
    assert t.max_batch == want


def test_step_totals_kv_usage_of_a_one_block_pool():
    # usage = used / max(total, 1): 1 of 1 block is 1.0; an empty 0-block pool is 0 (not NaN)
    t = StepTotals.of({"duration_s": np.array([2.0, 1.0]), "kv_blocks_used": np.array([1, 0]),
                       "kv_blocks_total": np.array([1, 0])})
    assert t.max_usage == 1.0 and t.usage_dur == 2.0


def test_step_totals_integer_columns_sum_exactly_past_2_53():
    big = 2**53
    t = StepTotals.of({"duration_s": np.ones(2), "decode_context_sum": np.array([big, 1], dtype=np.int64)})
    assert t.sum("decode_context_sum") == big + 1  # float64 would give 2**53


def test_step_totals_replica_busy_grows_with_new_replicas():
    t = StepTotals()
    t.add({"duration_s": np.array([1.0, 2.0]), "replica": np.array([0, 1])})
    t.add({"duration_s": np.array([4.0]), "replica": np.array([2])})  # a third replica appears
    t.add({"duration_s": np.array([8.0]), "replica": np.array([1])})  # fewer replicas than known
    assert t.replica_busy_s.tolist() == [1.0, 10.0, 4.0]


# ---- gap log -------------------------------------------------------------------------------------
def _folded(records, exact_limit=0):
    log = GapLog(exact_limit=exact_limit)
    for g, c in records:
        log.add(g, c)
    log.fold()
    return log


def test_gap_log_single_gap_moments_are_exact():
    log = _folded([(0.001, 4)])
    assert log.total == 4 and log.mean == 0.001 and log.m2 == 0.0 and log.std == 0.0
    assert log.min == log.max == 0.001


def test_gap_log_min_max_with_unit_counts_and_zero_counts():
    log = _folded([(0.002, 1), (0.005, 1)])
    assert (log.min, log.max, log.total) == (0.002, 0.005, 2)
    # zero-count records carry no token: not in min, max, moments or the sketch
    log = _folded([(0.0001, 0), (0.002, 1), (0.009, 0), (0.005, 2)])
    assert (log.min, log.max, log.total) == (0.002, 0.005, 3)
    assert log.mean == pytest.approx((0.002 + 2 * 0.005) / 3, rel=1e-15)
    lo, hi = log.quantiles_s([0, 100])
    assert abs(lo - 0.002) <= 0.01 * 0.002 and abs(hi - 0.005) <= 0.01 * 0.005


def test_gap_log_zero_gaps_go_to_the_zero_bucket():
    # 3 tokens with no gap (same step), 1 token 10 ms later: the median is 0, the maximum 10 ms (1 %)
    log = _folded([(0.0, 3), (0.010, 1)])
    med, top = log.quantiles_s([50, 100])
    assert med == 0.0 and abs(top - 0.010) <= 0.01 * 0.010
    assert log.sketch.count == 4.0


def test_gap_log_gap_at_the_mapping_floor_is_zero():
    """ddsketch keeps values <= mapping.min_possible in its zero bucket; the block fold does too."""
    floor = LogarithmicMapping(gap_log.RELATIVE_ACCURACY).min_possible
    log = _folded([(floor, 1)])
    assert log.quantiles_s([50]) == [0.0]


def test_gap_log_sketch_uses_the_module_accuracy(monkeypatch):
    """The sketch's bucket for one gap is the representative of its key under RELATIVE_ACCURACY."""
    monkeypatch.setattr(gap_log, "RELATIVE_ACCURACY", 0.05)
    m = LogarithmicMapping(0.05)
    log = _folded([(0.0123, 1)])
    assert log.quantiles_s([50]) == [m.value(m.key(0.0123))]
    assert abs(log.quantiles_s([50])[0] - 0.0123) <= 0.05 * 0.0123


def test_gap_log_folds_only_past_the_exact_limit():
    log = GapLog(exact_limit=2)
    log.add(0.001, 1)
    log.add(0.002, 1)
    log.maybe_fold()
    assert log.exact and len(log.gap_s) == 2  # at the limit: still exact
    log.add(0.003, 1)
    log.maybe_fold()
    assert not log.exact and len(log.gap_s) == 0 and log.total == 3


def test_gap_log_arrays_of_an_empty_log():
    g, c = GapLog().arrays()
    assert (len(g), len(c), g.dtype, c.dtype) == (0, 0, np.float64, np.int64)
    log = GapLog()
    log.add(0.5, 3)
    g, c = log.arrays()
    assert g.tolist() == [0.5] and c.tolist() == [3] and c.dtype == np.int64


# ---- arrivals ------------------------------------------------------------------------------------
def _recorder(n: int, arrival=None) -> RunRecorder:
    arrival = np.full(n, 9.0) if arrival is None else np.asarray(arrival, dtype=np.float64)
    return RunRecorder(arrival, np.ones(n, dtype=np.int32), np.ones(n, dtype=np.int32))


def test_frontend_delays_each_request_by_its_delay():
    env, seen = simpy.Environment(), []
    send = through_frontend(env, lambda i: seen.append((i, env.now)), 0.25)

    def client():
        send(0)
        yield env.timeout(1.0)
        send(1)

    env.process(client())
    env.run()
    assert seen == [(0, 0.25), (1, 1.25)]


def test_next_turn_parks_until_the_previous_finishes_and_chains_on_finish():
    env, rec, sent, chained = simpy.Environment(), _recorder(4, [0.0, 0.0, 0.0, 0.0]), [], []
    rec.on_finish = lambda req, t: chained.append((req, t))
    send = after_previous_turn(env, rec, sent.append, [-1, 0, -1, 2])
    for i in range(4):
        send(i)
    assert sent == [0, 2]  # turns 1 and 3 wait for 0 and 2
    rec.finish(0, 2.5)
    assert chained == [(0, 2.5)] and sent == [0, 2, 1] and rec.arrival_s[1] == 2.5
    rec.finish(2, 3.0)
    assert chained == [(0, 2.5), (2, 3.0)] and sent == [0, 2, 1, 3] and rec.arrival_s[3] == 3.0
    rec.finish(1, 4.0)  # nothing waits on turn 1
    assert sent == [0, 2, 1, 3] and chained[-1] == (1, 4.0)


def test_next_turn_after_a_finished_turn_goes_at_once():
    env, rec, sent = simpy.Environment(), _recorder(2, [0.0, 5.0]), []
    send = after_previous_turn(env, rec, sent.append, [-1, 0])
    send(0)
    rec.finish(0, 1.0)  # no earlier on_finish: nothing chained
    send(1)
    assert sent == [0, 1] and rec.arrival_s.tolist() == [0.0, 5.0]  # its own arrival time is kept


def test_closed_loop_users_send_on_finish():
    """2 users, 5 requests: 0 and 1 at t = 0; each finish sends the next request at that time."""
    env, rec, sent, chained = simpy.Environment(), _recorder(5), [], []
    rec.on_finish = lambda req, t: chained.append((req, t))
    start_closed_loop(env, rec, lambda i: sent.append((i, env.now)), users=2, total=5)
    assert rec.arrival_s.tolist() == [0.0] * 5  # every arrival is set when it is sent
    env.run()
    assert sent == [(0, 0.0), (1, 0.0)] and env.now == 0.0  # starting the users takes no time
    for req, t in ((1, 3.0), (0, 4.0), (2, 5.0), (3, 6.0), (4, 7.0)):
        rec.finish(req, t)
    assert [i for i, _ in sent] == [0, 1, 2, 3, 4]
    assert rec.arrival_s.tolist() == [0.0, 0.0, 3.0, 4.0, 5.0]
    assert chained == [(1, 3.0), (0, 4.0), (2, 5.0), (3, 6.0), (4, 7.0)]


def test_closed_loop_without_an_earlier_callback_and_more_users_than_requests():
    env, rec, sent = simpy.Environment(), _recorder(2), []
    start_closed_loop(env, rec, sent.append, users=3, total=2)
    env.run()
    assert sent == [0, 1]
    rec.finish(0, 1.0)
    rec.finish(1, 2.0)
    assert sent == [0, 1] and rec.arrival_s.tolist() == [0.0, 0.0]
    assert not math.isnan(rec.finish_s[1])
