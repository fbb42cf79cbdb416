"""MoE routing, placement and run composition by hand (issue 19; gaps found by mutation testing):
Zipf / popularity inclusion probabilities worked out as fractions, exact-draw boundaries, LRU and
static placement edge cases, and plan_moe / build_moe_cost_models numbers from the model config.
"""
import json
import math

import numpy as np
import pytest

from hardware import load_device
from simulator.engine import GB, activation_reserve_bytes
from simulator.errors import ServesimError
from simulator.models import load_model
from simulator.moe.placement import AllOnGpu, LruPlacement, StaticPlacement
from simulator.moe.routing import EXACT_DRAW_LIMIT, RoutingModel, load_routing, route_counts
from simulator.moe.setup import build_moe_cost_models, moe_requested, plan_moe
from simulator.scenario import Scenario

MIX = load_model("mixtral-8x7b")  # 32 MoE layers x 8 experts, top-2; P = 3 x 4096 x 14336
P = 3 * 4096 * 14336


# ---- routing ------------------------------------------------------------------------------------
def test_uniform_and_zipf_inclusion_by_hand():
    u = load_routing("uniform", num_layers=2, num_experts=4, top_k=1)
    assert u.name == "uniform" and u.inclusion.tolist() == [[0.25] * 4] * 2
    z1 = load_routing("zipf:1", num_layers=1, num_experts=4, top_k=1)  # weights 1, 1/2, 1/3, 1/4 (sum 25/12)
    assert z1.name == "zipf:1" and z1.inclusion[0] == pytest.approx([12 / 25, 6 / 25, 4 / 25, 3 / 25], rel=1e-12)
    # zipf:2, top-2: 2 x 1/(1 + 1/4 + 1/9 + 1/16) > 1, so expert 0 is capped at 1 and the remaining
    # one draw is shared in proportion 1/4 : 1/9 : 1/16 = 36 : 16 : 9
    z2 = load_routing("zipf:2", num_layers=3, num_experts=4, top_k=2)
    assert z2.inclusion == pytest.approx(np.tile([1, 36 / 61, 16 / 61, 9 / 61], (3, 1)), rel=1e-12)
    half = load_routing("zipf:0.5", num_layers=1, num_experts=2, top_k=1)  # weights 1, 1/sqrt(2)
    assert half.inclusion[0] == pytest.approx([1 / (1 + 2**-0.5), 2**-0.5 / (1 + 2**-0.5)], rel=1e-12)


@pytest.mark.parametrize("spec", ["zipf:0", "zipf:-1", "zipf:x", "zipf:"])
def test_zipf_exponent_must_be_positive(spec):
    with pytest.raises(ServesimError) as e:
        load_routing(spec, num_layers=1, num_experts=4, top_k=1)
    assert str(e.value) == f"expert_routing={spec!r}: Zipf exponent must be a number > 0, e.g. zipf:1.2"


def test_popularity_file_caps_in_rounds(tmp_path):
    """Counts 100, 50, 1, 1, 1 with top-3: expert 0 capped first (3 x 100/153 > 1), then expert 1
    (2 x 50/53 > 1); the last draw is shared equally by the rest."""
    p = tmp_path / "pop.json"
    p.write_text(json.dumps({"expert_popularity": [[100, 50, 1, 1, 1]]}))
    r = load_routing(str(p), num_layers=1, num_experts=5, top_k=3)
    assert r.name == str(p) and r.inclusion[0] == pytest.approx([1, 1, 1 / 3, 1 / 3, 1 / 3], rel=1e-9)


@pytest.mark.parametrize("content, message", [
    (None, "expert_routing={p!r}: not 'uniform', 'zipf:S' or an existing popularity JSON file"),
    ('{"expert_popularity": [[1, -1, 1, 1]]}', "{p}: popularity counts must be >= 0 with a positive total per layer"),
    ('{"expert_popularity": [[0, 0, 0, 0]]}', "{p}: popularity counts must be >= 0 with a positive total per layer"),
    ('{"popularity": []}', "{p}: expected JSON with 'expert_popularity': [[count per expert] per layer] ('expert_popularity')"),
])
def test_popularity_file_errors(tmp_path, content, message):
    p = tmp_path / "pop.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(ServesimError) as e:
        load_routing(str(p), num_layers=1, num_experts=4, top_k=1)
    assert str(e.value) == message.format(p=str(p))


