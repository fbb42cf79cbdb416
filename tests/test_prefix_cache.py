"""Automatic prefix caching and the host offload tier (engine/prefix_cache.py, engine/kv_offload.py,
workload/prefix.py): exact block ids, hit counts, LRU eviction order, and hand-computed TTFTs on a
Mooncake-format trace with shared hash_ids."""
from __future__ import annotations

import json

import numpy as np
import pytest
import simpy

from simulator.cost.step import BOUND_COMPUTE, StepCost
from simulator.engine.kv_offload import HostKvTier
from simulator.engine.prefix_cache import PrefixCachingBlockPool, PrefixHit, SglangBlockPool, merge_stats
from simulator.engine.recorder import RunRecorder
from simulator.engine.replica import Replica, open_loop_arrivals
from simulator.engine.schedulers import SarathiScheduler, SchedulerLimits, VllmScheduler
from simulator.engine.sequence_pool import SequencePool
from simulator.errors import ServesimError
from simulator.workload.prefix import RequestBlockKeys, block_keys, mooncake_chunks, with_shared_prefix
from simulator.workload.traces import load_trace


def table_keys(table: dict[int, tuple[int, ...]]):
    return lambda req: table[req]


# ---- block keys from prefix identity ---------------------------------------------------------
def test_mooncake_chunks_cut_at_input_length():
    assert mooncake_chunks([46, 47, 48], 1100) == ((46, 512), (47, 512), (48, 76))
    assert mooncake_chunks([46, 47, 48], 600) == ((46, 512), (47, 88))  # ids past the prompt ignored
    assert mooncake_chunks([], 100) == ()
    with pytest.raises(ValueError, match="hash_ids must be a list of integers"):
        mooncake_chunks(["a"], 100)


def test_mooncake_trace_rows_keep_their_hash_ids_when_sorted(tmp_path):
    rows = [{"timestamp": 500, "input_length": 600, "output_length": 1, "hash_ids": [1, 2]},
            {"timestamp": 0, "input_length": 10, "output_length": 1}]
    r = load_trace(mooncake(tmp_path, rows), "mooncake")
    assert r.prompt_tokens.tolist() == [10, 600] and r.prefix == [(), ((1, 512), (2, 88))]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": "x"}\n')
    with pytest.raises(ServesimError, match=r"line 1, key 'hash_ids': hash_ids must be a list of integers"):
        load_trace(bad, "mooncake")
    no_ids = load_trace(mooncake(tmp_path, rows[1:]), "mooncake")
    assert no_ids.prefix is None


def test_block_keys_agree_exactly_on_shared_tokens():
    a = block_keys(mooncake_chunks([46, 47, 48], 1100), 16)
    b = block_keys(mooncake_chunks([46, 47, 49], 1100), 16)
    c = block_keys(mooncake_chunks([46, 47], 1100), 16)  # tokens past 1024 are its own
    assert len(a) == len(b) == 1100 // 16 == 68 and len(c) == 1024 // 16
    assert a[:64] == b[:64] == c and a[64] != b[64]
    assert len(set(a)) == 68  # chained: equal content at another position is another block


def test_block_keys_when_a_block_straddles_two_mooncake_blocks():
    # block_size 24: block 21 holds tokens [504, 528), across ids 1 and 2
    a = block_keys(mooncake_chunks([1, 2, 3], 1536), 24)
    b = block_keys(mooncake_chunks([1, 9, 3], 1536), 24)
    assert len(a) == 64 and a[:21] == b[:21] and a[21] != b[21]
    assert all(x != y for x, y in zip(a[21:], b[21:]))  # the chain carries the difference on


