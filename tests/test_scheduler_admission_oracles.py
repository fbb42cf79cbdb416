"""Continuous batching (vLLM, Sarathi-Serve) by hand: admission at exact block and token
boundaries, swap time charged to the step that moves blocks, preemption inside a chunked prefill,
reserve admission (TensorRT-LLM GUARANTEED_NO_EVICT), KV-policy work per step and prefix-cache
admission (issue 19: oracles for the schedulers' mutation survivors).

Tiny pools, a constant 1 s step plus any host-link seconds of the step (the engine's rule: step
time = cost model + transfers). Every trace is worked out by hand from the documented rules:
vLLM (no chunked prefill): a step is either a prefill of whole prompts (FCFS, token budget
max_num_batched_tokens, blocks for the whole prompt) or a decode of every running sequence;
Sarathi: decodes first, then running prefills, then new ones, each chunk min(tokens left, budget
left, chunk_size); a sequence that needs a block it cannot get preempts the latest-admitted
sequence (swap: its blocks move to the host at block_bytes / link seconds a block).
Shapes are (prefill chunks as (tokens, computed before), num decode, decode context sum, logits).
"""
from __future__ import annotations

import numpy as np
import pytest
from engine_harness import LogRecorder, run_replica, shapes_as_tuples

from simulator.cost import KvWork
from simulator.engine.block_pool import BlockPool
from simulator.engine.kv_offload import HostKvTier
from simulator.engine.prefix_cache import PrefixCachingBlockPool
from simulator.engine.schedulers import SarathiScheduler, SchedulerLimits, VllmScheduler
from simulator.engine.sequence_pool import SequencePool
from simulator.kv.policies import H2OPolicy

SCHEDULERS = {"vllm": VllmScheduler, "sarathi": SarathiScheduler}


def build(kind, blocks, *, max_num_seqs=4, max_num_batched_tokens=16, chunk_size=16, kv=None, admission="preempt"):
    rec = LogRecorder()
    pool = SequencePool(blocks, rec, None, kv, admission=admission)
    limits = SchedulerLimits(max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens,
                             chunk_size=chunk_size)
    return SCHEDULERS[kind](pool, limits), pool, rec


def drive(sched, pool, arrivals=None, limit=100, t=0.0):
    """Plan/commit from time t until idle; arrivals: {step number before which to enqueue:
    [(req, p, o)]}. Returns per step (chunks, num decode, context sum, logits, kv_work, extra_s)."""
    arrivals = dict(arrivals or {})
    steps = []
    while True:
        for req, p, o in arrivals.pop(len(steps), ()):
            pool.enqueue(req, p, o)
        plan = sched.plan()
        if plan is None:
            assert pool.num_outstanding == 0, "stalled with requests queued"
            if not arrivals:
                return steps
            steps.append(None)  # idle step slot: nothing to run
            continue
        s = plan.shape
        steps.append((s.prefill_chunks, s.num_decode, s.decode_context_sum, s.num_logits, s.kv_work, plan.extra_s))
        t += 1.0 + plan.extra_s
        sched.commit(plan, t)
        assert len(steps) < limit


# ---- vLLM: a prefill step carries no decode work ----------------------------------------------
def test_vllm_prefill_step_while_a_sequence_decodes_reads_no_kv():
    """r1 arrives while r0 decodes: vLLM runs r1's prefill alone (r0 waits a step), and that
    step's decode context and KV reads are 0, not r0's."""
    _, cost, _ = run_replica("vllm", [(0.0, 4, 4), (1.5, 4, 2)], num_blocks=16, block_size=4,
                             max_num_batched_tokens=16)
    assert shapes_as_tuples(cost, kv_reads=True) == [
        (((4, 0),), 0, 0, 1, 0),
        ((), 1, 5, 1, 5),
        (((4, 0),), 0, 0, 1, 0),
        ((), 2, 6 + 5, 2, 11),
        ((), 1, 7, 1, 7),
    ]


