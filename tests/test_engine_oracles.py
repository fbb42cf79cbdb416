"""Engine parts by hand (issue 19: oracles for the engine package's mutation survivors).

DecodeSet, BlockPool, SequencePool preemption and reserve admission, the routers and the run
recorder, each on a tiny case worked out from the rules in their docstrings: a decode member of
length c reads c + 1 tokens in its next step and needs a new block when c reaches its blocks'
capacity; block ids leave the front of the free queue and return to its back; the preemption
victim is the latest admitted; swap moves a member's blocks to the host while swap space lasts,
else it is recomputed (re-prefilling every known token).
"""
from __future__ import annotations

import numpy as np
import pytest
import simpy
from engine_harness import LogRecorder

from simulator.engine.block_pool import BlockPool
from simulator.engine.decode_set import DecodeSet
from simulator.engine.recorder import RunRecorder, StepsNotKept
from simulator.engine.replica import LeastLoadedRouter, RoundRobinRouter, open_loop_arrivals
from simulator.engine.schedulers import SarathiScheduler, SchedulerLimits, VllmScheduler
from simulator.engine.sequence_pool import PrefillSeq, SequencePool, SwapSpace
from simulator.kv.policies import H2OPolicy, ScissorhandsPolicy


class Gaps:
    def __init__(self):
        self.calls = []

    def __call__(self, gap, count):
        self.calls.append((gap, count))


# ---- DecodeSet -----------------------------------------------------------------------------------
def test_dense_members_reads_blocks_and_finishes():
    """Block 4. r0: 6 tokens in 2 blocks, 3 tokens to go; r1: 3 tokens in 1 block, 1 to go."""
    d = DecodeSet(4)
    d.add(0, 6, 3, [0, 1], 0, 1.0)
    d.add(1, 3, 1, [2], 1, 1.0)
    assert (d.n, d.step_tokens(), d.context_sum(), d.held_sum()) == (2, 2, 7 + 4, 7 + 4)
    assert d.members_needing_block() == []  # r0 has 8 slots for 7, r1 4 for 4
    gaps = Gaps()
    done = d.advance(2.0, gaps)
    assert [m.req for m in done] == [1] and list(d.members) == [0]
    assert gaps.calls == [(1.0, 2)]  # both last emitted at t = 1
    assert d.context_sum() == 8 and d.held_sum() == 8
    assert d.members_needing_block() == []  # r1's pending block request died with it
    d.advance(3.0, gaps)
    m0 = d.members[0]
    assert (d.ctx(m0), d.remaining(m0), d.last_token_s(m0)) == (8, 1, 3.0)
    need = d.members_needing_block()  # r0 holds 8 tokens in 8 slots: its 9th needs block 3
    assert need == [m0]
    free = iter([5, 6])
    d.grant_blocks(need, lambda: next(free))
    assert m0.blocks == [0, 1, 5] and m0.nblocks == 3
    assert d.members_needing_block() == []
    assert [m.req for m in d.advance(4.0, gaps)] == [0]
    assert gaps.calls == [(1.0, 2), (1.0, 1), (1.0, 1)] and d.n == 0 and d.context_sum() == 0


def test_a_member_joining_later_keeps_its_own_last_token_time():
    d = DecodeSet(4)
    d.add(0, 4, 5, [0, 1], 0, 0.5)
    gaps = Gaps()
    d.advance(1.0, gaps)
    d.add(1, 2, 5, [2], 1, 1.5)  # joined after step 1, its first token at 1.5
    m0, m1 = d.members[0], d.members[1]
    assert (d.last_token_s(m0), d.last_token_s(m1)) == (1.0, 1.5)
    assert d.context_sum() == (4 + 1 + 1) + (2 + 1)
    assert d.latest_admitted() is m1
    d.advance(3.0, gaps)
    assert sorted(gaps.calls) == [(0.5, 1), (1.5, 1), (2.0, 1)]
    assert d.ctx(m1) == 3 and d.remaining(m1) == 4 and d.ctx(m0) == 6
    d.remove(m1)
    assert d.context_sum() == 7 and d.latest_admitted() is m0
    assert DecodeSet(4).latest_admitted() is None


