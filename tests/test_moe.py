"""MoE expert offloading: routing draws, placement policies, execution policies, cost, memory."""
import json
from dataclasses import replace

import numpy as np
import pytest

from hardware import load_device, load_host
from simulator.cost.ops import expected_active_experts, token_ops_without_experts
from simulator.cost.roofline import RooflineCostModel
from simulator.cost.shape import BatchShape
from simulator.errors import ServesimError
from simulator.models import load_model
from simulator.moe.cost import ExpertExec, MoECostModel, MoELayers, SharedHostLink
from simulator.moe.placement import AllOnGpu, LruPlacement, StaticPlacement
from simulator.moe.routing import EXACT_DRAW_LIMIT, load_routing, route_counts
from simulator.results.summary import build_summary, summary_json
from simulator.run import simulate
from simulator.scenario import Scenario

MIX = load_model("mixtral-8x7b")


def _uniform(layers=32, experts=8, k=2):
    return load_routing("uniform", num_layers=layers, num_experts=experts, top_k=k)


def test_uniform_expected_distinct_is_the_formula():
    r = _uniform()
    for t in (1, 2, 7, 64, 1000):
        assert r.expected_distinct(t) == pytest.approx(np.full(32, expected_active_experts(8, 2, t)), rel=1e-12)


def test_exact_draw_gives_k_distinct_experts_per_token():
    rng = np.random.default_rng(1)
    r = load_routing("zipf:1.5", num_layers=4, num_experts=8, top_k=2)
    one = r.draw(rng, 1)
    assert one.max() == 1 and (one.sum(axis=1) == 2).all()
    five = route_counts(rng, r.inclusion, 2, 5)
    assert (five.sum(axis=1) == 10).all() and five.max() <= 5


@pytest.mark.parametrize("tokens", [1, 2, 3, 8, 32, 200])
def test_distinct_experts_formula_against_seeded_routing(tokens):
    """Mean distinct experts over 4000 seeded layer draws within 4 standard errors of
    E*(1-(1-k/E)^T); T=200 exercises the binomial path (200*8 > EXACT_DRAW_LIMIT)."""
    assert (200 * 8 > EXACT_DRAW_LIMIT) and (32 * 8 <= EXACT_DRAW_LIMIT)
    r = _uniform(layers=400)
    rng = np.random.default_rng(42)
    distinct = np.concatenate([(r.draw(rng, tokens) > 0).sum(axis=1) for _ in range(10)])
    expect = expected_active_experts(8, 2, tokens)
    se = max(distinct.std(ddof=1), np.sqrt(expect * (8 - expect) / 8)) / np.sqrt(len(distinct))
    assert abs(distinct.mean() - expect) < 4 * se + 1e-12
    if tokens == 1:
        assert (distinct == 2).all()


def test_zipf_inclusion_capped_and_realised():
    r = load_routing("zipf:2", num_layers=1, num_experts=8, top_k=2)
    pi = r.inclusion[0]
    assert pi.sum() == pytest.approx(2) and pi.max() <= 1 and (np.diff(pi) <= 0).all()
    rng = np.random.default_rng(3)
    freq = sum(route_counts(rng, r.inclusion, 2, 1)[0] for _ in range(4000)) / 4000
    assert np.abs(freq - pi).max() < 4 * np.sqrt(0.25 / 4000)


def test_popularity_file(tmp_path):
    path = tmp_path / "pop.json"
    path.write_text(json.dumps({"expert_popularity": [[3, 1, 0, 0], [1, 1, 1, 1]]}))
    r = load_routing(str(path), num_layers=2, num_experts=4, top_k=1)
    assert r.inclusion[0] == pytest.approx([0.75, 0.25, 0, 0], abs=1e-8)
    assert r.inclusion[1] == pytest.approx([0.25] * 4)
    with pytest.raises(ServesimError, match="shape"):
        load_routing(str(path), num_layers=3, num_experts=4, top_k=1)
    with pytest.raises(ServesimError, match="zipf"):
        load_routing("zipf:x", num_layers=1, num_experts=4, top_k=1)