def test_vllm_best_of_n_group_prefix_read_once_and_not_in_prefill_steps():
    """Two samples of a 6-token prompt (block 4): they share the full block (4 tokens); each
    decode reads its own 7, 8 tokens but the shared 4 only once: 14 - 4, 16 - 4. A third request
    arriving meanwhile prefills alone: that step reads no KV."""
    _, cost, _ = run_replica("vllm", [(0.0, 6, 3), (0.0, 6, 3), (1.5, 4, 1)], num_blocks=16, block_size=4,
                             max_num_batched_tokens=16, groups={0: [1]})
    assert shapes_as_tuples(cost, kv_reads=True) == [
        (((6, 0),), 0, 0, 1, 0),
        ((), 2, 14, 2, 10),
        (((4, 0),), 0, 0, 1, 0),
        ((), 2, 16, 2, 12),
    ]


# ---- swap time is charged to the step that moves blocks ------------------------------------------
@pytest.mark.parametrize("kind", ["vllm", "sarathi"])
def test_swap_out_and_in_seconds_land_on_their_steps(kind):
    """Block 2 tokens, 4 blocks, 1 s per swapped block. r0, r1: prompt 3, output 4. Step 3: both
    need a third block, none free: r1 (latest) swaps out 2 blocks (2 s). Step 4: r1 cannot come
    back (1 block free). r0 finishes at t=6; step 5 swaps r1's 2 blocks back in (2 s)."""
    rec, cost, _ = run_replica(kind, [(0.0, 3, 4), (0.0, 3, 4)], num_blocks=4, block_size=2,
                               max_num_batched_tokens=8, swap_blocks=8)
    assert shapes_as_tuples(cost) == [
        (((3, 0), (3, 0)), 0, 0, 2), ((), 2, 8, 2), ((), 1, 5, 1), ((), 1, 6, 1), ((), 1, 5, 1), ((), 1, 6, 1)]
    assert rec.step_arrays()["duration_s"].tolist() == [1.0, 1.0, 3.0, 1.0, 3.0, 1.0]
    np.testing.assert_array_equal(rec.finish_s, [6.0, 10.0])
    assert rec.num_preemptions.tolist() == [0, 1]
    # r1's tokens: t = 1, 2, then 9 (after 7 s away), 10
    gaps = sorted(g for g, c in zip(rec.itl_s, rec.itl_count) for _ in range(c))
    assert gaps == [1.0, 1.0, 1.0, 1.0, 3.0, 7.0]  # r0: 1, 3 (the swap step), 1; r1: 1, 7, 1


# ---- admission boundaries ------------------------------------------------------------------------
def test_vllm_admits_a_prompt_that_fills_the_pool_exactly():
    sched, pool, rec = build("vllm", BlockPool(4, 4))
    steps = drive(sched, pool, {0: [(0, 16, 1)]})
    assert [s[:4] for s in steps] == [(((16, 0),), 0, 0, 1)]
    assert rec.log == [("first", 0, 1.0), ("finish", 0, 1.0)]


def test_vllm_prefill_budget_and_seat_limits():
    """Budget 16: prompts 10 and 10 do not share a step (20 > 16); 10 and 6 do (16). Seats: at
    most max_num_seqs running."""
    sched, pool, _ = build("vllm", BlockPool(64, 4))
    steps = drive(sched, pool, {0: [(0, 10, 1), (1, 10, 1), (2, 6, 1)]})
    assert [s[0] for s in steps] == [((10, 0),), ((10, 0), (6, 0))]
    sched, pool, _ = build("vllm", BlockPool(64, 4), max_num_seqs=2)
    steps = drive(sched, pool, {0: [(0, 2, 3), (1, 2, 3), (2, 2, 3)]})
    assert steps[0][0] == ((2, 0), (2, 0))


@pytest.mark.parametrize("kind", ["vllm", "sarathi"])
def test_reserve_admission_waits_for_whole_sequence_blocks(kind):
    """6 blocks of 4; r0, r1: 4 + 8 tokens = 3 blocks each, promised at admission: the pool is
    fully committed, so r2 (4 + 1 tokens, 2 blocks) waits until both finish (t = 8), although its
    prompt's block is free all along. Preempt admission would take r2 at once."""
    sched, pool, rec = build(kind, BlockPool(6, 4), admission="reserve")
    steps = drive(sched, pool, {0: [(0, 4, 8), (1, 4, 8), (2, 4, 1)]})
    assert steps[0][:4] == (((4, 0), (4, 0)), 0, 0, 2)
    assert [s[2] for s in steps[1:8]] == [10, 12, 14, 16, 18, 20, 22]
    assert steps[8][:4] == (((4, 0),), 0, 0, 1)
    assert rec.times("finish") == {0: 8.0, 1: 8.0, 2: 9.0}
    assert not [e for e in rec.log if e[0] == "preempt"]
    sched, pool, _ = build(kind, BlockPool(6, 4))
    assert drive(sched, pool, {0: [(0, 4, 8), (1, 4, 8), (2, 4, 1)]})[0][0] == ((4, 0), (4, 0), (4, 0))