def test_removed_member_events_are_dropped():
    """A preempted member (removed) must neither finish nor ask for a block later; added again
    it gets fresh events."""
    d = DecodeSet(2)
    d.add(0, 2, 2, [0], 0, 0.0)  # needs a block at once (2 tokens in 2 slots), finishes at k = 2
    m = d.members[0]
    assert d.members_needing_block() == [m]
    d.remove(m)
    assert d.members_needing_block() == [] and d.advance(1.0, Gaps()) == []
    d.add(0, 3, 1, [0, 1], 1, 1.0)  # back with 3 tokens in 4 slots: finishes after one step
    assert d.members_needing_block() == []
    assert [x.req for x in d.advance(2.0, Gaps())] == [0]


def test_shared_prompt_prefix_is_read_once_per_group():
    d = DecodeSet(4)
    d.add(0, 6, 3, [0, 1], 0, 1.0, group=0, shared_tokens=4)
    assert d.dup_shared_sum == 0 and d.kv_read_sum() == 7
    d.add(1, 6, 3, [0, 2], 0, 1.0, group=0, shared_tokens=4)
    d.add(2, 6, 3, [0, 3], 0, 1.0, group=0, shared_tokens=4)
    d.add(3, 5, 3, [4, 5], 1, 1.0)
    assert d.context_sum() == 3 * 7 + 6 and d.kv_read_sum() == 3 * 7 + 6 - 2 * 4
    d.remove(d.members[1])
    assert d.kv_read_sum() == 2 * 7 + 6 - 4
    d.remove(d.members[0])
    d.remove(d.members[2])
    assert d.dup_shared_sum == 0 and d.kv_read_sum() == 6


def test_policy_member_phases_hold_and_compress():
    """Scissorhands B 8, m 4, block 2, gather: a member kept 3 tokens grows to 8 over 5 steps (its
    5th and 7th tokens need blocks 10, 11), then keeps 4: blocks past the 2nd go back to the pool,
    and growing to 5 again takes a new block (12)."""
    freed = []
    p = ScissorhandsPolicy(budget=8, drop=4, protect_recent=0, compaction="gather")
    d = DecodeSet(2, p, freed.extend)
    d.add(0, 3, 20, [0, 1], 0, 0.0, retained=3, budget=(8, 4))
    reads, comp, grants = [], [], iter(range(10, 20))
    for step in range(10):
        d.grant_blocks(d.members_needing_block(), lambda: next(grants))
        reads.append((d.context_sum(), d.held_sum()))
        comp.append(d.compressing())
        d.advance(float(step + 1), Gaps())
        if step == 5:
            assert d.members[0].blocks == [0, 1, 12] and freed == [10, 11]
    assert reads == [(4, 4), (5, 5), (6, 6), (7, 7), (8, 8), (5, 5), (6, 6), (7, 7), (8, 8), (5, 5)]
    assert comp == [(0, 0)] * 4 + [(8, 4)] + [(0, 0)] * 3 + [(8, 4), (0, 0)]
    # second cycle: blocks 12, 13 taken and given back; the 3rd block again for the 5th token only
    assert d.members[0].blocks == [0, 1, 14] and freed == [10, 11, 12, 13]


def test_constant_phase_larger_than_the_blocks_is_refused():
    d = DecodeSet(4, H2OPolicy(budget=12))
    with pytest.raises(RuntimeError, match=r"^request 7: constant KV phase of 12 tokens exceeds its 2 blocks$"):
        d.add(7, 20, 5, [0, 1], 0, 0.0, retained=12, budget=12)
    d = DecodeSet(4, H2OPolicy(budget=8))
    d.add(7, 20, 5, [0, 1], 0, 0.0, retained=8, budget=8)  # exactly 8 slots: fine
    assert d.context_sum() == 8 and d.held_sum() == 8 and d.held_const_sum == 8


