"""Best-of-N: samples of one prompt share its KV blocks (exact ids) and its prefix reads."""
import numpy as np
import pytest
from engine_harness import run_replica, shapes_as_tuples

from simulator.engine.block_pool import BlockPool
from simulator.results.summary import build_summary
from simulator.run import build_requests, simulate
from simulator.scenario import Scenario


def test_samples_share_full_prompt_blocks_and_copy_the_partial_one():
    reqs = [(0.0, 6, 3), (0.0, 6, 2), (0.0, 6, 1)]  # one prompt, three samples
    rec, cost, sched = run_replica("sarathi", reqs, num_blocks=16, block_size=4, max_num_batched_tokens=16,
                                   groups={0: [1, 2]})
    assert shapes_as_tuples(cost, kv_reads=True) == [
        (((6, 0),), 0, 0, 1, 0),   # one prefill for the group: blocks [0,1] + copies [2,3]
        ((), 2, 14, 2, 10),        # r0, r1 attend 7 each; the shared block (4 tokens) is read once
        ((), 1, 8, 1, 8),
    ]
    np.testing.assert_array_equal(rec.first_token_s, [1, 1, 1])
    np.testing.assert_array_equal(rec.finish_s, [3, 2, 1])
    # r2 ([0,3]) ends at t=1: only 3 returns; r1 ([0,2]) at t=2: 2 returns, 0 still has r0; r0 at t=3
    assert list(sched.blocks._free) == list(range(4, 16)) + [3, 2, 0, 1]


def test_block_pool_reference_counts():
    pool = BlockPool(4, 2)
    a = pool.allocate(2)
    pool.share(a)
    pool.free(a)
    assert pool.num_free == 2  # still owned once
    pool.free(a)
    assert pool.num_free == 4 and list(pool._free) == [2, 3, 0, 1]


def test_fan_out_rows_and_output_budget():
    s = Scenario(num_requests=5, samples_per_prompt=3, output_tokens="uniform:100:900", output_budget_tokens=500)
    r = build_requests(s)
    assert len(r) == 15 and r.group.tolist() == [0, 0, 0, 3, 3, 3, 6, 6, 6, 9, 9, 9, 12, 12, 12]
    assert np.all(r.prompt_tokens[0:3] == r.prompt_tokens[0]) and r.output_tokens.max() <= 500
    assert len(set(r.output_tokens[:3].tolist())) > 1  # each sample draws its own length


def test_sharing_saves_kv_and_reads_against_independent_requests():
    base = Scenario(num_requests=20, rate=float("inf"), prompt_tokens="2048", output_tokens="256", seed=1)
    shared = build_summary(simulate(base.replace(samples_per_prompt=4, num_requests=5)))
    # independent requests: same 20 sequences, no sharing (each prompt prefilled on its own)
    alone = build_summary(simulate(base))
    assert shared["metrics"]["completed"] == alone["metrics"]["completed"] == 20
    assert shared["metrics"]["total_input_tokens"] == alone["metrics"]["total_input_tokens"]
    assert shared["metrics"]["mean_kv_cache_usage"] < alone["metrics"]["mean_kv_cache_usage"]
    assert shared["kinetics"]["paper_intensity"]["eflops_memory"] < alone["kinetics"]["paper_intensity"]["eflops_memory"]


def test_closed_loop_with_samples_rejected():
    with pytest.raises(ValueError, match="samples_per_prompt"):
        Scenario(closed_loop_users=2, samples_per_prompt=2)