# ---- Sarathi: a running prefill preempts later-admitted sequences --------------------------------
def _sarathi_swap(num_blocks):
    rec = LogRecorder()
    from simulator.engine.sequence_pool import SwapSpace

    pool = SequencePool(BlockPool(num_blocks, 2), rec, SwapSpace(10, 1, 1.0))
    sched = SarathiScheduler(pool, SchedulerLimits(max_num_seqs=4, max_num_batched_tokens=8, chunk_size=6))
    return sched, pool, rec


def test_sarathi_running_prefill_swaps_out_two_later_sequences():
    """Block 2, 6 blocks, chunk 6, budget 8. L (12-token prompt, output 1) takes a 6-token chunk
    (blocks 0-2); S1, S2 (1 token each) take the rest of the budget (blocks 3, 4) and decode.
    Step 2: L's last 6 tokens need 3 blocks, 1 free: S2 then S1 (latest first) swap out, 1 s each,
    and the step costs 1 + 2 s. Step 3 swaps both back in (1 s each)."""
    sched, pool, rec = _sarathi_swap(6)
    steps = drive(sched, pool, {0: [(0, 12, 1), (1, 1, 5), (2, 1, 5)]})
    assert [s[:4] + (s[5],) for s in steps] == [
        (((6, 0), (1, 0), (1, 0)), 0, 0, 2, 0.0),
        (((6, 6),), 0, 0, 1, 2.0),
        ((), 2, 4, 2, 2.0),
        ((), 2, 6, 2, 0.0),
        ((), 2, 8, 2, 0.0),
        ((), 2, 10, 2, 0.0),
    ]
    assert [e for e in rec.log if e[0] == "preempt"] == [("preempt", 2), ("preempt", 1)]
    assert rec.times("first") == {1: 1.0, 2: 1.0, 0: 4.0}
    assert rec.times("finish") == {0: 4.0, 2: 10.0, 1: 10.0}
    assert pool.blocks.num_free == 6 and pool.swap_free == 10


def test_sarathi_running_prefill_that_fits_exactly_preempts_nobody():
    """The same with 8 blocks: 3 free for L's last 3 blocks, an exact fit: no preemption."""
    sched, pool, rec = _sarathi_swap(8)
    steps = drive(sched, pool, {0: [(0, 12, 1), (1, 1, 5), (2, 1, 5)]})
    assert [s[:4] + (s[5],) for s in steps] == [
        (((6, 0), (1, 0), (1, 0)), 0, 0, 2, 0.0),
        (((6, 6),), 2, 4, 3, 0.0),
        ((), 2, 6, 2, 0.0),
        ((), 2, 8, 2, 0.0),
        ((), 2, 10, 2, 0.0),
    ]
    assert not [e for e in rec.log if e[0] == "preempt"]
    assert rec.times("finish") == {0: 2.0, 1: 5.0, 2: 5.0}


def test_sarathi_chunk_shrinks_to_the_blocks_left_when_nobody_is_later():
    """Block 2, 5 blocks, chunk 4. A (2 tokens, admitted first) decodes and takes block 3 at step 2;
    L (8 tokens, admitted second) wants 4 more tokens (2 blocks) but only block 4 is free and
    nobody was admitted after L: the chunk shrinks to the 2 tokens that block holds."""
    sched, pool, rec = build("sarathi", BlockPool(5, 2), max_num_seqs=2, max_num_batched_tokens=8, chunk_size=4)
    for r, p, o in ((0, 2, 10), (1, 8, 1)):
        pool.enqueue(r, p, o)
    plan = sched.plan()
    assert plan.shape.prefill_chunks == ((2, 0), (4, 0))
    sched.commit(plan, 1.0)
    plan = sched.plan()
    assert (plan.shape.prefill_chunks, plan.shape.num_decode, plan.shape.decode_context_sum) == (((2, 4),), 1, 3)
    a, = pool.decode.members.values()
    assert a.blocks == [0, 3] and pool.prefilling[0].blocks == [1, 2, 4] and pool.blocks.num_free == 0
    assert not [e for e in rec.log if e[0] == "preempt"]


