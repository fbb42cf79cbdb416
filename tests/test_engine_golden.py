"""Golden traces: a few requests through each scheduler with a constant 1 s step."""
import numpy as np
from engine_harness import run_replica, shapes_as_tuples

REQUESTS = [(0.0, 6, 3), (0.0, 10, 2), (2.5, 3, 1)]


def test_sarathi_golden_trace():
    rec, cost, sched = run_replica("sarathi", REQUESTS, num_blocks=8, block_size=4,
                                   max_num_batched_tokens=8, chunk_size=8)
    assert shapes_as_tuples(cost) == [
        (((6, 0), (2, 0)), 0, 0, 1),   # r0 whole prompt, r1 first 2 tokens (budget 8)
        (((7, 2),), 1, 7, 1),          # r0 decodes over 6+1, r1 next 7 tokens
        (((1, 9),), 1, 8, 2),          # r1 last token -> first token; r0 emits its last
        (((3, 0),), 1, 11, 2),         # r2 (arrived 2.5) prefills; r1 decodes over 10+1
    ]
    np.testing.assert_array_equal(rec.first_token_s, [1.0, 3.0, 4.0])
    np.testing.assert_array_equal(rec.finish_s, [3.0, 4.0, 4.0])
    assert sched.blocks.num_free == 8
    # free queue: 5,6,7 unused, then r0's [0,1] freed at t=3, r1's [2,3,4] and r2's [5] at t=4
    assert list(sched.blocks._free) == [6, 7, 0, 1, 2, 3, 4, 5]
    # inter-token gaps: r0 at t=2 and t=3, r1 at t=4: three 1 s gaps
    assert sum(c for g, c in zip(rec.itl_s, rec.itl_count) if g == 1.0) == 3


def test_vllm_golden_trace():
    rec, cost, sched = run_replica("vllm", REQUESTS, num_blocks=8, block_size=4, max_num_batched_tokens=16)
    assert shapes_as_tuples(cost) == [
        (((6, 0), (10, 0)), 0, 0, 2),  # prefill-only step, whole prompts
        ((), 2, 18, 2),                # decode r0 (6+1) and r1 (10+1)
        ((), 1, 8, 1),                 # r1 finished at t=2; r0 decodes over 7+1
        (((3, 0),), 0, 0, 1),          # r2 waited for the engine (arrived 2.5)
    ]
    np.testing.assert_array_equal(rec.first_token_s, [1.0, 1.0, 4.0])
    np.testing.assert_array_equal(rec.finish_s, [3.0, 2.0, 4.0])
    assert list(sched.blocks._free) == [6, 7, 2, 3, 4, 0, 1, 5]


def test_static_golden_trace():
    rec, cost, sched = run_replica("static", [(0.0, 6, 3), (0.0, 10, 2), (0.5, 3, 1)], num_blocks=16,
                                   block_size=4, max_num_seqs=2)
    # batch 1 = r0, r1 padded to prompt 10 and output 3: one prefill + 2 decode steps;
    # r2 arrives during it and runs alone afterwards.
    assert shapes_as_tuples(cost) == [
        (((10, 0), (10, 0)), 0, 0, 2),
        ((), 2, 22, 2),
        ((), 2, 24, 2),
        (((3, 0),), 0, 0, 1),
    ]
    np.testing.assert_array_equal(rec.first_token_s, [1.0, 1.0, 4.0])
    np.testing.assert_array_equal(rec.finish_s, [3.0, 3.0, 4.0])  # results return with the batch
    assert sched.blocks.num_free == 16


def test_preemption_by_recompute_exact_blocks_and_victim():
    reqs = [(0.0, 3, 4), (0.0, 3, 4)]
    rec, cost, sched = run_replica("sarathi", reqs, num_blocks=4, block_size=2, max_num_batched_tokens=8)
    assert shapes_as_tuples(cost) == [
        (((3, 0), (3, 0)), 0, 0, 2),
        ((), 2, 8, 2),
        ((), 1, 5, 1),          # both need a 3rd block, 0 free: r1 (latest admitted) preempted
        ((), 1, 6, 1),          # r1 (5 tokens to recompute) waits: only 1 block free
        (((5, 0),), 0, 0, 1),   # r0 done at t=4; r1 re-prefills prompt + 2 generated tokens
        ((), 1, 6, 1),
    ]
    assert rec.num_preemptions.tolist() == [0, 1]
    np.testing.assert_array_equal(rec.finish_s, [4.0, 6.0])
    np.testing.assert_array_equal(rec.first_token_s, [1.0, 1.0])  # TTFT is not reset
    # r1 got [2,3] first, then after r0 freed [0,1,2]: [3,0,1]; freed in that order at the end
    assert list(sched.blocks._free) == [2, 3, 0, 1]
    # r1's gap across its preemption: last token at t=2, next at t=5
    assert 3.0 in list(rec.itl_s)


def test_preemption_by_swap_keeps_kv_and_charges_transfer():
    reqs = [(0.0, 3, 4), (0.0, 3, 4)]
    rec, cost, sched = run_replica("sarathi", reqs, num_blocks=4, block_size=2, max_num_batched_tokens=8,
                                   swap_blocks=8)
    assert rec.num_preemptions.tolist() == [0, 1]
    assert rec.status.tolist() == [1, 1]
    # swapped r1 resumes decoding with its cache (no re-prefill step): no prefill after step 1
    assert all(not s.prefill_chunks for s in cost.shapes[1:])
    assert sched.blocks.num_free == 4 and sched.pool.swap_free == 8
