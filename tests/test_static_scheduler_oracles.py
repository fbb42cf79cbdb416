"""Static batching (HF `generate`) by hand: exact batches, block ids, step shapes, token gaps and
KV-policy bookkeeping on tiny pools (issue 19: oracles for the schedulers' mutation survivors).

The scheduler is driven directly: plan, then commit at t = 1, 2, 3, ... (one second a step), with
a recorder that logs every call. Every number below is worked out from the rules in
static_scheduler.py's docstring (a batch of waiting requests while their padded reservation,
(longest prompt + longest output) per row, fits; one padded prefill; decode steps until the
longest output is done) and the policies' papers (H2O: retained = min(t, k); Scissorhands: grow
to B, drop m; top-k: read min(B, ctx)), not from the code's formulas.
"""
from __future__ import annotations

import pytest
from engine_harness import LogRecorder

from simulator.cost import KvWork
from simulator.engine.block_pool import BlockPool
from simulator.engine.schedulers import SchedulerLimits
from simulator.engine.static_scheduler import StaticScheduler
from simulator.kv.policies import BlockTopKPolicy, H2OPolicy, ScissorhandsPolicy
from simulator.run import simulate
from simulator.scenario import Scenario


def make(num_blocks, block_size, max_num_seqs=8, **kw):
    rec = LogRecorder()
    limits = SchedulerLimits(max_num_seqs=max_num_seqs, max_num_batched_tokens=64, chunk_size=64)
    return StaticScheduler(BlockPool(num_blocks, block_size), rec, limits, **kw), rec


def drive(sched):
    """Run to the end; returns per step (prefill chunks, num decode, context sum, logits, kv_work,
    batch block ids at plan time)."""
    steps, t = [], 0
    while (plan := sched.plan()) is not None:
        s = plan.shape
        steps.append((s.prefill_chunks, s.num_decode, s.decode_context_sum, s.num_logits, s.kv_work,
                      list(sched.batch_blocks)))
        assert plan.prefill == () and plan.num_decode == s.num_decode and plan.extra_s == 0.0
        t += 1
        sched.commit(plan, float(t))
        assert t < 100
    return steps


def test_a_batch_fills_the_pool_exactly_and_no_further():
    """4 blocks of 4 tokens; three requests of 4 + 4 tokens need 2 blocks each: the first batch is
    requests 0 and 1 (4 blocks, exactly the pool), request 2 runs alone afterwards in blocks 0, 1."""
    sched, rec = make(4, 4)
    for r in range(3):
        sched.enqueue(r, 4, 4)
    steps = drive(sched)
    assert [s[:5] for s in steps] == [
        (((4, 0), (4, 0)), 0, 0, 2, None),
        ((), 2, 10, 2, None),  # 2 x (4 prompt + 1 new)
        ((), 2, 12, 2, None),
        ((), 2, 14, 2, None),
        (((4, 0),), 0, 0, 1, None),
        ((), 1, 5, 1, None),
        ((), 1, 6, 1, None),
        ((), 1, 7, 1, None),
    ]
    assert [s[5] for s in steps] == [[0, 1, 2, 3]] * 4 + [[0, 1]] * 4
    assert rec.log == [
        ("first", 0, 1.0), ("first", 1, 1.0),
        ("itl", 1.0, 2), ("itl", 1.0, 2), ("itl", 1.0, 2), ("finish", 0, 4.0), ("finish", 1, 4.0),
        ("first", 2, 5.0), ("itl", 1.0, 1), ("itl", 1.0, 1), ("itl", 1.0, 1), ("finish", 2, 8.0),
    ]
    assert list(sched.blocks._free) == [2, 3, 0, 1] and sched.num_outstanding == 0


def test_max_num_seqs_caps_the_batch():
    sched, rec = make(64, 4, max_num_seqs=2)
    for r, p in enumerate((2, 3, 4)):
        sched.enqueue(r, p, 1)
    assert sched.num_outstanding == 3 and sched.num_running == 0
    steps = drive(sched)
    # output 1: the prefill's token is the only one, so a batch is one step
    assert [s[:4] for s in steps] == [(((3, 0), (3, 0)), 0, 0, 2), (((4, 0),), 0, 0, 1)]
    assert [s[5] for s in steps] == [[0, 1], [2, 3]]  # 2 x ceil(4/4); then ceil(5/4)
    assert rec.log == [("first", 0, 1.0), ("first", 1, 1.0), ("finish", 0, 1.0), ("finish", 1, 1.0),
                       ("first", 2, 2.0), ("finish", 2, 2.0)]


