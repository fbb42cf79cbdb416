"""KV policies: closed forms of retained/read counts, exact block ids, capacity, engine totals."""

import numpy as np
import pytest

from simulator.engine.block_pool import BlockPool
from simulator.engine.kv_phases import PhaseCursor
from simulator.engine.recorder import RunRecorder
from simulator.engine.schedulers import SarathiScheduler, SchedulerLimits, VllmScheduler
from simulator.engine.sequence_pool import SequencePool, SwapSpace
from simulator.errors import ServesimError
from simulator.kv.policies import (
    KV_POLICIES,
    BlockTopKPolicy,
    DensePolicy,
    H2OPolicy,
    ScissorhandsPolicy,
    TopKPolicy,
)
from simulator.run import simulate
from simulator.scenario import KV_POLICY_NAMES, Scenario


def walk(policy, prompt, output):
    """(held, read, compressing) per decode step of one sequence (tokens prompt+1 .. prompt+output-1)."""
    budget = policy.seq_budget(prompt, output)
    c = PhaseCursor(policy, policy.after_prefill(prompt, budget), budget)
    out = []
    for _ in range(output - 1):
        out.append((c.held, c.read, c.compressing))
        c.advance()
    return out


def test_names_match_table():
    assert tuple(KV_POLICIES) == KV_POLICY_NAMES


@pytest.mark.parametrize("prompt,k", [(10, 64), (100, 64), (64, 64), (5, 1)])
def test_h2o_retained_is_min_t_k(prompt, k):
    steps = walk(H2OPolicy(budget=k), prompt, 300)
    for i, (held, read, _) in enumerate(steps, start=1):
        t = prompt + i  # sequence length at this step
        assert held == read == min(t, k)


def test_h2o_fraction_budget_is_of_prompt_plus_output():
    p = H2OPolicy(budget=0.2)
    assert p.seq_budget(2048, 2048) == 820  # ceil(0.2 * 4096)
    assert p.after_prefill(2048, 820) == 820
    assert p.decode_peak_tokens(2048, 2048) == 820 and p.peak_tokens(2048, 2048) == 2048


def test_scissorhands_sawtooth_and_compression_every_m():
    b, m = 100, 40
    pol = ScissorhandsPolicy(budget=b, drop=m)
    assert pol.seq_budget(10, 500) == (b, m)
    steps = walk(pol, 10, 500)
    helds = [h for h, _, _ in steps]
    comp = [i for i, (_, _, c) in enumerate(steps, start=1) if c]
    lengths = [10 + i for i in comp]
    assert lengths == list(range(b, 10 + 499, m))  # at t = B + j*m
    assert all(h == r for h, r, _ in steps)
    after = helds[comp[0]:]  # after the first compression
    assert min(after) == b - m + 1 and max(after) == b
    for i, (h, _, _) in enumerate(steps, start=1):
        t = 10 + i
        assert h == (t if t <= b else b - m + (t - b - 1) % m + 1)
    # paper defaults: m = 0.4 B, never the r newest
    assert ScissorhandsPolicy(budget=1000).seq_budget(1, 1) == (1000, 400)
    assert ScissorhandsPolicy(budget=12, drop=0.9, protect_recent=10).seq_budget(1, 1) == (12, 2)


def test_topk_reads_min_b_ctx_and_keeps_everything():
    steps = walk(TopKPolicy(budget=50), 30, 100)
    for i, (held, read, _) in enumerate(steps, start=1):
        assert held == 30 + i and read == min(50, 30 + i)
    assert BlockTopKPolicy(budget=50, select_block=16).seq_budget(1, 1) == 64


def test_dense_policy_phase_matches_dense():
    for i, (held, read, c) in enumerate(walk(DensePolicy(), 7, 50), start=1):
        assert held == read == 7 + i and not c


def _sum_decode_reads(policy_name, budget, prompt, output, scheduler, **kw):
    s = Scenario(model="qwen3-0.6b", hardware="h100-sxm", scheduler=scheduler, num_requests=1, rate=float("inf"),
                 prompt_tokens=str(prompt), output_tokens=str(output), kv_policy=policy_name, kv_budget=budget,
                 max_model_len=prompt + output, **kw)
    st = simulate(s).recorder.step_arrays()
    return int(st["decode_context_sum"].sum())