def test_sarathi_budget_left_for_new_prefills():
    """Budget 8, chunk 4: two running prefills take 4 + 4, so the budget is spent and a waiting
    request is not admitted with a 0-token chunk; with budget 9 it gets the 1 token left."""
    for budget, third in ((8, None), (9, (1, 0))):
        sched, pool, _ = build("sarathi", BlockPool(64, 4), max_num_batched_tokens=budget, chunk_size=4)
        pool.enqueue(0, 8, 1)
        pool.enqueue(1, 8, 1)
        sched.commit(sched.plan(), 1.0)  # both admitted with 4-token chunks (8 <= budget)
        pool.enqueue(2, 8, 1)
        chunks = sched.plan().shape.prefill_chunks
        assert chunks == ((4, 4), (4, 4)) + ((third,) if third else ())


def test_sarathi_running_prefills_share_a_spent_budget():
    """Budget 4, chunk 4, three prompts of 4: one admitted per step (the budget is spent by the
    first), each finishing in its step."""
    sched, pool, rec = build("sarathi", BlockPool(64, 4), max_num_batched_tokens=4, chunk_size=4)
    steps = drive(sched, pool, {0: [(0, 4, 1), (1, 4, 1), (2, 4, 1)]})
    assert [s[0] for s in steps] == [((4, 0),)] * 3
    sched, pool, rec = build("sarathi", BlockPool(64, 4), max_num_batched_tokens=4, chunk_size=2)
    pool.enqueue(0, 4, 1)
    pool.enqueue(1, 4, 1)
    steps = drive(sched, pool)
    # chunk 2: both admitted (2 + 2 = 4), then both continue (budget 4 again), finishing together
    assert [s[0] for s in steps] == [((2, 0), (2, 0)), ((2, 2), (2, 2))]
    assert rec.times("finish") == {0: 2.0, 1: 2.0}


# ---- KV policy work per step ---------------------------------------------------------------------
def test_sarathi_h2o_mixed_steps_sum_decode_and_prefill_work():
    """H2O budget 6 (gather), block 4, chunk 4, budget 8. A (4 + 4 tokens) and B (10 + 2): A's
    prompt is under the budget (kept whole), B's is compressed from 10 to 6 when its prefill ends.
    Per step: prefill score pairs n*ctx + n(n+1)/2 and keys n + ctx per chunk; decode reads and
    score updates of the held tokens; a finishing compressed prompt scans its 10 scores and
    gathers the 6 kept; in steady state (held = 6) one victim a step: scan and gather 6 per row."""
    sched, pool, rec = build("sarathi", BlockPool(16, 4), max_num_batched_tokens=8, chunk_size=4,
                             kv=H2OPolicy(budget=6, compaction="gather"))
    steps = drive(sched, pool, {0: [(0, 4, 4), (1, 10, 2)]})
    assert [s[:5] for s in steps] == [
        (((4, 0), (4, 0)), 0, 0, 1, KvWork(20, 8, 0, 0, 0)),
        (((4, 4),), 1, 5, 1, KvWork(5 + 26, 5 + 8, 0, 0, 0)),
        (((2, 8),), 1, 6, 2, KvWork(6 + 19, 6 + 10, 10, 6, 0)),
        ((), 2, 12, 2, KvWork(12, 12, 12, 12, 0)),
    ]
    assert rec.times("finish") == {0: 4.0, 1: 4.0}
    assert pool.blocks.num_free == 16


# ---- prefix caching admission --------------------------------------------------------------------
KEYS = {0: (1, 2, 3), 1: (1, 2, 4), 2: (1, 2, 3), 3: (7, 8, 9), 4: (5, 6, 9), 5: (11,)}


def _cached(kind, host=None, **limits):
    blocks = PrefixCachingBlockPool(8, 4, lambda r: KEYS[r], host)
    return build(kind, blocks, **limits)


def _warm(sched, pool):
    """Request 0 (10 tokens, keys 1, 2, 3) runs alone: blocks 0, 1 end up cached (keys 1, 2)."""
    drive(sched, pool, {0: [(0, 10, 1)]})
    assert list(pool.blocks._free) == [3, 4, 5, 6, 7, 2, 1, 0]


