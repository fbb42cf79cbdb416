"""Whole runs: determinism, conservation, invariants, failure accounting."""
import numpy as np
import pytest

from simulator.engine.recorder import FAILED, FINISHED
from simulator.errors import ServesimError
from simulator.results.summary import build_summary, summary_json
from simulator.run import simulate
from simulator.scenario import Scenario

SMALL = Scenario(num_requests=200, rate=20.0)


def test_same_seed_byte_identical_summary_and_different_seed_differs():
    a = summary_json(build_summary(simulate(SMALL)))
    b = summary_json(build_summary(simulate(SMALL)))
    c = summary_json(build_summary(simulate(SMALL.replace(seed=1))))
    assert a == b and a != c


@pytest.mark.parametrize("scheduler", ["static", "vllm", "sarathi"])
@pytest.mark.parametrize("preemption_mode", ["recompute", "swap"])
def test_conservation_under_memory_pressure(scheduler, preemption_mode):
    # a tiny KV cache (utilization just above the weights) forces preemptions
    s = SMALL.replace(model="llama-2-7b", hardware="a100-40gb", gpu_memory_utilization=0.42, scheduler=scheduler,
                      preemption_mode=preemption_mode, prompt_tokens="uniform:200:1500", output_tokens="uniform:50:800",
                      max_num_batched_tokens=4096 if scheduler == "vllm" else None)
    r = simulate(s)
    rec = r.recorder
    assert np.all((rec.status == FINISHED) | (rec.status == FAILED))  # every request ends once
    m = build_summary(r)["metrics"]
    assert m["completed"] + m["failed"] == m["submitted"] == 200
    steps = rec.step_arrays()
    for rep in np.unique(steps["replica"]):
        starts = steps["start_s"][steps["replica"] == rep]
        assert np.all(np.diff(starts) >= 0)  # time never decreases
    assert np.all(steps["kv_blocks_used"] <= steps["kv_blocks_total"])
    ok = rec.status == FINISHED
    assert np.all(rec.first_token_s[ok] >= rec.arrival_s[ok])
    assert np.all(rec.finish_s[ok] >= rec.first_token_s[ok])
    if scheduler != "static":
        assert m["num_preemptions"] > 0


def test_blocks_all_returned_at_end():
    from engine_harness import run_replica

    reqs = [(0.1 * i, 5 + i % 7, 1 + i % 11) for i in range(40)]
    for kind in ("vllm", "sarathi", "static"):
        rec, _, sched = run_replica(kind, reqs, num_blocks=12, block_size=4, max_num_batched_tokens=16)
        assert sched.blocks.num_free == 12 and np.all(rec.status == FINISHED)


def test_oversized_requests_fail_with_reason_never_vanish():
    s = Scenario(model="llama-2-7b", hardware="a100-80gb", num_requests=20, prompt_tokens="3000",
                 output_tokens="uniform:500:1500", seed=3)
    m = build_summary(simulate(s))["metrics"]
    assert m["failed"] > 0 and m["completed"] + m["failed"] == 20
    assert "exceeds max_model_len" in m["failure_reasons"]


def test_replicas_and_routers_split_load():
    for router in ("round_robin", "least_loaded"):
        r = simulate(SMALL.replace(replicas=3, router=router))
        dispatched = r.recorder.replica[r.recorder.replica >= 0]
        counts = np.bincount(dispatched, minlength=3)
        assert counts.sum() + np.count_nonzero(r.recorder.status == FAILED) == 200 and counts.min() > 40
        if router == "round_robin":
            assert counts.max() - counts.min() <= 1


def test_closed_loop_keeps_n_users_busy():
    r = simulate(Scenario(num_requests=60, closed_loop_users=4))
    m = build_summary(r)["metrics"]
    assert m["completed"] == 60 and m["max_num_running"] <= 4
    arrivals = np.sort(r.recorder.arrival_s)
    assert np.all(arrivals[:4] == 0) and arrivals[4] > 0


def test_tp_must_divide_heads():
    with pytest.raises(ServesimError, match="tp=3 does not divide"):
        simulate(Scenario(tp=3, num_requests=5))


def test_model_that_does_not_fit_names_bytes():
    with pytest.raises(ServesimError, match=r"needs 137\.\d+ GB of weights per GPU.*offers 23\.19 GB"):
        simulate(Scenario(model="llama-2-70b", hardware="l4", num_requests=5))


def test_preemptions_recorded_with_their_step():
    from engine_harness import run_replica

    rec, _, _ = run_replica("sarathi", [(0.0, 3, 4), (0.0, 3, 4)], num_blocks=4, block_size=2,
                            max_num_batched_tokens=8)
    steps = rec.step_arrays()
    # the preemption happens while planning step 3 (golden trace in test_engine_golden.py)
    assert steps["preemptions_total"].tolist() == [0, 0, 1, 1, 1, 1]