@pytest.mark.parametrize("scheduler", ["static", "vllm", "sarathi"])
def test_engine_total_reads_match_closed_forms(scheduler):
    lin, L, b = 300, 400, 500
    # Kinetics: top-k total reads over a generation = sum_i min(B, L_in + i) (i = 0 is the prefill)
    assert _sum_decode_reads("topk", b, lin, L, scheduler) == sum(min(b, lin + i) for i in range(1, L))
    assert _sum_decode_reads("h2o", 256, lin, L, scheduler) == sum(min(256, lin + i) for i in range(1, L))
    assert _sum_decode_reads("dense", None, lin, L, scheduler) == sum(lin + i for i in range(1, L))
    bb, m = 350, 140  # scissorhands from a prompt below B
    saw = sum(t if t <= bb else bb - m + (t - bb - 1) % m + 1 for t in range(lin + 1, lin + L))
    assert _sum_decode_reads("scissorhands", bb, lin, L, scheduler) == saw


def _pool(num_blocks, block_size, policy, swap=None):
    n = 4
    rec = RunRecorder(np.zeros(n), np.ones(n, np.int64), np.ones(n, np.int64))
    return SequencePool(BlockPool(num_blocks, block_size), rec, swap, policy)


def _drive(sched, limit=10_000):
    shapes, t = [], 0.0
    while (plan := sched.plan()) is not None and limit:
        t += 1.0
        shapes.append(plan.shape)
        sched.commit(plan, t)
        limit -= 1
    return shapes


def test_h2o_prompt_compression_frees_exact_blocks():
    pool = _pool(8, 4, H2OPolicy(budget=6))
    sched = VllmScheduler(pool, SchedulerLimits(max_num_seqs=4, max_num_batched_tokens=64, chunk_size=64))
    pool.enqueue(0, 10, 20)  # prompt 10 tokens -> blocks 0, 1, 2; kept 6 -> block 2 freed
    plan = sched.plan()
    assert pool.prefilling[0].blocks == [0, 1, 2]
    sched.commit(plan, 1.0)
    (m,) = pool.decode.members.values()
    assert m.blocks == [0, 1] and list(pool.blocks._free) == [3, 4, 5, 6, 7, 2]
    shapes = _drive(sched)
    assert [s.decode_context_sum for s in shapes] == [6] * 19  # stays at the budget
    assert list(pool.blocks._free) == [3, 4, 5, 6, 7, 2, 0, 1]  # blocks conserved at the end


@pytest.mark.parametrize("compaction,freed", [("gather", [2, 3]), ("inplace", [])])
def test_scissorhands_compression_frees_tail_blocks(compaction, freed):
    pool = _pool(6, 2, ScissorhandsPolicy(budget=8, drop=4, protect_recent=0, compaction=compaction))
    sched = VllmScheduler(pool, SchedulerLimits(max_num_seqs=4, max_num_batched_tokens=64, chunk_size=64))
    pool.enqueue(0, 3, 20)
    sched.commit(sched.plan(), 1.0)  # prefill: 3 tokens in blocks 0, 1
    (m,) = pool.decode.members.values()
    seen = []
    for _ in range(5):  # decode holds 4, 5, 6, 7, 8 -> compress to 4 after the 8
        plan = sched.plan()
        seen.append(plan.shape.decode_context_sum)
        sched.commit(plan, 2.0)
    assert seen == [4, 5, 6, 7, 8]
    assert m.blocks == ([0, 1] if compaction == "gather" else [0, 1, 2, 3])
    assert list(pool.blocks._free) == [4, 5] + freed
    work = sched.plan().shape.kv_work
    assert work.scan_tokens == 0 and work.score_pairs == 5  # next step reads 4 + 1


@pytest.mark.parametrize("mode", ["recompute", "swap"])
@pytest.mark.parametrize("policy", [H2OPolicy(budget=24), ScissorhandsPolicy(budget=30, compaction="gather"),
                                    TopKPolicy(budget=10)])
def test_preemption_conserves_blocks_and_finishes(mode, policy):
    swap = SwapSpace(1000, 1, 1e9) if mode == "swap" else None
    n = 12
    rec = RunRecorder(np.zeros(n), np.full(n, 20, np.int64), np.full(n, 40, np.int64))
    pool = SequencePool(BlockPool(24, 4), rec, swap, policy)
    sched = SarathiScheduler(pool, SchedulerLimits(max_num_seqs=8, max_num_batched_tokens=64, chunk_size=16))
    for i in range(n):
        pool.enqueue(i, 20, 40)
    _drive(sched)
    assert (rec.status == 1).all()
    assert sorted(pool.blocks._free) == list(range(24))
    assert rec.num_preemptions.sum() > 0