# ---- the pool: hits, reference counts, eviction order ------------------------------------------
def test_hit_counts_on_a_tiny_pool_with_known_hashes():
    pool = PrefixCachingBlockPool(8, 4, table_keys({0: (1, 2, 3), 1: (1, 2, 9), 2: (1, 2, 3)}))
    assert pool.match(0, 13) == PrefixHit((), 0, 0)
    blocks, fetch_s = pool.apply(0, pool.match(0, 13), 13)
    blocks += pool.allocate(4)
    assert blocks == [0, 1, 2, 3] and fetch_s == 0.0
    assert pool.cache(0, blocks, 0, 13 // 4) == 3  # 3 keys: blocks 0, 1, 2 cached
    assert pool.num_cached == 3
    hit = pool.match(1, 13)  # shares keys 1, 2 with request 0, held by it
    assert hit == PrefixHit((0, 1), 0, 0)
    assert pool.apply(1, hit, 13) == ([0, 1], 0.0)
    pool.release(0, [0, 1, 2, 3], 13)  # reversed free: 3 then 2 join the queue; 0, 1 stay held by 1
    assert list(pool._free) == [4, 5, 6, 7, 3, 2] and pool.num_free == 6
    # at most (13 - 1) // 4 = 3 blocks; block 2 sits in the free queue (evictable)
    assert pool.match(2, 13) == PrefixHit((0, 1, 2), 0, 1)
    assert pool.match(2, 12) == PrefixHit((0, 1), 0, 0)  # 12 tokens: the last block is recomputed
    stats = merge_stats([pool.stats()])
    assert (stats["query_tokens"], stats["query_blocks"], stats["gpu_hit_blocks"]) == (26, 6, 2)
    assert stats["hit_tokens"] == 8 and stats["hit_rate"] == 8 / 26 and stats["block_hit_rate"] == 2 / 6
    assert (stats["miss_tokens"], stats["miss_blocks"]) == (18, 4)


def test_lru_eviction_order_with_exact_block_ids():
    host = HostKvTier(num_blocks=8, block_bytes=1, link_bytes_per_s=1.0)
    pool = PrefixCachingBlockPool(4, 2, table_keys({0: (10, 11), 1: (20,), 2: (30, 31, 32)}), host)
    a = pool.allocate(3)
    pool.cache(0, a, 0, 2)
    pool.release(0, a, 5)  # 5 tokens: blocks 0, 1 full; freed last-first
    assert a == [0, 1, 2] and list(pool._free) == [3, 2, 1, 0]
    b = pool.allocate(2)  # uncached blocks 3, 2 first: nothing evicted
    assert b == [3, 2] and pool.num_evicted == 0
    pool.release(1, b, 3)  # caches block 3 as key 20
    assert list(pool._free) == [1, 0, 2, 3]
    assert pool.allocate(4) == [1, 0, 2, 3]
    assert pool.num_evicted == 3 and list(host._lru) == [11, 10, 20]  # evicted: tail of A, head of A, B


def test_sglang_policy_uses_uncached_blocks_before_evicting():
    """A's two cached blocks are freed before C's two uncached ones: vLLM's free queue evicts A's
    (oldest freed first); SGLang's radix cache takes the never-cached blocks and keeps A's."""
    keys = table_keys({0: (1, 2), 1: (), 2: (), 3: (1, 2, 5)})
    for pool_class, taken, evicted in ((PrefixCachingBlockPool, [1, 0], 2), (SglangBlockPool, [3, 2], 0)):
        pool = pool_class(4, 2, keys)
        a = pool.allocate(2)
        pool.cache(0, a, 0, 2)
        pool.release(0, a, 4)
        c = pool.allocate(2)
        assert c == [2, 3] and pool.num_free == 2
        pool.release(1, c, 3)
        assert pool.num_free == 4 and pool.allocate(2) == taken and pool.num_evicted == evicted
        assert pool.match(3, 7) == (PrefixHit((), 0, 0) if evicted else PrefixHit((0, 1), 0, 2))


def test_sglang_policy_evicts_least_recently_freed_cached_block():
    pool = SglangBlockPool(3, 1, table_keys({0: (1,), 1: (2,), 2: (3,)}))
    for req in (0, 1, 2):  # each caches one block and frees it: blocks 0, 1, 2 in that order
        b = pool.allocate(1)
        pool.release(req, b, 1)
    hit = pool.match(0, 2)
    pool.apply(0, hit, 2)  # block 0 is held again, then freed: now the most recent
    pool.free(list(hit.gpu_blocks))
    assert pool.allocate(2) == [1, 2] and pool.match(0, 2).gpu_blocks == (0,)


def test_host_tier_spills_lru_and_fetch_time():
    host = HostKvTier(num_blocks=2, block_bytes=1000, link_bytes_per_s=1e6)
    pool = PrefixCachingBlockPool(4, 2, table_keys({0: (10, 11), 1: (20,), 2: (10, 11, 40)}), host)
    a = pool.allocate(3)
    pool.cache(0, a, 0, 2)
    pool.release(0, a, 5)
    b = pool.allocate(2)
    pool.release(1, b, 3)
    pool.free(pool.allocate(4))  # evicts 11, 10, 20; the host keeps the last two
    assert list(host._lru) == [10, 20] and (host.num_spilled, host.num_evicted) == (3, 1)
    hit = pool.match(2, 7)  # limit 3 blocks: key 10 on the host, key 11 gone -> 1 host block
    assert hit == PrefixHit((), 1, 0)
    blocks, seconds = pool.apply(2, hit, 7)
    assert seconds == pytest.approx(1000 / 1e6) and len(blocks) == 1
    assert pool.match(2, 7).gpu_blocks == tuple(blocks)  # back on the GPU, cached again
    stats = merge_stats([pool.stats()])
    assert (stats["host_hit_blocks"], stats["host_hit_tokens"], stats["host_hit_rate"]) == (1, 2, 2 / 7)


# ---- the engine: a Mooncake trace with shared hash_ids, hand-computed TTFTs --------------------
class LinearCost:
    """A step costs 1 ms per prefill token plus 10 ms, so TTFTs are hand-computable."""

    source = "roofline"

    def __init__(self):
        self.shapes = []

    def step_cost(self, shape):
        self.shapes.append(shape)
        t = 1e-3 * shape.num_prefill_tokens + 0.01
        return StepCost(t, 0.0, t, 0.0, 0.0, 0.0, 0.0, BOUND_COMPUTE, self.source)


def mooncake(tmp_path, rows) -> str:
    path = tmp_path / "trace.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def run_trace(path: str, *, caching: bool, num_blocks: int = 200, host: HostKvTier | None = None,
              scheduler=SarathiScheduler):
    reqs = load_trace(path, "mooncake")
    rec = RunRecorder(reqs.arrival_s, reqs.prompt_tokens, reqs.output_tokens)
    if caching:
        from simulator.engine.prefix_cache import PrefixCachingBlockPool as Pool

        blocks = Pool(num_blocks, 16, RequestBlockKeys(reqs.prefix, 16), host)
    else:
        from simulator.engine.block_pool import BlockPool

        blocks = BlockPool(num_blocks, 16)
    limits = SchedulerLimits(max_num_seqs=8, max_num_batched_tokens=2048, chunk_size=2048)
    sched = scheduler(SequencePool(blocks, rec, None), limits)
    env, cost = simpy.Environment(), LinearCost()
    replica = Replica(env, 0, sched, cost, rec)
    prompts, outputs = reqs.prompt_tokens.tolist(), reqs.output_tokens.tolist()
    env.process(open_loop_arrivals(env, reqs.arrival_s,
                                   lambda i: replica.submit(i, prompts[i], outputs[i])))
    env.run()
    return rec, cost, blocks


