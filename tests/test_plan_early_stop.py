"""Plan probes that stop early once certain to fail (issue 17): the stop rule is exact at its
threshold (hand-built recorder states), and a 12-candidate plan makes the same decisions with and
without early stopping, with fewer simulated steps."""
from __future__ import annotations

import math

import numpy as np

from simulator.engine import RunRecorder
from simulator.scenario import Scenario
from simulator.studies.plan.search import SearchSettings, Slo, certain_slo_failure, search_candidate
from simulator.studies.plan.sweep import plan_tasks


def _recorder(ttft_s, n: int = 9) -> RunRecorder:
    """n requests arriving at t = 0..n-1 s; request i has TTFT ttft_s[i] (nan: no first token yet)."""
    rec = RunRecorder(np.arange(n, dtype=float), np.full(n, 10), np.full(n, 1))
    rec.first_token_s[:] = np.arange(n) + np.asarray(ttft_s, dtype=float)
    return rec


def test_stop_rule_threshold_is_exact():
    # 9 requests: judged = the last 6 (arrival >= 3); p99 of 6 values >= the value of rank
    # floor(5 * 0.99) = 4, so it is over the SLO once 6 - 4 = 2 judged values are over it
    check = certain_slo_failure(Slo(ttft_ms=100, percentile=99))
    one_over = [0.5, 0.5, 0.5, 0.2, 0.05, 0.05, 0.05, 0.05, 0.05]  # the early third does not count
    assert check(_recorder(one_over), now=100.0) is None
    two_over = one_over[:8] + [0.2]
    assert "2 of 6 judged requests" in check(_recorder(two_over), now=100.0)
    # p50 of 6: rank floor(5 * 0.5) = 2 -> needs 4 over
    p50 = certain_slo_failure(Slo(ttft_ms=100, percentile=50))
    assert p50(_recorder([0] * 3 + [0.2] * 3 + [0.05] * 3), now=100.0) is None
    assert p50(_recorder([0] * 3 + [0.2] * 4 + [0.05] * 2), now=100.0) is not None


def test_waiting_requests_count_once_past_the_slo():
    # two judged requests still without a first token: over the 100 ms SLO once now - arrival > 0.1
    ttft = [0.05] * 7 + [math.nan, math.nan]
    check = certain_slo_failure(Slo(ttft_ms=100))
    assert check(_recorder(ttft), now=8.05) is None  # request 8 arrived at 8.0: 50 ms, request 7: 1.05 s
    assert check(_recorder(ttft), now=8.2) is not None


def test_failed_request_stops_at_once():
    rec = _recorder([0.01] * 9)
    rec.fail(2, 0.0, "prompt+output=9000 tokens exceeds max_model_len=4096")
    assert "exceeds max_model_len" in certain_slo_failure(Slo(ttft_ms=1e9))(rec, now=0.0)


def test_twelve_candidates_same_answers_with_and_without_early_stop(monkeypatch):
    base = Scenario(model="qwen3-0.6b", hardware="l4", prompt_tokens="uniform:64:512",
                    output_tokens="uniform:16:64", seed=3)
    grid = {"max_num_seqs": [8, 32, 128], "chunk_size": [256, 1024], "scheduler": ["sarathi", "vllm"]}
    slo = Slo(ttft_ms=150, tpot_ms=12)
    steps = {}

    import simulator.run as run

    real = run.simulate

    def counting(s, **kw):
        result = real(s, **kw)
        steps[mode] = steps.get(mode, 0) + result.recorder.num_steps
        return result

    monkeypatch.setattr(run, "simulate", counting)
    answers = {}
    for mode in ("full", "early"):
        settings = SearchSettings(probe_requests=90, max_probes=6, early_stop=mode == "early")
        tasks = plan_tasks(base, grid, settings=settings, slo=slo, target_rate=30.0)
        assert len(tasks) == 12
        answers[mode] = [(r["feasible"], r["max_rate_per_replica"], r["replicas_needed"], r["p99_ttft_ms"],
                          r["p99_tpot_ms"]) for r in map(search_candidate, tasks)]
    assert answers["early"] == answers["full"]
    assert len({a[2] for a in answers["full"]}) >= 3  # the candidates need 2, 3 or 4 replicas
    assert steps["early"] < steps["full"]