def test_static_capacity_grows_as_predicted():
    base = dict(model="opt-6.7b", hardware="a100-80gb", scheduler="static", max_model_len=4096, num_requests=400,
                rate=float("inf"), prompt_tokens="2048", output_tokens="8", max_num_seqs=1000)
    dense = simulate(Scenario(**base))
    h2o = simulate(Scenario(**base, kv_policy="h2o", kv_budget=0.2))
    n_dense, n_h2o = dense.memory.num_gpu_blocks, h2o.memory.num_gpu_blocks
    # score metadata (fp32 per KV head per layer: 4*32*32 B per token) shrinks the pool
    meta = 4 * 32 * 32
    assert h2o.memory.metadata_bytes_per_token == meta
    free = dense.memory.usable_bytes - dense.memory.weight_bytes - dense.memory.activation_reserve_bytes
    assert n_h2o == free // ((dense.memory.kv_bytes_per_token + meta) * 16)
    assert int(dense.recorder.step_arrays()["num_running"].max()) == n_dense // (2056 // 16 + 1)
    k_blocks, p_blocks = -(-round(0.2 * 2056 + 0.5) // 16), 2048 // 16  # budget ceil(0.2*2056)=412 -> 26 blocks
    best = max(b for b in range(1, 2000) if b * k_blocks + -(-b * p_blocks // 32) <= n_h2o)
    assert int(h2o.recorder.step_arrays()["num_running"].max()) == best


def test_generic_path_with_dense_policy_matches_fast_path(monkeypatch):
    s = Scenario(model="llama-3-8b", num_requests=150, rate=20.0, gpu_memory_utilization=0.25, seed=3)
    fast = simulate(s)
    import simulator.run as run_mod

    class NotDense:  # make run.py hand the DensePolicy object to the pool (generic phase path)
        pass

    monkeypatch.setattr(run_mod, "DensePolicy", NotDense)
    slow = simulate(s)
    a, b = fast.recorder.step_arrays(), slow.recorder.step_arrays()
    assert all(np.array_equal(a[c], b[c]) for c in a)
    assert np.array_equal(fast.recorder.finish_s, slow.recorder.finish_s)
    assert fast.recorder.num_preemptions.sum() > 0  # the preemption path was exercised


def test_eviction_overhead_is_charged_and_gather_costs_more():
    base = dict(model="qwen3-0.6b", scheduler="static", num_requests=8, rate=float("inf"), prompt_tokens="512",
                output_tokens="512", kv_policy="h2o", kv_budget=128)
    res = {c: simulate(Scenario(**base, kv_compaction=c)).recorder.step_arrays() for c in ("inplace", "gather")}
    assert res["inplace"]["evict_s"].sum() > 0
    assert res["gather"]["evict_s"].sum() > res["inplace"]["evict_s"].sum()
    dense = simulate(Scenario(**{**base, "kv_policy": "dense", "kv_budget": None})).recorder.step_arrays()
    assert dense["evict_s"].sum() == 0


def test_eviction_ops_roofline_by_hand():
    from hardware import load_device
    from simulator.cost.roofline import RooflineCostModel
    from simulator.cost.shape import BatchShape, KvWork
    from simulator.models import load_model

    model, dev = load_model("opt-6.7b"), load_device("a100-80gb")
    cm = RooflineCostModel(model, dev)
    plain = cm.step_cost(BatchShape(num_decode=1, decode_context_sum=100, num_logits=1))
    work = KvWork(score_tokens=100.0)
    cost = cm.step_cost(BatchShape(num_decode=1, decode_context_sum=100, num_logits=1, kv_work=work))
    # accumulated fp32 score per KV head per layer, read + written: 2*4*32*32 bytes per token
    assert cost.evict_s == pytest.approx(100 * 2 * 4 * 32 * 32 / 2039e9)
    assert cost.time_s == pytest.approx(plain.time_s + cost.evict_s)

    class Table:
        def op_time_s(self, op):
            return 1e-3 if op.name == "kv_score_update" else None

    measured = RooflineCostModel(model, dev, eviction_times=Table()).step_cost(
        BatchShape(num_decode=1, decode_context_sum=100, num_logits=1, kv_work=work))
    assert measured.evict_s == 1e-3


@pytest.mark.parametrize("bad", [dict(kv_policy="h2o"), dict(kv_policy="h2o", kv_budget=1.5),
                                 dict(kv_policy="lru", kv_budget=10), dict(kv_drop=0), dict(kv_compaction="x")])
def test_scenario_rejects_bad_kv_settings(bad):
    with pytest.raises(ServesimError):
        Scenario(**bad)