def test_routing_model_checks():
    assert RoutingModel("x", np.array([[1.0, 0.0, 1.0]]), 2).num_experts == 3  # 0 and 1 are allowed
    for pi, k in ((np.array([0.5, 0.5]), 1), (np.array([[1.0]]), 2), (np.array([[1.0, 0.0]]), 0)):
        with pytest.raises(ValueError) as e:
            RoutingModel("x", pi, k)
        assert str(e.value) == f"inclusion must be (layers, experts>=top_k), got {pi.shape} with top_k={k}"
    for pi in ([[1.5, 0.5]], [[-0.5, 1.5, 1.0]], [[0.5, 0.4]]):
        with pytest.raises(ValueError) as e:
            RoutingModel("x", np.array(pi), 1 if len(pi[0]) == 2 and sum(pi[0]) != 2 else 2)
        assert str(e.value) == "inclusion probabilities must lie in [0, 1] and sum to top_k per layer"


def test_exact_draws_up_to_the_limit_then_binomial():
    r = load_routing("uniform", num_layers=16, num_experts=8, top_k=2)
    rng = np.random.default_rng(5)
    tokens = EXACT_DRAW_LIMIT // 8  # 128 x 8 = the limit: still every token routed exactly
    exact = r.draw(rng, tokens)
    assert exact.dtype == np.int64 and (exact.sum(axis=1) == 2 * tokens).all() and exact.max() <= tokens
    binom = r.draw(rng, 200)  # 1600 > limit: independent binomial counts, totals only on average
    assert not (binom.sum(axis=1) == 400).all()
    assert abs(binom.sum() / 16 - 400) < 4 * math.sqrt(8 * 200 * 0.25 * 0.75)


def test_route_counts_never_picks_an_expert_with_zero_probability():
    counts = route_counts(np.random.default_rng(1), np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]), 2, 6)
    assert counts.tolist() == [[6, 6, 0], [0, 6, 6]] and counts.dtype == np.int64


# ---- placement ----------------------------------------------------------------------------------
def test_lru_slots_range_and_cpu_run_experts_stay_out():
    assert LruPlacement(2, 4, 0).num_gpu_experts == 0 and LruPlacement(2, 4, 4).num_gpu_experts == 8
    with pytest.raises(ValueError) as e:
        LruPlacement(2, 4, 5)
    assert str(e.value) == "slots must be in [0, 4], got 5"
    lru = LruPlacement(1, 4, 1)
    lru.update(np.array([[1, 1, 0, 0]]), np.array([[True, False, False, False]]))  # expert 1 ran on the CPU
    assert lru.resident().tolist() == [[True, False, False, False]]


def test_static_placement_ties_and_all_on_gpu():
    s = StaticPlacement(np.ones((2, 20)), 10)  # all tied: the lowest (layer, expert) indices
    assert s.resident()[0, :10].all() and s.num_gpu_experts == 10 and not s.resident()[1].any()
    alt = StaticPlacement(np.tile([1.0, 0.0], (2, 25)), 25)  # 50 tied at 1: the first 25 of them
    assert np.flatnonzero(alt.resident().ravel()).tolist() == list(range(0, 50, 2))
    a = AllOnGpu(2, 3)
    assert a.resident().shape == (2, 3) and a.resident().all() and a.num_gpu_experts == 6
    with pytest.raises(ValueError) as e:
        StaticPlacement(np.ones((1, 2)), -1)
    assert str(e.value) == "total_slots must be >= 0, got -1"


# ---- composition --------------------------------------------------------------------------------
def test_moe_requested():
    assert not moe_requested(Scenario(model="mixtral-8x7b"))
    assert moe_requested(Scenario(model="mixtral-8x7b", expert_routing="zipf:1.2"))
    assert moe_requested(Scenario(model="mixtral-8x7b", expert_placement="all_gpu"))


def test_plan_moe_slots_and_bytes_by_hand():
    a100 = load_device("a100-80gb")
    plan = plan_moe(Scenario(model="mixtral-8x7b", expert_routing="zipf:1.2", tp=2), MIX, a100, 2048)
    assert (plan.placement, plan.gpu_expert_slots, plan.host_weight_bytes) == ("all_gpu", 256, 0)
    assert plan.expert_bytes == P  # bf16 (2 B) over tp 2
    static = plan_moe(Scenario(model="mixtral-8x7b", expert_placement="static", gpu_expert_slots=3), MIX, a100, 2048)
    assert static.gpu_expert_slots == 32 * 3 and static.expert_bytes == 2 * P
    assert static.host_weight_bytes == (256 - 96) * 2 * P
    assert plan_moe(Scenario(model="mixtral-8x7b", expert_placement="static", gpu_expert_slots=99),
                    MIX, a100, 2048).gpu_expert_slots == 256  # at most every expert