SHARED = [  # B shares A's first two 512-token blocks (hash ids 1, 2), not the third
    {"timestamp": 0, "input_length": 1100, "output_length": 2, "hash_ids": [1, 2, 3]},
    {"timestamp": 10000, "input_length": 1100, "output_length": 2, "hash_ids": [1, 2, 4]},
]


@pytest.mark.parametrize("scheduler", [SarathiScheduler, VllmScheduler])
def test_mooncake_shared_hash_ids_hit_rate_and_ttft_drop(tmp_path, scheduler):
    path = mooncake(tmp_path, SHARED)
    off, _, _ = run_trace(path, caching=False, scheduler=scheduler)
    on, cost, pool = run_trace(path, caching=True, scheduler=scheduler)
    # off: each prefill is 1100 tokens in one step: 1.1 s + 10 ms
    assert (off.first_token_s - off.arrival_s) == pytest.approx([1.11, 1.11])
    # on: B's first 1024 tokens (64 blocks of 16) are cached; it prefills 76 tokens after them
    ttft = on.first_token_s - on.arrival_s
    assert ttft == pytest.approx([1.11, 0.076 + 0.01])
    assert ((76, 1024),) in [s.prefill_chunks for s in cost.shapes]
    stats = merge_stats([pool.stats()])
    assert stats["query_tokens"] == 2200 and stats["hit_tokens"] == 1024 == stats["prefill_tokens_saved"]
    assert stats["hit_rate"] == pytest.approx(1024 / 2200)
    assert (stats["query_blocks"], stats["gpu_hit_blocks"]) == (2 * 68, 64)
    assert stats["block_hit_rate"] == pytest.approx(64 / 136)


