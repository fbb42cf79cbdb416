"""engine_stats and roofline_stats on a 4-step table worked out by hand (issue 19; gaps found by
mutation testing of results/metrics.py). Time-weighted means weight each step by its duration;
a step's batch is its decode sequences plus one if it prefills; bound codes 0 compute,
1 memory, 2 overhead; decode-only steps are those without prefill tokens.
"""
import math

import numpy as np
import pytest

from simulator.results.metrics import engine_stats, roofline_stats

STEPS = {
    "replica": np.array([0, 0, 0, 0]),
    "start_s": np.array([0.0, 1.0, 3.0, 6.0]),
    "duration_s": np.array([1.0, 2.0, 3.0, 4.0]),  # 10 s busy
    "num_prefill_tokens": np.array([100, 0, 50, 0]),
    "num_decode": np.array([0, 2, 3, 1]),
    "num_running": np.array([1, 2, 3, 4]),
    "kv_blocks_used": np.array([2, 4, 6, 8]),
    "kv_blocks_total": np.array([10, 10, 10, 10]),
    "bound": np.array([1, 0, 2, 1]),
    "flops": np.array([10.0, 30.0, 30.0, 40.0]),
    "bytes": np.array([1.0, 4.0, 3.0, 2.0]),
    "evict_s": np.array([0.0, 0.5, 0.0, 0.5]),
}


def test_engine_stats_by_hand():
    s = engine_stats(STEPS)
    assert s == pytest.approx({
        "num_steps": 4,
        "mean_step_ms": 10 / 4 * 1e3,
        "mean_kv_cache_usage": (0.2 * 1 + 0.4 * 2 + 0.6 * 3 + 0.8 * 4) / 10,  # 0.6
        "max_kv_cache_usage": 0.8,
        "mean_num_running": (1 * 1 + 2 * 2 + 3 * 3 + 4 * 4) / 10,  # 3.0
        "max_num_running": 4,
        "mean_decode_batch_size": (0 * 1 + 2 * 2 + 3 * 3 + 1 * 4) / 10,  # 1.7
        "max_step_batch_size": 4,  # step 3: 3 decodes + its prefill
        "frac_steps_memory_bound": 2 / 4,
        "frac_time_memory_bound": (1 + 4) / 10,
        "frac_time_compute_bound": 2 / 10,
        "frac_time_overhead_bound": 3 / 10,
        "busy_time_s": 10.0,
    }, rel=1e-12)
    assert isinstance(s["max_num_running"], int) and isinstance(s["max_step_batch_size"], int)


def test_roofline_stats_by_hand():
    peak, bw = 1000.0, 4.0
    r = roofline_stats(STEPS, peak, bw)
    assert r == pytest.approx({
        "ridge_flops_per_byte": 250.0,
        "arithmetic_intensity": 110 / 10,
        "decode_arithmetic_intensity": (30 + 40) / (4 + 2),  # steps 2 and 4
        "achieved_bandwidth_fraction": 10 / (10 * 4.0),
        "achieved_flops_fraction": 110 / (10 * 1000.0),
        "frac_time_kv_eviction": 1.0 / 10,
    }, rel=1e-12)
    no_evict = {k: v for k, v in STEPS.items() if k != "evict_s"}
    assert "frac_time_kv_eviction" not in roofline_stats(no_evict, peak, bw)


def test_empty_and_byte_free_tables():
    empty = {k: v[:0] for k, v in STEPS.items()}
    assert engine_stats(empty) == {"num_steps": 0} and roofline_stats(empty, 1.0, 1.0) == {}
    idle = {**STEPS, "duration_s": np.zeros(4)}
    assert engine_stats(idle) == {"num_steps": 0} and roofline_stats(idle, 1.0, 1.0) == {}
    prefill_only = {**STEPS, "num_prefill_tokens": np.array([1, 1, 1, 1]), "bytes": np.zeros(4)}
    r = roofline_stats(prefill_only, 1.0, 1.0)
    assert math.isnan(r["arithmetic_intensity"]) and math.isnan(r["decode_arithmetic_intensity"])
    assert engine_stats(prefill_only)["max_step_batch_size"] == 4  # 3 decodes + prefill in step 3


def test_one_step_and_prebuilt_totals():
    from simulator.engine import StepTotals

    one = {k: v[:1] for k, v in STEPS.items()}
    assert engine_stats(one)["num_steps"] == 1 and engine_stats(one)["busy_time_s"] == 1.0
    totals = StepTotals.of(STEPS)
    assert engine_stats(totals) == engine_stats(STEPS)
    assert roofline_stats(totals, 1000.0, 4.0) == roofline_stats(STEPS, 1000.0, 4.0)