# ---- BlockPool -----------------------------------------------------------------------------------
def test_block_pool_ids_counts_and_errors():
    b = BlockPool(5, 4)
    assert (b.num_free, b.num_used) == (5, 0)
    assert [b.blocks_for(n) for n in (0, 1, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]
    assert b.allocate(2) == [0, 1] and b.allocate_one() == 2 and (b.num_free, b.num_used) == (2, 3)
    b.free([1, 0])
    assert b.allocate(3) == [3, 4, 1]
    with pytest.raises(RuntimeError, match=r"^allocate\(2\) with only 1 free blocks$"):
        b.allocate(2)
    assert b.allocate(0) == [] and b.allocate(1) == [0]
    for bad, msg in (((0, 4), "num_blocks must be >= 1, got 0"), ((4, 0), "block_size must be >= 1, got 0")):
        with pytest.raises(ValueError, match=f"^{msg}$"):
            BlockPool(*bad)


def test_shared_blocks_return_with_their_last_owner():
    b = BlockPool(4, 2)
    a = b.allocate(2)
    assert b.share(a) == [0, 1] and b.share([0]) == [0]  # block 0: 3 owners, block 1: 2
    b.free([0, 1])
    assert b.num_free == 2
    b.free([0, 1])  # block 1's last owner leaves
    assert list(b._free) == [2, 3, 1]
    b.free([0])
    assert list(b._free) == [2, 3, 1, 0] and b._extra_refs == {}


# ---- SequencePool: preemption and reserve admission ----------------------------------------------
def test_recompute_preempts_the_latest_prefill_before_a_decode():
    """Sarathi, block 2, 4 blocks, chunk 2, budget 3. A (2 tokens, 5 out) decodes; B (6 tokens,
    admitted after A) prefills. Step 4: A needs its 3rd block, none free: B (latest admitted,
    mid-prefill) goes back to the head of the queue, its blocks freed and its 4 computed tokens
    lost, and is re-admitted in the block left; A keeps decoding and finishes at t=5."""
    rec = LogRecorder()
    pool = SequencePool(BlockPool(4, 2), rec, None)
    sched = SarathiScheduler(pool, SchedulerLimits(max_num_seqs=2, max_num_batched_tokens=3, chunk_size=2))
    pool.enqueue(0, 2, 5)
    pool.enqueue(1, 6, 1)
    shapes, t = [], 0.0
    while (plan := sched.plan()) is not None:
        shapes.append((plan.shape.prefill_chunks, plan.shape.num_decode, plan.shape.decode_context_sum))
        assert plan.extra_s == 0.0  # recompute moves nothing over the host link
        t += 1.0
        sched.commit(plan, t)
    assert shapes == [
        (((2, 0), (1, 0)), 0, 0),  # budget 3: A whole (block 0), B 1 token (block 1)
        (((2, 1),), 1, 3),  # A takes block 2; B grows to 3 tokens (block 3): pool full
        (((1, 3),), 1, 4),  # B's 2 more tokens need a block: none, nobody later -> 1 token fits
        (((2, 0),), 1, 5),  # A needs a block: B preempted (4 tokens lost), re-admitted in block 3
        ((), 1, 6),  # B's next 2 tokens need a block, none left: B waits a step
        (((2, 2),), 0, 0),  # A finished at t=5 and freed 0, 2, 1
        (((2, 4),), 0, 0),
    ]
    assert rec.log.count(("preempt", 1)) == 1 and ("preempt", 0) not in rec.log
    assert [e for e in rec.log if e[0] == "finish"] == [("finish", 0, 5.0), ("finish", 1, 7.0)]
    assert pool.blocks.num_free == 4


def test_swap_space_runs_out_then_recompute():
    """Swap space of 2 blocks: the first victim (2 blocks) is swapped, the second (2 blocks)
    finds it full and is recomputed: back in the queue with prompt + generated tokens."""
    rec = LogRecorder()
    pool = SequencePool(BlockPool(8, 2), rec, SwapSpace(2, 100, 50.0))
    for r in range(3):
        pool.enqueue(r, 3, 10)
    for _ in range(3):
        seq = pool.admit_head()
        pool.grow(seq, 3)
        seq.computed = 3
        pool._finish_prefill(seq, 1.0)
    assert pool.blocks.num_free == 2 and pool.decode.n == 3
    assert pool.preempt_one() == 2 * 100 / 50.0  # latest admitted: request 2, 2 blocks at 100 B / 50 B/s
    assert pool.swap_free == 0 and [s[0] for s in pool.swapped] == [2] and pool.swapped[0][1:4] == (3, 9, 2)
    assert pool.preempt_one() == 0.0  # request 1: no swap space left
    assert pool.waiting[0].req == 1 and pool.waiting[0].total == 4 and pool.waiting[0].remaining == 9
    assert pool.blocks.num_free == 6 and rec.log[-2:] == [("preempt", 2), ("preempt", 1)]
    assert pool.preempt_one(above_order=0) is None  # only request 0 (order 0) is left
    assert pool.num_outstanding == 3 and pool.num_running == 1
    # swap-in: FIFO while blocks and seats allow, charging the transfer back
    assert pool.swap_in(max_running=1) == 0.0  # no seat
    assert pool.swap_in(max_running=4) == 2 * 100 / 50.0 and pool.swap_free == 2 and pool.decode.n == 2


def test_reserve_admission_counts_prompt_outputs_siblings_and_policy_peaks():
    pool = SequencePool(BlockPool(10, 4), LogRecorder(), None, admission="reserve")
    pool.enqueue(0, 5, 6)  # 11 tokens: 3 blocks
    pool.enqueue(1, 4, 1, siblings=[(2, 5), (3, 1)])  # 5 tokens: 2; samples: 2 + 1 and 1 + 1 blocks
    pool.enqueue(4, 2, 2)
    assert pool.admissible(pool.waiting[0])
    pool.admit_head()
    assert pool._committed == 3 and pool.admissible(pool.waiting[0])  # 3 + 2 + 3 + 2 = 10 <= 10
    pool.admit_head()
    assert pool._committed == 10 and pool._promised == {0: 3, 1: 2, 2: 3, 3: 2}
    assert not pool.admissible(pool.waiting[0])  # 1 more block would exceed the pool
    pool._finished(0, 1.0)
    assert pool._committed == 7 and pool.admissible(pool.waiting[0])
    h2o = SequencePool(BlockPool(10, 4), LogRecorder(), None, H2OPolicy(budget=6), admission="reserve")
    h2o.enqueue(0, 12, 30)  # holds the 12-token prompt (3 blocks), then at most 6 tokens
    assert h2o._final_blocks(h2o.waiting[0]) == {0: 3}
    with pytest.raises(ValueError, match=r"^admission='fifo'; allowed: preempt, reserve$"):
        SequencePool(BlockPool(4, 4), LogRecorder(), None, admission="fifo")


def test_preempt_admission_never_checks_whole_sequences():
    pool = SequencePool(BlockPool(2, 4), LogRecorder(), None)
    pool.enqueue(0, 4, 100)
    assert pool.admissible(pool.waiting[0])
    seq = PrefillSeq(5, 4, 1)
    assert seq.computed == 0 and seq.blocks == [] and seq.order == -1 and np.isnan(seq.last_token_s)


def test_vllm_scheduler_prompt_limit_is_the_token_budget():
    pool = SequencePool(BlockPool(4, 4), LogRecorder(), None)
    assert VllmScheduler(pool, SchedulerLimits(max_num_seqs=2, max_num_batched_tokens=96,
                                               chunk_size=8)).max_prefill_tokens() == 96


# ---- routers, arrivals, recorder -----------------------------------------------------------------
class _Replica:
    def __init__(self, load):
        self.load = load


def test_routers():
    reps = [_Replica(3), _Replica(1), _Replica(1)]
    rr = RoundRobinRouter(reps)
    assert [reps.index(rr.pick()) for _ in range(5)] == [0, 1, 2, 0, 1]
    ll = LeastLoadedRouter(reps)
    assert ll.pick() is reps[1]  # ties go to the lowest index
    reps[1].load = 2
    assert ll.pick() is reps[2]


def test_arrivals_dispatch_at_their_times_in_order():
    env, seen = simpy.Environment(), []
    env.process(open_loop_arrivals(env, np.array([0.0, 0.0, 1.5, 1.5, 4.0]), lambda i: seen.append((i, env.now))))
    env.run()
    assert seen == [(0, 0.0), (1, 0.0), (2, 1.5), (3, 1.5), (4, 4.0)]


def _row(i):
    return (0, float(i), 1.0, 4, 1, 5, 1, 1, 2, 8, 0, 1e9, 1e6, 0.5, 0.5, 0.0, 0.0, 0, 5, 0.0, 0)


def test_recorder_keeps_steps_head_and_feeds_sinks():
    blocks = []
    rec = RunRecorder(np.zeros(2), np.array([4, 4]), np.array([1, 1]), keep_steps=5, head_steps=3,
                      sinks=(blocks.append,))
    for i in range(5):
        rec.step(_row(i))
    assert rec.steps_kept and rec.step_arrays()["start_s"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert rec.head_arrays()["start_s"].tolist() == [0.0, 1.0, 2.0]
    rec.step(_row(5))
    rec.close()
    assert not rec.steps_kept and rec.num_steps == 6
    with pytest.raises(StepsNotKept, match=r"^the run has 6 steps, more than the 5 kept whole$"):
        rec.step_arrays()
    assert [b["start_s"].tolist() for b in blocks] == [[0.0, 1.0, 2.0, 3.0, 4.0], [5.0]]
    assert rec.head_arrays()["start_s"].tolist() == [0.0, 1.0, 2.0]


def test_recorder_per_request_events():
    done = []
    rec = RunRecorder(np.array([0.0, 1.0, 2.0]), np.array([4, 5, 6]), np.array([1, 2, 3]))
    rec.on_finish = lambda r, t: done.append((r, t))
    rec.first_token(1, 2.5)
    rec.finish(1, 3.0)
    rec.fail(2, 2.0, "too long")
    rec.preempt(0)
    rec.preempt(0)
    assert rec.first_token_s[1] == 2.5 and rec.finish_s.tolist()[1:] == [3.0, 2.0]
    assert rec.status.tolist() == [0, 1, 2] and rec.num_done == 2 and rec.fail_reason == {2: "too long"}
    assert rec.num_preemptions.tolist() == [2, 0, 0] and rec.preemptions_total == 2
    assert done == [(1, 3.0), (2, 2.0)]


# ---- added after the first engine mutation run -----------------------------------------------------
def test_recorder_empty_and_repeated_reads():
    rec = RunRecorder(np.zeros(1), np.array([4]), np.array([1]))
    assert rec.step_arrays()["start_s"].shape == (0,) and rec.head_arrays()["start_s"].shape == (0,)
    for part in ((0, 1, 2), (3, 4), (5,)):
        for i in part:
            rec.step(_row(i))
        assert rec.step_arrays()["start_s"].tolist() == list(range(part[-1] + 1))
        assert rec.head_arrays()["start_s"].tolist() == list(range(part[-1] + 1))
    assert rec.steps_kept and rec.num_steps == 6


def test_arrivals_read_in_chunks_keep_their_indices(monkeypatch):
    import simulator.engine.replica as replica_mod

    monkeypatch.setattr(replica_mod, "ARRIVAL_CHUNK", 2)
    env, seen = simpy.Environment(), []
    env.process(open_loop_arrivals(env, np.array([0.0, 1.0, 1.0, 2.0, 3.0]), lambda i: seen.append((i, env.now))))
    env.run()
    assert seen == [(0, 0.0), (1, 1.0), (2, 1.0), (3, 2.0), (4, 3.0)]


def test_memory_plan_figures_by_hand():
    from simulator.engine.memory_plan import MemoryPlan, activation_reserve_bytes, gpu_weight_bytes
    from simulator.models import load_model

    plan = MemoryPlan(1000, 100, 50, 2, 4, 3, metadata_bytes_per_token=1)
    assert (plan.kv_bytes_per_block, plan.kv_cache_bytes, plan.kv_capacity_tokens) == (12, 36, 12)
    assert plan.as_dict() == {"usable_bytes": 1000, "weight_bytes": 100, "activation_reserve_bytes": 50,
                              "kv_bytes_per_token": 2, "metadata_bytes_per_token": 1, "kv_cache_bytes": 36,
                              "num_gpu_blocks": 3, "kv_capacity_tokens": 12}
    more = MemoryPlan(1000, 100, 50, 2, 4, 3, host_weight_bytes=7, extra_kv_bytes_per_token=3)
    assert more.as_dict()["extra_kv_bytes_per_token"] == 3 and more.as_dict()["host_weight_bytes"] == 7
    assert more.kv_bytes_per_block == 20
    # qwen3-0.6b (config.json): hidden 1024, 16 query + 8 KV heads of 128, MLP 3072, vocab 151936; bf16, tp=3.
    # Per token: hidden states 4 x 1024, QKV (2048 + 2 x 1024) // 3, MLP 3 x (3072 // 3), 2 bytes each;
    # logits in fp32 for min(128 seqs, 512 tokens) rows of 151936 // 3 columns... as one integer product.
    m = load_model("qwen3-0.6b")
    per_token = (4 * 1024 + 4096 // 3 + 3 * 1024) * 2
    logits = 128 * 151936 // 3 * 4
    assert activation_reserve_bytes(m, "bf16", 3, 512, 128) == 512 * per_token + logits == 34668200
    assert gpu_weight_bytes(m, "bf16", tp=2) == m.weight_bytes("bf16") // 2 == 596049920


def test_prefix_blocks_are_cached_as_soon_as_computed():
    """vLLM: A (10 tokens, keys 1, 2, 3) prefills and keeps decoding; B (keys 1, 2, 4) arrives a step
    later and hits A's first two blocks while A still holds them: B prefills 2 tokens, not 10."""
    from simulator.engine.prefix_cache import PrefixCachingBlockPool

    keys = {0: (1, 2, 3), 1: (1, 2, 4)}
    rec = LogRecorder()
    pool = SequencePool(PrefixCachingBlockPool(16, 4, lambda r: keys[r]), rec, None)
    sched = VllmScheduler(pool, SchedulerLimits(max_num_seqs=4, max_num_batched_tokens=16, chunk_size=16))
    pool.enqueue(0, 10, 5)
    sched.commit(sched.plan(), 1.0)
    pool.enqueue(1, 10, 1)
    plan = sched.plan()
    assert plan.shape.prefill_chunks == ((2, 8),)
    assert plan.prefill[0][0].blocks[:2] == pool.decode.members[0].blocks[:2] == [0, 1]


def test_admit_cached_counts_free_cached_blocks_it_takes_out_of_the_queue():
    """Pool 4 x 4. A's blocks 0, 1 are cached and free; X holds 2 blocks. B (9 tokens) hits
    blocks 0, 1: holding them takes both out of the free queue, so B also needs a 3rd block,
    3 > 2 free: B waits. Once X leaves, B is admitted on blocks 0, 1 plus one new block."""
    from simulator.engine.prefix_cache import PrefixCachingBlockPool

    keys = {0: (1, 2, 3), 1: (20, 21), 2: (1, 2, 3)}
    pool = SequencePool(PrefixCachingBlockPool(4, 4, lambda r: keys[r]), LogRecorder(), None)
    pool.enqueue(0, 9, 1)
    a, _, _ = pool.admit_cached(16, whole=True)
    pool.prefilling.remove(a)
    pool._release(0, a.blocks, 9)
    pool.enqueue(1, 8, 10)
    x, chunk, _ = pool.admit_cached(16, whole=True)
    assert x.blocks == [3, 2] and chunk == 8 and pool.blocks.num_free == 2
    pool.enqueue(2, 9, 1)
    assert pool.admit_cached(16, whole=True) is None
    pool.prefilling.remove(x)
    pool._release(1, x.blocks, 8)
    b, chunk, _ = pool.admit_cached(16, whole=True)
    assert chunk == 1 and b.blocks[:2] == [0, 1] and len(b.blocks) == 3


def test_vllm_cached_admission_of_a_remainder_equal_to_the_budget():
    from simulator.engine.prefix_cache import PrefixCachingBlockPool

    pool = SequencePool(PrefixCachingBlockPool(8, 4, lambda r: (9, 9, 9)), LogRecorder(), None)
    sched = VllmScheduler(pool, SchedulerLimits(max_num_seqs=4, max_num_batched_tokens=10, chunk_size=10))
    pool.enqueue(0, 10, 1)
    assert sched.plan().shape.prefill_chunks == ((10, 0),)


def test_reserve_admission_with_prefix_caching():
    from simulator.engine.prefix_cache import PrefixCachingBlockPool

    pool = SequencePool(PrefixCachingBlockPool(4, 4, lambda r: ()), LogRecorder(), None, admission="reserve")
    pool.enqueue(0, 4, 8)  # 3 blocks promised
    pool.enqueue(1, 4, 1)  # 2 more: 5 > 4
    assert pool.admit_cached(16, whole=True) is not None and pool._committed == 3
    assert pool.admit_cached(16, whole=True) is None


def test_recomputed_sequence_emits_one_token_after_its_gap():
    rec = LogRecorder()
    pool = SequencePool(BlockPool(8, 2), rec, None)
    pool.enqueue(0, 3, 5)
    seq = pool.admit_head()
    pool.grow(seq, 3)
    seq.computed = 3
    pool._finish_prefill(seq, 1.0)
    assert pool.preempt_one() == 0.0  # recompute: 3 + 1 tokens to re-prefill, 4 to go
    seq = pool.admit_head()
    assert (seq.total, seq.remaining) == (4, 4)
    pool.grow(seq, 4)
    seq.computed = 4
    pool._finish_prefill(seq, 3.5)
    assert rec.log == [("first", 0, 1.0), ("preempt", 0), ("itl", 2.5, 1)]
    m = pool.decode.members[0]
    assert (pool.decode.ctx(m), pool.decode.remaining(m)) == (4, 3)


def test_scissorhands_prompt_over_budget_decodes_from_the_kept_tokens():
    """B 8, m 4: a 10-token prompt keeps B - m = 4 after the prefill; decodes then read 5 .. 8,
    drop to 4, read 5 again."""
    pool = SequencePool(BlockPool(16, 4), LogRecorder(), None, ScissorhandsPolicy(budget=8, drop=4, protect_recent=0))
    sched = VllmScheduler(pool, SchedulerLimits(max_num_seqs=4, max_num_batched_tokens=16, chunk_size=16))
    pool.enqueue(0, 10, 7)
    reads, t = [], 0.0
    while (plan := sched.plan()) is not None:
        reads.append(plan.shape.decode_context_sum)
        t += 1.0
        sched.commit(plan, t)
    assert reads == [0, 5, 6, 7, 8, 5, 6]


def test_best_of_n_blocks_orders_and_shared_prefix_after_the_leader_leaves():
    """Block 4. Prompt 5 with one more sample: the leader gets blocks 0, 1, the sample shares 0 and
    gets copy block 2. Both keep the group's admission order. The leader (output 2) finishes first:
    the sample then reads its whole context (no shared prefix left to discount)."""
    rec = LogRecorder()
    pool = SequencePool(BlockPool(16, 4), rec, None)
    sched = VllmScheduler(pool, SchedulerLimits(max_num_seqs=4, max_num_batched_tokens=16, chunk_size=16))
    pool.enqueue(7, 2, 1)  # an earlier request: the group is admitted second (order 1)
    pool.enqueue(0, 5, 2, siblings=[(1, 4)])
    plan = sched.plan()
    leader = plan.prefill[1][0]
    assert leader.blocks == [1, 2] and leader.sibling_blocks == [3]
    sched.commit(plan, 1.0)
    d = pool.decode
    assert d.members[0].order == d.members[1].order == 1 and d.members[1].blocks == [1, 3]
    reads = []
    t = 1.0
    while (plan := sched.plan()) is not None:
        reads.append((plan.shape.decode_context_sum, plan.shape.decode_kv_read_sum))
        t += 1.0
        sched.commit(plan, t)
    assert reads == [(12, 8), (7, 7), (8, 8)]
    # a prompt that fills its blocks exactly needs no copy block
    pool = SequencePool(BlockPool(16, 4), LogRecorder(), None)
    sched = VllmScheduler(pool, SchedulerLimits(max_num_seqs=4, max_num_batched_tokens=16, chunk_size=16))
    pool.enqueue(0, 8, 2, siblings=[(1, 2)])
    plan = sched.plan()
    assert plan.prefill[0][0].blocks == [0, 1] and plan.prefill[0][0].sibling_blocks == [] and pool.blocks.num_free == 14


def test_swap_in_exact_fit_and_two_swaps_in_one_reserve():
    """Block 2, 3 blocks, swap 1 s a block. Three members of 2 tokens (1 block each) all need a
    block: the two latest swap out (1 s + 1 s, charged together) and the first gets block 2.
    Swap-in (FIFO) then brings request 2 back into exactly the 1 block left."""
    rec = LogRecorder()
    pool = SequencePool(BlockPool(3, 2), rec, SwapSpace(10, 1, 1.0))
    for r in range(3):
        pool.enqueue(r, 2, 10)
        seq = pool.admit_head()
        pool.grow(seq, 2)
        seq.computed = 2
        pool._finish_prefill(seq, 1.0)
    assert pool.blocks.num_free == 0
    assert pool.reserve_decode_blocks() == 2.0
    assert [s[0] for s in pool.swapped] == [2, 1] and pool.decode.members[0].blocks == [0, 2]
    assert pool.swap_in(4) == 1.0 and [s[0] for s in pool.swapped] == [1] and pool.blocks.num_free == 0
    assert pool.decode.members[2].blocks == [1]


def test_policy_sums_over_members_and_leaving_members():
    """H2O k = 10, block 4: members kept 3 and 5 grow (held 4 + 6 next step); a member already at
    k holds and reads a constant 10. Removing members takes exactly their counts out."""
    d = DecodeSet(4, H2OPolicy(budget=10))
    d.add(0, 3, 20, [0], 0, 0.0, retained=3, budget=10)
    d.add(1, 5, 20, [1, 2], 1, 0.0, retained=5, budget=10)
    d.add(2, 30, 20, [3, 4, 5], 2, 0.0, retained=10, budget=10)
    assert (d.context_sum(), d.held_sum()) == (4 + 6 + 10, 4 + 6 + 10)
    assert [d.retained(m) for m in d.members.values()] == [3, 5, 10]
    d.advance(1.0, Gaps())
    d.advance(2.0, Gaps())
    assert [d.retained(m) for m in d.members.values()] == [5, 7, 10]
    assert (d.context_sum(), d.held_sum()) == (6 + 8 + 10, 6 + 8 + 10)
    d.remove(d.members[2])
    assert (d.context_sum(), d.held_sum()) == (14, 14) and d.held_const_sum == 0
    d.remove(d.members[0])
    assert (d.context_sum(), d.held_sum()) == (8, 8)


def test_compressing_counts_only_live_compressions():
    """H2O growth ending at k is not a compression; a removed member's old phase end is not either;
    two Scissorhands members squeezing in the same step add up (8 + 8 held, 4 + 4 kept)."""
    d = DecodeSet(4, H2OPolicy(budget=6))
    d.add(0, 4, 20, [0, 1], 0, 0.0, retained=4, budget=6)  # holds 5, 6 then stays at 6
    d.advance(1.0, Gaps())
    assert d.compressing() == (0, 0)
    sc = ScissorhandsPolicy(budget=8, drop=4, protect_recent=0)
    d = DecodeSet(4, sc)
    d.add(0, 3, 20, [0, 1], 0, 0.0, retained=3, budget=(8, 4))  # would squeeze at its 5th step
    d.remove(d.members[0])
    d.add(0, 6, 20, [0, 1], 1, 0.0, retained=6, budget=(8, 4))  # squeezes at its 2nd step
    d.add(1, 6, 20, [2, 3], 2, 0.0, retained=6, budget=(8, 4))
    seen = []
    for step in range(5):
        seen.append(d.compressing())
        d.advance(float(step + 1), Gaps())
    assert seen == [(0, 0), (16, 8), (0, 0), (0, 0), (0, 0)]


def test_block_topk_pool_searches_the_held_keys():
    from simulator.kv.policies import BlockTopKPolicy

    pool = SequencePool(BlockPool(16, 4), LogRecorder(), None, BlockTopKPolicy(budget=6, select_block=2))
    sched = VllmScheduler(pool, SchedulerLimits(max_num_seqs=4, max_num_batched_tokens=16, chunk_size=16))
    pool.enqueue(0, 3, 4)
    keys, t = [], 0.0
    while (plan := sched.plan()) is not None:
        keys.append(None if plan.shape.kv_work is None else plan.shape.kv_work.search_keys)
        t += 1.0
        sched.commit(plan, t)
    assert keys == [None, 2.0, 2.5, 3.0]  # held 4, 5, 6 tokens: one key per 2