def test_offload_tier_brings_evicted_prefix_back(tmp_path):
    """A (69 blocks) finishes; C (1100 unique tokens, 69 blocks) takes the 11 never-used blocks, then
    A's freed blocks tail-first: 68 (partial, uncached) and 67..11 (57 cached, evicted). B then hits
    blocks 0..10 on the GPU and 11..63 on the host (53 blocks, 1000 B each at 1 MB/s = 53 ms)."""
    rows = [SHARED[0], {"timestamp": 5000, "input_length": 1100, "output_length": 2}, SHARED[1]]
    path = mooncake(tmp_path, rows)
    gpu_only, _, pool = run_trace(path, caching=True, num_blocks=80)
    assert merge_stats([pool.stats()])["gpu_hit_blocks"] == 11 and pool.num_evicted == 57
    assert (gpu_only.first_token_s - gpu_only.arrival_s)[2] == pytest.approx(1e-3 * (1100 - 176) + 0.01)
    host = HostKvTier(num_blocks=100, block_bytes=1000, link_bytes_per_s=1e6)
    rec, cost, pool = run_trace(path, caching=True, num_blocks=80, host=host)
    stats = merge_stats([pool.stats()])
    assert (stats["gpu_hit_blocks"], stats["host_hit_blocks"], stats["host_spilled_blocks"]) == (11, 53, 57)
    assert stats["host_fetch_s"] == pytest.approx(0.053)
    assert stats["gpu_hit_rate"] == pytest.approx(176 / 3300) and stats["host_hit_rate"] == pytest.approx(848 / 3300)
    assert (rec.first_token_s - rec.arrival_s)[2] == pytest.approx(0.076 + 0.01 + 0.053)


def test_caching_on_without_shared_content_changes_no_time(tmp_path):
    """Nothing shared (no hash_ids): the caching pool schedules exactly as the plain pool, under
    memory pressure (preemptions) too."""
    rows = [{"timestamp": 100 * i, "input_length": 300 + 37 * i, "output_length": 40 + 5 * i} for i in range(12)]
    path = mooncake(tmp_path, rows)
    off, c_off, _ = run_trace(path, caching=False, num_blocks=60)
    on, c_on, _ = run_trace(path, caching=True, num_blocks=60)
    assert off.preemptions_total > 0
    assert [(s.prefill_chunks, s.num_decode) for s in c_on.shapes] == [(s.prefill_chunks, s.num_decode)
                                                                        for s in c_off.shapes]
    assert np.array_equal(on.first_token_s, off.first_token_s) and np.array_equal(on.finish_s, off.finish_s)


# ---- workloads and the scenario ------------------------------------------------------------
def test_synthetic_shared_prefix_groups():
    from simulator.workload.requests import RequestArrays

    r = RequestArrays(np.zeros(3), np.array([5, 6, 7]), np.array([1, 1, 1]))
    out = with_shared_prefix(r, 100, 2)
    assert out.prompt_tokens.tolist() == [105, 106, 107]
    assert out.prefix == [(((-1, 0), 100),), (((-1, 1), 100),), (((-1, 0), 100),)]
    assert with_shared_prefix(r, 0, 1) is r