def test_vllm_admits_cached_prefixes_and_a_whole_uncached_prompt_only():
    """After the warm-up, requests 1 (10 tokens) and 2 (9 tokens) hit blocks 0, 1 (8 tokens):
    both prefill only what is missing (2 and 1 tokens); request 3 (10 uncached tokens) fits the 13
    tokens left of budget 16: all three in one step. With budget 12, request 3 (10 > 12 - 3) waits
    for the next step: vLLM never splits a prompt."""
    sched, pool, rec = _cached("vllm")
    _warm(sched, pool)
    for r, p in ((1, 10), (2, 9), (3, 10)):
        pool.enqueue(r, p, 1)
    assert sched.plan().shape.prefill_chunks == ((2, 8), (1, 8), (10, 0))
    sched, pool, rec = _cached("vllm", max_num_batched_tokens=12)
    _warm(sched, pool)
    steps = drive(sched, pool, {0: [(1, 10, 1), (2, 9, 1), (3, 10, 1)]}, t=1.0)
    assert [s[0] for s in steps] == [((2, 8), (1, 8)), ((10, 0),)]
    assert rec.times("finish") == {0: 1.0, 1: 2.0, 2: 2.0, 3: 3.0}


def test_sarathi_admits_cached_prefixes_then_chunks_within_the_budget():
    """Chunk 4, budget 6. Warm-up: request 0's 10 tokens in chunks 4, 4, 2. Then request 1 hits
    8 tokens (chunk 2), request 4 has no hit and gets min(4, 6 - 2) = 4: the budget is spent and
    request 5 waits. Next step: request 4's last 2 tokens, then request 5's 3 (budget 6 - 2 = 4)."""
    sched, pool, rec = _cached("sarathi", max_num_batched_tokens=6, chunk_size=4)
    steps = drive(sched, pool, {0: [(0, 10, 1)]})
    assert [s[0] for s in steps] == [((4, 0),), ((4, 4),), ((2, 8),)]
    steps = drive(sched, pool, {0: [(1, 10, 1), (4, 6, 1), (5, 3, 1)]}, t=3.0)
    assert [s[0] for s in steps] == [((2, 8), (4, 0)), ((2, 4), (3, 0))]
    assert rec.times("finish") == {0: 3.0, 1: 4.0, 4: 5.0, 5: 5.0}


@pytest.mark.parametrize("kind", ["vllm", "sarathi"])
def test_host_tier_fetches_of_one_step_add_up(kind):
    """Host tier holds keys 1, 2, 5, 6 (1 s a block): requests 0 (keys 1, 2, 3) and 4 (keys 5, 6, 9)
    each fetch 2 blocks when admitted in the same step: the step carries 4 s of transfers."""
    host = HostKvTier(num_blocks=8, block_bytes=1, link_bytes_per_s=1.0)
    for key in (1, 2, 5, 6):
        host.put(key)
    sched, pool, rec = _cached(kind, host=host, max_num_batched_tokens=16, chunk_size=16)
    steps = drive(sched, pool, {0: [(0, 10, 1), (4, 10, 1)]})
    assert [(s[0], s[5]) for s in steps] == [(((2, 8), (2, 8)), 4.0)]
    assert rec.times("finish") == {0: 5.0, 4: 5.0}


def test_sarathi_best_of_n_last_chunk_waits_for_the_copy_block():
    """Block 2, 5 blocks, chunk 4, budget 8. X (2 tokens, admitted first) decodes; G (5 tokens, two
    samples) prefills 4 tokens in blocks 1, 2. G's last token needs its third block plus one copy
    of that partial block for the second sample: 2 blocks, but X takes block 3 and only block 4
    is left, and nobody was admitted after G. G cannot split its last token, so it waits (chunk 0)
    until X finishes at t=4; then its last token and the copy take blocks 0 and 3."""
    sched, pool, rec = build("sarathi", BlockPool(5, 2), max_num_seqs=4, max_num_batched_tokens=8, chunk_size=4)
    pool.enqueue(0, 2, 4)
    pool.enqueue(1, 5, 2, siblings=[(9, 2)])
    steps = drive(sched, pool)
    assert [s[:4] for s in steps] == [
        (((2, 0), (4, 0)), 0, 0, 1),
        ((), 1, 3, 1),
        ((), 1, 4, 1),
        ((), 1, 5, 1),
        (((1, 4),), 0, 0, 1),
        ((), 2, 12, 2),
    ]
    assert rec.times("finish") == {0: 4.0, 1: 6.0, 9: 6.0}
    assert rec.times("first") == {0: 1.0, 1: 5.0, 9: 5.0}
    assert pool.blocks.num_free == 5