def test_inter_token_gaps_count_only_rows_still_producing():
    """Outputs 3, 1, 2 padded to 3: decode step 1 produces tokens for rows with output > 1 (two),
    step 2 for output > 2 (one); padding rows produce nothing. All finish with the batch."""
    sched, rec = make(64, 4)
    for r, (p, o) in enumerate(((6, 3), (2, 1), (5, 2))):
        sched.enqueue(r, p, o)
    steps = drive(sched)
    assert [s[:4] for s in steps] == [(((6, 0),) * 3, 0, 0, 3), ((), 3, 21, 3), ((), 3, 24, 3)]
    assert steps[0][5] == list(range(9))  # 3 rows x ceil((6 + 3) / 4)
    assert rec.log == [("first", 0, 1.0), ("first", 1, 1.0), ("first", 2, 1.0),
                       ("itl", 1.0, 2), ("itl", 1.0, 1),
                       ("finish", 0, 3.0), ("finish", 1, 3.0), ("finish", 2, 3.0)]


def test_best_of_n_samples_are_separate_rows():
    """One prompt of 5 tokens, three samples with outputs 3, 2, 4: three padded rows (output 4),
    3 x ceil(9/4) = 9 blocks; tokens per decode step: 3, then 2, then 1."""
    sched, rec = make(64, 4)
    sched.enqueue(0, 5, 3, siblings=[(1, 2), (2, 4)])
    assert sched.num_outstanding == 3
    steps = drive(sched)
    assert [s[:4] for s in steps] == [(((5, 0),) * 3, 0, 0, 3), ((), 3, 18, 3), ((), 3, 21, 3), ((), 3, 24, 3)]
    assert steps[0][5] == list(range(9))
    assert [e for e in rec.log if e[0] == "itl"] == [("itl", 1.0, 3), ("itl", 1.0, 2), ("itl", 1.0, 1)]
    assert [e for e in rec.log if e[0] == "finish"] == [("finish", r, 4.0) for r in range(3)]


def test_inter_token_gap_is_time_since_the_previous_step():
    sched, rec = make(64, 4)
    sched.enqueue(0, 4, 3)
    t = 0.0
    for dt in (2.0, 0.5, 3.0):  # prefill 2 s, then decodes of 0.5 s and 3 s
        plan = sched.plan()
        t += dt
        sched.commit(plan, t)
    assert sched.plan() is None
    assert rec.log == [("first", 0, 2.0), ("itl", 0.5, 1), ("itl", 3.0, 1), ("finish", 0, 5.5)]


def test_dense_reservation_is_longest_prompt_plus_longest_output():
    sched, _ = make(100, 4)
    assert sched.batch_blocks_needed(3, 10, 7) == (15, 0)  # 17 tokens -> 5 blocks a row
    assert sched.batch_blocks_needed(1, 4, 4) == (2, 0)
    assert sched.batch_blocks_needed(2, 1, 1) == (2, 0)


def test_prompts_longer_than_the_token_budget_are_served():
    """Static batching pads whole prompts in one prefill: a 600-token prompt runs with
    max_num_batched_tokens=64 (the budget is not a prompt limit here)."""
    s = Scenario(model="qwen3-0.6b", hardware="l4", engine="ideal", scheduler="static", max_num_batched_tokens=64,
                 max_num_seqs=2, num_requests=2, rate=float("inf"), prompt_tokens="600", output_tokens="2", seed=1)
    r = simulate(s)
    assert r.recorder.status.tolist() == [1, 1]
    assert r.recorder.step_arrays()["num_prefill_tokens"].tolist()[0] == 1200


# ---- KV policies ---------------------------------------------------------------------------
def test_h2o_reservation_and_layerwise_prompt_transient():
    """H2O budget 6 tokens, prompt 10, output 20, block 4: a row keeps at most 6 tokens (2 blocks),
    so 2 rows reserve 4 blocks; the prompt (3 blocks a row) is compressed layer by layer, one layer's
    full prompt KV at a time: ceil(2 x 3 / layers) extra blocks during the prefill."""
    for layers, transient in ((1, 6), (4, 2), (6, 1)):
        sched, _ = make(100, 4, kv=H2OPolicy(budget=6), num_layers=layers)
        assert sched.batch_blocks_needed(2, 10, 20) == (4, transient)
    default, _ = make(100, 4, kv=H2OPolicy(budget=6))  # num_layers defaults to 1: the whole prompt
    assert default.batch_blocks_needed(2, 10, 20) == (4, 6)
    # budget >= prompt: nothing to compress after the prefill, the rows grow to the budget (12 = 3 blocks)
    sched, _ = make(100, 4, kv=H2OPolicy(budget=12), num_layers=4)
    assert sched.batch_blocks_needed(2, 10, 20) == (6, 0)
    assert sched.batch_blocks_needed(2, 10, 1) == (6, 0)  # 11 tokens: still 3 blocks
    sched, _ = make(100, 4, kv=H2OPolicy(budget=10), num_layers=4)  # budget == prompt: kept whole
    assert sched.batch_blocks_needed(2, 10, 20) == (6, 0)