def test_sharegpt_multi_turn_prompts_carry_history(tmp_path):
    convs = [{"conversations": [{"from": "human", "value": "a" * 40}, {"from": "gpt", "value": "b" * 80},
                                {"from": "human", "value": "c" * 20}, {"from": "gpt", "value": "d" * 8}]}]
    path = tmp_path / "sg.json"
    path.write_text(json.dumps(convs))
    r = load_trace(path, "sharegpt", multi_turn=True)
    assert r.prompt_tokens.tolist() == [10, 10 + 20 + 5] and r.output_tokens.tolist() == [20, 2]
    assert r.prefix[1][:2] == r.prefix[0]  # turn 2 starts with turn 1's prompt and reply
    with pytest.raises(ServesimError, match="sharegpt_multi_turn applies to sharegpt"):
        load_trace(mooncake(tmp_path, SHARED[:1]), "mooncake", multi_turn=True)


def test_scenario_rejects_unsupported_combinations():
    from simulator.scenario import Scenario

    for bad, field in ((dict(enable_prefix_caching=True, scheduler="static"), "scheduler"),
                       (dict(enable_prefix_caching=True, samples_per_prompt=2), "samples_per_prompt"),
                       (dict(kv_offloading_size_gib=4.0), "kv_offloading_size_gib"),
                       (dict(shared_prefix_tokens=10, trace="x.csv"), "shared_prefix_tokens")):
        with pytest.raises(ServesimError, match=field):
            Scenario(**bad)


@pytest.mark.parametrize("policy", ["vllm", "sglang"])
def test_simulate_reports_hit_rates_and_ttft_drop(tmp_path, policy):
    """End to end (run.simulate): 8 Mooncake requests sharing 3 of 4 blocks, 10 s apart."""
    from simulator.results.summary import build_summary
    from simulator.run import simulate
    from simulator.scenario import Scenario

    rows = [{"timestamp": 10000 * i, "input_length": 2048, "output_length": 4, "hash_ids": [7, 8, 9, 10 + i]}
            for i in range(8)]
    s = Scenario(model="llama-2-7b", hardware="a100-80gb", trace=mooncake(tmp_path, rows), trace_format="mooncake")
    off = build_summary(simulate(s))
    on = build_summary(simulate(s.replace(enable_prefix_caching=True, prefix_caching_policy=policy)))
    assert "prefix_cache" not in off
    pc = on["prefix_cache"]
    # every request after the first hits its first three 512-token blocks (96 blocks of 16)
    assert (pc["query_tokens"], pc["hit_tokens"], pc["host_hit_tokens"]) == (8 * 2048, 7 * 1536, 0)
    assert pc["hit_rate"] == pytest.approx(7 * 1536 / (8 * 2048))
    assert on["metrics"]["mean_ttft_ms"] < 0.5 * off["metrics"]["mean_ttft_ms"]


def test_multi_turn_sharegpt_next_turn_hits_history_and_reply(tmp_path):
    """One user (closed loop) sends turn 2 when turn 1 ends. Turn 1: 40 prompt tokens, 100 output;
    its KV holds 40 + 100 - 1 tokens at the end -> 139 // 16 = 8 full blocks cached (prompt and
    reply). Turn 2's prompt is 40 + 100 + 30 = 170 tokens; it hits those 8 blocks = 128 tokens."""
    from simulator.results.summary import build_summary
    from simulator.run import simulate
    from simulator.scenario import Scenario

    convs = [{"conversations": [{"from": "human", "value": "a" * 160}, {"from": "gpt", "value": "b" * 400},
                                {"from": "human", "value": "c" * 120}, {"from": "gpt", "value": "d" * 20}]}]
    path = tmp_path / "sg.json"
    path.write_text(json.dumps(convs))
    s = Scenario(model="llama-2-7b", hardware="a100-80gb", trace=str(path), trace_format="sharegpt",
                 sharegpt_multi_turn=True, closed_loop_users=1, enable_prefix_caching=True)
    pc = build_summary(simulate(s))["prefix_cache"]
    assert (pc["query_tokens"], pc["hit_tokens"], pc["query_blocks"]) == (40 + 170, 128, 39 // 16 + 169 // 16)