def test_lru_hit_miss_sequence_on_tiny_trace():
    """1 layer, 4 experts, 2 slots, every miss fetched; ties in recency (one token each) evict the lower index."""
    lru = LruPlacement(1, 4, 2)
    trace = [[0, 1], [0, 2], [1], [0], [3, 0], [2]]
    hits, caches = [], []
    for experts in trace:
        touched = np.zeros((1, 4), bool)
        touched[0, experts] = True
        res = lru.resident().copy()
        hits.append([bool(res[0, e]) for e in experts])
        lru.update(touched, touched & ~res)
        caches.append(set(np.flatnonzero(lru.resident()[0]).tolist()))
    assert hits == [[False, False], [True, False], [False], [False], [False, True], [False]]
    assert caches == [{0, 1}, {0, 2}, {1, 2}, {0, 1}, {0, 3}, {2, 3}]
    # same step, more tokens: kept
    lru = LruPlacement(1, 3, 1)
    lru.update(np.array([[5, 2, 0]]), np.array([[True, True, False]]))
    assert lru.resident().tolist() == [[True, False, False]]


def test_static_placement_keeps_most_popular():
    pop = np.array([[0.1, 0.9, 0.5], [0.8, 0.2, 0.5]])
    assert StaticPlacement(pop, 3).resident().tolist() == [[False, True, True], [True, False, False]]


class _Scripted:
    """Routing stand-in returning fixed counts (layers x experts)."""

    name = "scripted"

    def __init__(self, counts):
        self.counts = np.asarray(counts)

    def draw(self, rng, tokens):
        return self.counts


def _layers(counts, placement, policy="auto", host="xeon-8462y", device="l4", **kw):
    return MoELayers(MIX, load_device(device), load_host(host), routing=_Scripted(counts), placement=placement,
                     exec_policy=ExpertExec(policy=policy, **kw), rng=np.random.default_rng(0))


def test_fiddler_rule_picks_cpu_exactly_below_threshold():
    n = np.arange(0, 25, dtype=float)[None, :]
    miss = np.ones_like(n, dtype=bool)
    for threshold in (10, 3):
        m = _layers(np.zeros((1, 25)), AllOnGpu(1, 25), "fiddler", cpu_token_threshold=threshold)
        assert np.flatnonzero(m.choose_cpu(n, miss)).tolist() == list(range(threshold))
    assert not _layers(np.zeros((1, 25)), AllOnGpu(1, 25), "fiddler").choose_cpu(n, ~miss).any()


def test_auto_picks_the_cheaper_path():
    n = np.array([[1.0, 4.0, 64.0, 512.0, 4096.0]])
    m = _layers(np.zeros((1, 5)), AllOnGpu(1, 5), "auto", host="epyc-9354")
    cpu = m.ship_time(n) + m.cpu_time(n)
    fetch = m.fetch_s + m.gpu_time(n)
    assert m.choose_cpu(n, np.ones_like(n, bool)).tolist() == (cpu < fetch).tolist()
    assert m.choose_cpu(n, np.ones_like(n, bool))[0, 0] and not m.choose_cpu(n, np.ones_like(n, bool))[0, -1]


def test_batch1_closed_forms_fetch_and_cpu():
    """No expert resident, batch-1 decode (2 experts x 1 token per layer)."""
    counts = np.zeros((32, 8), int)
    counts[:, :2] = 1
    one = np.array(1.0)
    fetch = _layers(counts, StaticPlacement(np.ones((32, 8)), 0), "fetch")
    t, *_ = fetch.step(1, 0.0)
    assert t == pytest.approx(32 * (2 * fetch.fetch_s + fetch.gpu_time(one)), rel=1e-12)
    assert fetch.stats["link_bytes"] == 32 * 2 * 2 * MIX.expert_params
    cpu = _layers(counts, StaticPlacement(np.ones((32, 8)), 0), "cpu")
    t, *_ = cpu.step(1, 0.0)
    assert t == pytest.approx(32 * 2 * (cpu.ship_time(one) + cpu.cpu_time(one)), rel=1e-12)
    # prefetch with hit rate 1 hides min(fetch, rest of the layer)
    pre = _layers(counts, StaticPlacement(np.ones((32, 8)), 0), "fetch", prefetch_hit_rate=1.0)
    t, *_ = pre.step(1, 0.004)
    assert t == pytest.approx(32 * (2 * pre.fetch_s - 0.004 + pre.gpu_time(one)), rel=1e-12)