def test_h2o_static_run_blocks_and_eviction_work():
    """H2O budget 6 (gather), 2 rows of prompt 10, output 4, block 4, 1 layer (default): blocks 0-3
    reserved, 4-9 held during the prefill only. Prefill: 2 x 10*11/2 = 110 score pairs, 20 keys,
    both prompts scanned (20) and 6 + 6 tokens gathered. Each decode reads and holds 6 per row,
    one victim per step: scores over 12 tokens, 12 scanned, 12 moved."""
    sched, rec = make(16, 4, kv=H2OPolicy(budget=6, compaction="gather"))
    sched.enqueue(0, 10, 4)
    sched.enqueue(1, 10, 4)
    plan = sched.plan()
    assert sched.batch_blocks == [0, 1, 2, 3] and sched.transient_blocks == [4, 5, 6, 7, 8, 9]
    assert plan.shape.prefill_chunks == ((10, 0), (10, 0)) and plan.shape.num_logits == 2
    assert plan.shape.kv_work == KvWork(110, 20, 20, 12, 0)
    sched.commit(plan, 1.0)
    assert list(sched.blocks._free) == [10, 11, 12, 13, 14, 15, 4, 5, 6, 7, 8, 9]
    steps = drive(sched)
    assert [s[:5] for s in steps] == [((), 2, 12, 2, KvWork(12, 12, 12, 12, 0))] * 3
    assert [e for e in rec.log if e[0] == "finish"] == [("finish", 0, 3.0), ("finish", 1, 3.0)]
    assert sched.blocks.num_free == 16


def test_h2o_static_growth_then_steady_state():
    """Budget 12 above the prompt (10): rows grow to 11, 12 (no eviction work beyond the score
    update), then hold 12 with one victim a step (steady state: scanned and, gather, moved)."""
    sched, _ = make(16, 4, kv=H2OPolicy(budget=12, compaction="gather"), num_layers=4)
    sched.enqueue(0, 10, 5)
    sched.enqueue(1, 10, 5)
    steps = drive(sched)
    assert steps[0][:5] == (((10, 0), (10, 0)), 0, 0, 2, KvWork(110, 20, 0, 0, 0))
    assert steps[0][5] == [0, 1, 2, 3, 4, 5]  # 2 rows x 12 tokens; no transient
    assert [s[:5] for s in steps[1:]] == [
        ((), 2, 22, 2, KvWork(22, 22, 0, 0, 0)),
        ((), 2, 24, 2, KvWork(24, 24, 0, 0, 0)),
        ((), 2, 24, 2, KvWork(24, 24, 24, 24, 0)),
        ((), 2, 24, 2, KvWork(24, 24, 24, 24, 0)),
    ]


@pytest.mark.parametrize("compaction,moved", [("gather", 8), ("inplace", 0)])
def test_scissorhands_static_sawtooth_and_compression_work(compaction, moved):
    """B = 8, m = 4, no protected tokens; 2 rows of prompt 3, output 10. Reads per row: 4, 5, 6, 7, 8
    (drop to 4 after the 8), 5, 6, 7, 8. A compressing step scans the 8 held tokens of each row and
    gathers the 4 kept (gather only)."""
    sched, _ = make(16, 4, kv=ScissorhandsPolicy(budget=8, drop=4, protect_recent=0, compaction=compaction))
    sched.enqueue(0, 3, 10)
    sched.enqueue(1, 3, 10)
    steps = drive(sched)
    assert steps[0][5] == [0, 1, 2, 3]  # 2 rows x ceil(8 / 4)
    assert steps[0][4] == KvWork(2 * 6, 6, 0, 0, 0)  # 3*4/2 pairs and 3 keys a row; prompt kept whole
    reads = [s[2] // 2 for s in steps[1:]]
    assert reads == [4, 5, 6, 7, 8, 5, 6, 7, 8]
    work = [s[4] for s in steps[1:]]
    for r, w in zip(reads, work):
        squeeze = r == 8
        assert w == KvWork(2 * r, 2 * r, 16 if squeeze else 0, moved if squeeze else 0, 0)


def test_block_topk_static_search_over_held_keys():
    """Block top-k, B = 6, select_block 2; prompt 3, output 5, 2 rows: each row holds 4, 5, 6, 7
    tokens over the decode steps and reads min(6, held); the search scores one key per 2 held."""
    sched, _ = make(16, 4, kv=BlockTopKPolicy(budget=6, select_block=2))
    sched.enqueue(0, 3, 5)
    sched.enqueue(1, 3, 5)
    steps = drive(sched)
    assert steps[0][4] is None and steps[0][5] == [0, 1, 2, 3]  # 2 rows x ceil(8 / 4): nothing evicted
    assert [s[2] for s in steps[1:]] == [8, 10, 12, 12]
    assert [s[4] for s in steps[1:]] == [KvWork(search_keys=2 * h / 2) for h in (4, 5, 6, 7)]
