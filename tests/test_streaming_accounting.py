"""Issue 17: a run's accounting streams (bounded memory at any length) and says what is exact.

Oracles: hand-computed moments and step totals; the same run summarised with everything kept
(exact) and with steps dropped / gaps sketched, figure by figure; the streamed tables against
the recorder's own columns."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import simulator.engine.gap_log as gap_log
import simulator.engine.recorder as recorder
import simulator.results.tables as tables
from simulator.engine import GapLog, StepTotals
from simulator.results import OutputStage, build_summary, summary_json
from simulator.run import simulate
from simulator.scenario import Scenario

SMALL = Scenario(num_requests=3000, rate=30, prompt_tokens="lognormal:256:0.8", output_tokens="lognormal:64:0.8",
                 seed=5)


# ---- gap log -------------------------------------------------------------------------------------

def test_gap_log_moments_exact_and_quantiles_within_accuracy():
    # gaps 1 ms x3, 2 ms x1, 10 ms x1: mean 3.4 ms... as 5 tokens: (3 + 2 + 10) / 5 = 3.0 ms
    log = GapLog(exact_limit=0)
    for g, c in ((0.001, 3), (0.002, 1), (0.010, 1)):
        log.add(g, c)
    log.fold()
    assert not log.exact and log.total == 5
    assert log.mean == pytest.approx(0.003, rel=1e-12)
    var = (3 * 0.002 ** 2 + 0.001 ** 2 + 0.007 ** 2) / 5
    assert log.std == pytest.approx(math.sqrt(var), rel=1e-12)
    assert log.min == 0.001 and log.max == 0.010
    # the sketch's median is the 1 ms gap within 1 %
    assert log.quantiles_s([50])[0] == pytest.approx(0.001, rel=gap_log.RELATIVE_ACCURACY)


def test_gap_log_folds_in_blocks_like_at_once():
    rng = np.random.default_rng(0)
    gaps, counts = rng.lognormal(-4, 1, 5000), rng.integers(1, 9, 5000)
    once, blocks = GapLog(exact_limit=0), GapLog(exact_limit=0)
    for g, c in zip(gaps.tolist(), counts.tolist()):
        once.add(g, c)
    once.fold()
    for lo in range(0, 5000, 700):
        for g, c in zip(gaps[lo:lo + 700].tolist(), counts[lo:lo + 700].tolist()):
            blocks.add(g, c)
        blocks.fold()
    assert blocks.total == once.total == int(counts.sum())
    assert blocks.mean == pytest.approx(float(np.dot(gaps, counts) / counts.sum()), rel=1e-12)
    assert blocks.std == pytest.approx(once.std, rel=1e-9)
    exact = np.percentile(np.repeat(gaps, counts), [50, 90, 99])
    for got, want in zip(blocks.quantiles_s([50, 90, 99]), exact):
        assert abs(got - want) <= gap_log.RELATIVE_ACCURACY * want * 1.0001


# ---- step totals ---------------------------------------------------------------------------------

def _steps(n: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    cols = {name: rng.integers(0, 50, n).astype(np.float64) for name in recorder.STEP_COLUMNS}
    cols["duration_s"] = rng.uniform(0.001, 0.05, n)
    cols["start_s"] = np.cumsum(cols["duration_s"]) - cols["duration_s"]
    cols["bound"] = rng.integers(0, 3, n).astype(np.float64)
    cols["replica"] = rng.integers(0, 3, n).astype(np.float64)
    cols["kv_blocks_total"] = np.full(n, 64.0)
    cols["flops"], cols["bytes"] = rng.uniform(1e9, 1e12, n), rng.uniform(1e8, 1e10, n)
    return cols


def test_step_totals_hand_case():
    steps = {"duration_s": np.array([0.5, 1.5]), "start_s": np.array([0.0, 0.5]), "bound": np.array([1.0, 0.0]),
             "replica": np.array([0.0, 1.0]), "num_running": np.array([2.0, 4.0]), "num_decode": np.array([2.0, 3.0]),
             "num_prefill_tokens": np.array([0.0, 100.0]), "kv_blocks_used": np.array([8.0, 16.0]),
             "kv_blocks_total": np.array([32.0, 32.0]), "flops": np.array([10.0, 30.0]), "bytes": np.array([5.0, 1.0])}
    t = StepTotals.of(steps, power_w=lambda b: np.full(len(b["duration_s"]), 100.0))
    assert t.num_steps == 2 and t.busy_s == 2.0 and t.end_s == 2.0
    assert t.weighted["num_running"] == 0.5 * 2 + 1.5 * 4
    assert t.usage_dur == 0.5 * 0.25 + 1.5 * 0.5 and t.max_usage == 0.5
    assert t.max_batch == 4  # 3 decodes + 1 prefill
    assert t.steps_by_bound.tolist() == [1, 1, 0] and t.time_by_bound.tolist() == [1.5, 0.5, 0.0]
    assert t.decode_only == {"flops": 10.0, "bytes": 5.0}
    assert t.replica_busy_s.tolist() == [0.5, 1.5]
    assert t.busy_gpu_j == 200.0
    assert t.sum("num_prefill_tokens") == 100 and isinstance(t.sum("num_prefill_tokens"), int)


def test_step_totals_blocks_equal_one_fold():
    steps = _steps(10_000)
    whole = StepTotals.of(steps)
    parts = StepTotals()
    for lo in range(0, 10_000, 3000):
        parts.add({k: v[lo:lo + 3000] for k, v in steps.items()})
    assert parts.num_steps == whole.num_steps
    for name in recorder.STEP_COLUMNS:
        assert parts.sum(name) == pytest.approx(whole.sum(name), rel=1e-12)
        assert parts.max(name) == whole.max(name)
    assert parts.usage_dur == pytest.approx(whole.usage_dur, rel=1e-12)
    np.testing.assert_allclose(parts.replica_busy_s, whole.replica_busy_s, rtol=1e-12)
    np.testing.assert_array_equal(parts.steps_by_bound, whole.steps_by_bound)


# ---- whole runs ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exact_summary():
    return build_summary(simulate(SMALL))


def _metric_diffs(a: dict, b: dict, rel: float) -> list[str]:
    bad = []
    for k, v in a.items():
        w = b[k]
        if isinstance(v, float) and isinstance(w, float):
            if not (v == w or (math.isnan(v) and math.isnan(w)) or abs(v - w) <= rel * abs(v)):
                bad.append(f"{k}: {v} != {w}")
        elif v != w:
            bad.append(f"{k}: {v} != {w}")
    return bad


def test_sketched_run_matches_exact_run_within_stated_error(exact_summary, monkeypatch):
    monkeypatch.setattr(gap_log, "DEFAULT_EXACT_LIMIT", 1000)  # the sketch takes over early
    monkeypatch.setattr(recorder, "DEFAULT_KEEP_STEPS", 100)  # and the steps are not kept
    result = simulate(SMALL)
    assert not result.recorder.gaps.exact and not result.recorder.steps_kept
    with pytest.raises(recorder.StepsNotKept):
        result.recorder.step_arrays()
    got, want = build_summary(result), exact_summary
    itl = {k for k in want["metrics"] if k.endswith("_itl_ms")}
    # every figure but the ITL quantiles is the same (sums folded the same way either way)
    assert _metric_diffs({k: v for k, v in want["metrics"].items() if k not in itl},
                         {k: v for k, v in got["metrics"].items() if k not in itl}, rel=0) == []
    assert got["metrics"]["mean_itl_ms"] == pytest.approx(want["metrics"]["mean_itl_ms"], rel=1e-9)
    assert got["metrics"]["std_itl_ms"] == pytest.approx(want["metrics"]["std_itl_ms"], rel=1e-6)
    for k in ("median_itl_ms", "p90_itl_ms", "p99_itl_ms"):
        assert abs(got["metrics"][k] - want["metrics"][k]) <= 0.01 * want["metrics"][k], k
    assert got["energy"] == want["energy"] and got["kinetics"] == want["kinetics"]
    assert want["precision"]["itl_ms"] == "exact"
    assert "DDSketch" in got["precision"]["itl_ms"] and "1%" in got["precision"]["itl_ms"]


def test_same_seed_same_bytes():
    a, b = (summary_json(build_summary(simulate(SMALL.replace(num_requests=400)))) for _ in range(2))
    assert a == b


def test_streamed_tables_hold_every_step_and_request(tmp_path, monkeypatch):
    monkeypatch.setattr(recorder, "DEFAULT_KEEP_STEPS", 100)
    monkeypatch.setattr(recorder, "DEFAULT_HEAD_STEPS", 50)
    monkeypatch.setattr(tables, "CHROME_TRACE_MAX_STEPS", 50)
    monkeypatch.setattr(tables, "REQUEST_CHUNK", 7)  # chunked request rows
    s = SMALL.replace(num_requests=300)
    for fmt in ("csv", "parquet"):
        stage = OutputStage(tmp_path / fmt, num_requests=300, trace=True, out_format=fmt)
        result = simulate(s, step_sinks=stage.sinks())
        summary = build_summary(result)
        stage.commit(result, summary)
        rec, t = result.recorder, result.recorder.totals
        read = pd.read_csv if fmt == "csv" else pd.read_parquet
        steps = read(tmp_path / fmt / f"steps.{fmt}")
        assert len(steps) == rec.num_steps == summary["metrics"]["num_steps"] > 100
        assert steps["duration_s"].sum() == pytest.approx(t.busy_s, rel=1e-12)
        assert int(steps["num_prefill_tokens"].sum()) == t.sum("num_prefill_tokens")
        assert set(steps["bound"]) <= {"compute", "memory", "overhead"}
        assert (steps["bound"] == "memory").sum() == t.steps_by_bound[1]
        req = read(tmp_path / fmt / f"requests.{fmt}")
        assert req["request_id"].tolist() == list(range(300))
        np.testing.assert_array_equal(req["first_token_s"].to_numpy(), rec.first_token_s)
        assert set(req["status"]) == {"finished"}
        trace = json.loads((tmp_path / fmt / "trace.json").read_text())
        assert len(trace["traceEvents"]) == 50
        assert trace["otherData"]["steps_in_run"] == rec.num_steps
        assert trace["otherData"]["cut"].startswith(f"the run's first 50 of {rec.num_steps} steps")
        assert trace["otherData"]["run_id"] == json.loads((tmp_path / fmt / "summary.json").read_text())["run_id"]


def test_auto_format_picks_parquet_for_large_runs():
    assert tables.resolve_out_format("auto", tables.AUTO_PARQUET_REQUESTS) == "csv"
    assert tables.resolve_out_format("auto", tables.AUTO_PARQUET_REQUESTS + 1) == "parquet"
    assert tables.resolve_out_format("csv", 10**9) == "csv"


def test_per_request_storage_is_compact():
    rec = simulate(SMALL.replace(num_requests=50)).recorder
    per_request = sum(getattr(rec, k).nbytes for k in ("arrival_s", "prompt_tokens", "output_tokens",
                                                        "first_token_s", "finish_s", "num_preemptions",
                                                        "replica", "status")) / 50
    assert per_request == 8 * 3 + 4 * 4 + 1  # three float64 times, four int32 columns, int8 status


def test_progress_reports_requests_and_simulated_time():
    calls = []
    simulate(SMALL.replace(num_requests=600), progress=lambda *a: calls.append(a))
    assert len(calls) >= 2
    assert calls[-1][:2] == (600, 600)
    done = [c[0] for c in calls]
    times = [c[2] for c in calls]
    assert done == sorted(done) and times == sorted(times) and times[-1] > 0