def _step_times(model, tokens, routing):
    dev = load_device("h100-sxm")
    plain = RooflineCostModel(model, dev)
    inner = RooflineCostModel(model, dev, token_op_builder=token_ops_without_experts)
    layers = MoELayers(model, dev, load_host("xeon-8462y"), routing=routing,
                       placement=AllOnGpu(model.num_moe_layers, model.num_experts), exec_policy=ExpertExec(),
                       rng=np.random.default_rng(0))
    shape = BatchShape(prefill_chunks=(), num_decode=tokens, decode_context_sum=tokens * 100, num_logits=tokens)
    return plain.step_cost(shape), MoECostModel(inner, layers, model.num_moe_layers).step_cost(shape)


def test_all_resident_matches_plain_moe_cost():
    # batch 1: exactly k distinct experts per layer = E*(1-(1-k/E)^1), memory-bound both ways
    a, b = _step_times(MIX, 1, _uniform())
    assert b.time_s == pytest.approx(a.time_s, rel=1e-12) and b.bytes == pytest.approx(a.bytes, rel=1e-12)
    # top_k = E: every expert sees every token, so counts are exact at any batch
    dense_route = replace(MIX, num_experts_per_tok=8)
    a, b = _step_times(dense_route, 48, _uniform(k=8))
    assert b.time_s == pytest.approx(a.time_s, rel=1e-12) and b.flops == pytest.approx(a.flops, rel=1e-12)


def test_shared_host_link_is_fifo():
    link = SharedHostLink()
    assert [link.reserve(0.0, 1.0), link.reserve(0.5, 1.0), link.reserve(3.0, 1.0)] == [0.0, 0.5, 0.0]
    assert link.free_at_s == 4.0


def test_memory_offload_and_error():
    base = Scenario(model="mixtral-8x7b", hardware="l4", num_requests=3, closed_loop_users=1, prompt_tokens="32",
                    output_tokens="8", max_num_batched_tokens=2048)
    with pytest.raises(ServesimError, match=r"93\.41 GB of weights.*--expert-placement"):
        simulate(base)
    r = simulate(base.replace(expert_placement="static", expert_exec="fiddler"))
    total = MIX.weight_bytes("bf16")
    assert r.memory.weight_bytes + r.memory.host_weight_bytes == total
    assert r.memory.weight_bytes <= r.memory.usable_bytes
    slots = r.cost_model["moe"]["gpu_expert_slots"]
    assert r.memory.host_weight_bytes == (256 - slots) * MIX.expert_params * 2
    m = build_summary(r)["metrics"]
    assert 0 < m["moe_expert_hit_rate"] < 1 and m["moe_experts_on_cpu"] > 0 and m["completed"] == 3


def test_moe_runs_are_deterministic_and_link_sharing_contends():
    s = Scenario(model="mixtral-8x7b", hardware="l4", num_requests=8, rate=100.0, prompt_tokens="32",
                 output_tokens="16", max_num_batched_tokens=2048, expert_placement="lru", gpu_expert_slots=1,
                 expert_exec="fetch", replicas=2)
    one = summary_json(build_summary(simulate(s)))
    assert one == summary_json(build_summary(simulate(s)))
    shared = build_summary(simulate(s.replace(host_link_sharing=2)))["metrics"]
    alone = json.loads(one)["metrics"]
    assert alone["moe_host_link_wait_s"] == 0 and shared["moe_host_link_wait_s"] > 0
    assert shared["duration"] > alone["duration"]


def test_dense_model_rejects_expert_options():
    with pytest.raises(ServesimError, match="MoE model"):
        simulate(Scenario(model="llama-2-7b", num_requests=2, expert_placement="lru"))