def test_sarathi_budget_spent_by_running_prefills_before_the_last():
    """A 1-token prompt with 4 samples finishes its prefill in step 1 (1 token of budget 10) next
    to A, B (4 tokens each) and C (the last 1): step 2 has 4 decodes, so 6 tokens are left: A 4,
    B 2, and C (running, admitted last) gets nothing this step."""
    sched, pool, rec = build("sarathi", BlockPool(64, 4), max_num_seqs=8, max_num_batched_tokens=10, chunk_size=4)
    pool.enqueue(0, 1, 5, siblings=[(10, 5), (11, 5), (12, 5)])
    for r in (1, 2, 3):
        pool.enqueue(r, 12, 1)
    plan = sched.plan()
    assert plan.shape.prefill_chunks == ((1, 0), (4, 0), (4, 0), (1, 0))
    sched.commit(plan, 1.0)
    plan = sched.plan()
    assert (plan.shape.prefill_chunks, plan.shape.num_decode, plan.shape.decode_context_sum) == (
        ((4, 4), (2, 4)), 4, 4 * 2)


def test_sarathi_running_prefills_get_the_last_token_of_budget():
    """Budget 9, chunk 4, three 12-token prompts: 4 + 4 + 1 every step, the third (admitted with
    the 1 token left in step 1) continues with 1 token in steps 2 and 3."""
    sched, pool, _ = build("sarathi", BlockPool(64, 4), max_num_batched_tokens=9, chunk_size=4)
    steps = drive(sched, pool, {0: [(0, 12, 1), (1, 12, 1), (2, 12, 1)]})
    assert [s[0] for s in steps[:3]] == [((4, 0), (4, 0), (1, 0)), ((4, 4), (4, 4), (1, 1)), ((4, 8), (4, 8), (1, 2))]


def test_sarathi_swap_seconds_of_decode_preemption_survive_a_later_chunk():
    """Block 2, 5 blocks, chunk 4, budget 8. A (2 tokens), P (12), B (2) admitted in that order;
    step 2: A and B need a block each, 1 free: B (latest) swaps out (1 s). P (admitted before B)
    then continues with the 2 tokens its free block holds, preempting nobody: the step still
    carries B's 1 s."""
    from simulator.engine.sequence_pool import SwapSpace

    rec = LogRecorder()
    pool = SequencePool(BlockPool(5, 2), rec, SwapSpace(10, 1, 1.0))
    sched = SarathiScheduler(pool, SchedulerLimits(max_num_seqs=4, max_num_batched_tokens=8, chunk_size=4))
    for r, p, o in ((0, 2, 5), (1, 12, 1), (2, 2, 5)):
        pool.enqueue(r, p, o)
    plan = sched.plan()
    assert plan.shape.prefill_chunks == ((2, 0), (4, 0), (2, 0))
    sched.commit(plan, 1.0)
    plan = sched.plan()
    s = plan.shape
    assert (s.prefill_chunks, s.num_decode, s.decode_context_sum, s.num_logits, plan.extra_s) == (
        ((2, 4),), 1, 3, 1, 1.0)
    assert rec.log[-1] == ("preempt", 2) and len(pool.swapped) == 1


def test_limit_errors_name_the_field_and_value():
    with pytest.raises(ValueError, match=r"^max_num_seqs must be >= 1, got 0$"):
        SchedulerLimits(max_num_seqs=0, max_num_batched_tokens=8, chunk_size=8)
    with pytest.raises(ValueError, match=r"^chunk_size must be >= 1, got -3$"):
        SchedulerLimits(max_num_seqs=1, max_num_batched_tokens=8, chunk_size=-3)
    pool = SequencePool(BlockPool(4, 4), LogRecorder(), None)
    with pytest.raises(ValueError, match=r"max_num_batched_tokens \(3\) must be >= max_num_seqs \(4\)"):
        SarathiScheduler(pool, SchedulerLimits(max_num_seqs=4, max_num_batched_tokens=3, chunk_size=8))