@pytest.mark.parametrize("placement, tp", [("static", 1), ("lru", 1), ("static", 2)])
def test_auto_slots_by_hand(placement, tp):
    """Usable HBM - non-expert weights - activations - KV for 1000 tokens (63 blocks of 16),
    divided by one expert's bytes; lru keeps whole layers' worth (a multiple of 32)."""
    dev = load_device("l4")
    s = Scenario(model="mixtral-8x7b", hardware="l4", expert_placement=placement, moe_kv_reserve_tokens=1000, tp=tp,
                 gpu_memory_utilization=0.9, max_num_batched_tokens=2048)
    expert = 2 * P // tp
    non_expert = MIX.weight_bytes("bf16") // tp - 256 * expert
    kv = (2 * 8 * 128 * 32 * 2 // tp) * 16 * 63  # K and V x 8 KV heads x 128 x 32 layers x 2 B, per rank
    free = int(24 * 2**30 * 0.9) - non_expert - activation_reserve_bytes(MIX, "bf16", tp, 2048, s.max_num_seqs) - kv
    slots = min(256, free // expert)
    if placement == "lru":
        slots -= slots % 32
    plan = plan_moe(s, MIX, dev, 2048)
    assert plan.gpu_expert_slots == slots and 0 < slots < 256
    assert plan.host_weight_bytes == (256 - slots) * expert


def test_offload_errors_name_the_numbers():
    ds = load_model("deepseek-v3")
    s = Scenario(model="deepseek-v3", expert_placement="static", gpu_expert_slots=0)
    assert ds.param_bytes("experts", "bf16") == 1  # DeepSeek-V3 ships fp8 expert weights: 1 byte/param
    expert = int(ds.expert_params * 1)
    need = ds.num_moe_layers * ds.num_experts * expert
    with pytest.raises(ServesimError) as e:
        plan_moe(s, ds, load_device("h200"), 2048)
    assert str(e.value) == (f"offloaded experts need {need / GB:.1f} GB of host memory but host xeon-8462y has "
                            f"{512 * 2**30 / GB:.1f} GB; pick a bigger --host or more --gpu-expert-slots")
    with pytest.raises(ServesimError, match=r"^deepseek-v3 on l4: even with every expert in host memory the GPU needs "):
        plan_moe(Scenario(model="deepseek-v3", hardware="l4", expert_placement="static", host="epyc-9354",
                          gpu_memory_utilization=0.1), ds, load_device("l4"), 2048)


class _Inner:
    def step_cost(self, shape):  # pragma: no cover - not called here
        raise AssertionError

    def describe(self):
        return {"kind": "stub"}


@pytest.mark.parametrize("placement, exec_, policy", [("lru", None, "fetch"), ("static", None, "auto"),
                                                       ("lru", "cpu", "cpu"), ("static", "fiddler", "fiddler")])
def test_cost_models_take_the_scenario_settings(placement, exec_, policy):
    s = Scenario(model="mixtral-8x7b", hardware="a100-80gb", engine="ideal", expert_placement=placement,
                 gpu_expert_slots=2, expert_exec=exec_, expert_cpu_threshold=7, expert_prefetch_hit_rate=0.25,
                 eta_compute=0.5, eta_memory=0.8, dtype="fp32", tp=2, replicas=4, host_link_sharing=2)
    dev = load_device("a100-80gb")
    plan = plan_moe(s, MIX, dev, 2048)
    models = build_moe_cost_models(s, MIX, dev, plan, _Inner(), lambda: 0.0)
    assert len(models) == 4
    m = models[0].moe
    assert (m.exec.policy, m.exec.cpu_token_threshold, m.exec.prefetch_hit_rate) == (policy, 7, 0.25)
    assert m.f_gpu == pytest.approx(0.5 * dev.peak_flops("fp32")) and m.bw_gpu == pytest.approx(0.8 * 2.039e12)
    assert m.params_e == P // 2 and m.beta == 4 and m.fetch_s == pytest.approx(4 * P / 2 / dev.host_link_bytes_per_s)
    assert m.placement.num_gpu_experts == 64 and m.rate_sources == {}  # ideal engine: peak rates
    assert models[0].moe.link is models[1].moe.link is not None and models[2].moe.link is not models[0].moe.link
    assert models[0].moe.rng is not models[1].moe.rng
    alone = build_moe_cost_models(s.replace(host_link_sharing=1), MIX, dev, plan, _Inner(), lambda: 0.0)
    assert all(c.moe.link is None for c in alone)


def test_offload_error_counts_every_rank():
    """tp 2: each rank holds half of every expert; the host needs the whole of them."""
    ds = load_model("deepseek-v3")
    need = ds.num_moe_layers * ds.num_experts * ds.expert_params * 1  # fp8 experts
    with pytest.raises(ServesimError) as e:
        plan_moe(Scenario(model="deepseek-v3", expert_placement="static", gpu_expert_slots=0, tp=2), ds,
                 load_device("h200"), 2048)
    assert str(e.value).startswith(f"offloaded experts need {need / GB:.1f} GB of host memory")


def test_gpu_too_small_message_by_hand():
    ds = load_model("deepseek-v3")
    s = Scenario(model="deepseek-v3", hardware="l4", expert_placement="static", host="epyc-9354",
                 gpu_memory_utilization=0.1, moe_kv_reserve_tokens=100)
    usable = int(24 * 2**30 * 0.1)
    expert = ds.expert_params  # fp8: 1 byte/param
    non_expert = int(ds.weight_bytes("bf16")) - ds.num_moe_layers * ds.num_experts * expert
    reserve = activation_reserve_bytes(ds, "bf16", 1, 2048, s.max_num_seqs)
    kv = ds.kv_bytes_per_token("bf16", 1) * 16 * 7  # 100 tokens -> 7 blocks of 16
    with pytest.raises(ServesimError) as e:
        plan_moe(s, ds, load_device("l4"), 2048)
    assert str(e.value) == (
        f"deepseek-v3 on l4: even with every expert in host memory the GPU needs "
        f"{(non_expert + reserve + kv) / GB:.2f} GB (non-expert weights {non_expert / GB:.2f} GB, "
        f"activations {reserve / GB:.2f} GB, KV for one step {kv / GB:.2f} GB) but offers "
        f"{usable / GB:.2f} GB; lower --max-num-batched-tokens or use a larger --tp")


def test_routing_without_offload_keeps_every_expert_on_the_gpu():
    s = Scenario(model="mixtral-8x7b", hardware="a100-80gb", engine="ideal", expert_routing="zipf:1.2", tp=2)
    dev = load_device("a100-80gb")
    plan = plan_moe(s, MIX, dev, 2048)
    [c] = build_moe_cost_models(s, MIX, dev, plan, _Inner(), lambda: 0.0)
    assert c.moe.placement.name == "all_gpu" and c.moe.placement.resident().shape == (32, 8)
    assert c.moe.placement.resident().all() and c.moe.routing.name == "zipf:1.2"


def test_expert_rates_calibrated_or_ideal():
    from profiles.host_cpu import load_host_cpu
    from simulator.cost import device_kernels
    from simulator.moe.setup import expert_rates

    dev = load_device("a100-80gb")
    host = plan_moe(Scenario(model="mixtral-8x7b", expert_routing="zipf:1.2"), MIX, dev, 2048).host
    assert expert_rates(Scenario(model="mixtral-8x7b", engine="ideal"), dev, host) is None
    assert expert_rates(Scenario(model="mixtral-8x7b", profile="none"), dev, host) is None
    assert expert_rates(Scenario(model="mixtral-8x7b", profile="NONE"), dev, host) is None
    r = expert_rates(Scenario(model="mixtral-8x7b"), dev, host)
    cal = device_kernels(dev)
    gemm = cal.classes["gemm"]
    assert set(r) == {"f_gpu", "bw_gpu", "bw_link", "f_cpu", "bw_cpu", "sources"}
    assert r["f_gpu"] == pytest.approx(312e12 * gemm.eta_c("bf16")) and r["f_gpu"] < 312e12
    assert r["bw_gpu"] == pytest.approx(2.039e12 * gemm.eta_memory) and r["bw_gpu"] < 2.039e12
    assert r["bw_link"] == cal.host_link_bytes_per_s() <= 32e9
    cpu = load_host_cpu()
    assert (r["f_cpu"], r["bw_cpu"]) == cpu.rates(cores=32, dram_bytes_per_s=307.2e9, peak_flops=91.75e12, dtype="bf16")
    assert r["sources"] == {"gpu": f"device calibration a100-80gb ({cal.kind}) GEMM efficiencies",
                            "host_link": cal.provenance.get("host_link", {}).get("source", "nominal host link"),
                            "cpu": cpu.describe()}
    assert r["sources"]["host_link"] != "nominal host link"  # the calibration says where its link figure is from
    [c] = build_moe_cost_models(Scenario(model="mixtral-8x7b", expert_placement="lru", gpu_expert_slots=2), MIX, dev,
                                plan_moe(Scenario(model="mixtral-8x7b", expert_placement="lru", gpu_expert_slots=2),
                                         MIX, dev, 2048), _Inner(), lambda: 0.0)
    assert c.moe.f_gpu == r["f_gpu"] and c.moe.bw_link == r["bw_link"] and c.moe.rate_sources == r["sources"]
