"""MoE expert time of whole steps written out by hand (issue 19; gaps found by mutation testing).

Rates are set through MoELayers' `rates` so the arithmetic is readable: GPU 100 TFLOP/s and
1 TB/s, host link 25 GB/s, host CPU 2 TFLOP/s and 200 GB/s. Mixtral-8x7B's expert: P = 3 x 4096 x
14336 params, a = 2h + 2w + w activation elements per token, bf16 (beta = 2). Formulas:
formulas.md "MoE and expert offloading" (and simulator/moe/cost.py's docstring):
  GPU   t(n) = max(2nP/F_gpu, beta(P + n a)/BW_hbm);  fetch = beta P / BW_link
  CPU   c(n) = 2 n h beta / BW_link + max(2nP/F_cpu, beta P / BW_dram)
  layer = max(sum of GPU work, link work + t(the fetched expert with least work), ship + CPU work)
with link work = fetches - min(hit rate x fetches, rest of the layer) + ships.
"""
from dataclasses import replace

import numpy as np
import pytest

from hardware import load_device, load_host
from simulator.cost.step import BOUND_COMPUTE, BOUND_MEMORY, BOUND_OVERHEAD, StepCost
from simulator.models import load_model
from simulator.moe.cost import ExpertExec, MoECostModel, MoELayers, SharedHostLink, moe_metrics
from simulator.moe.placement import StaticPlacement

MIX = load_model("mixtral-8x7b")
H, W = 4096, 14336
P = 3 * H * W
A = 2 * H + 2 * W + W
BETA = 2
F_GPU, BW_GPU, BW_LINK, F_CPU, BW_CPU = 100e12, 1e12, 25e9, 2e12, 200e9
RATES = {"f_gpu": F_GPU, "bw_gpu": BW_GPU, "bw_link": BW_LINK, "f_cpu": F_CPU, "bw_cpu": BW_CPU,
         "sources": {"gpu": "test rates"}}


def t_gpu(n, p=P, beta=BETA, f=F_GPU, bw=BW_GPU):
    return max(2 * n * p / f, beta * (p + n * A) / bw)


def fetch(p=P, beta=BETA, bw=BW_LINK):
    return beta * p / bw


def ship(n):
    return 2 * n * H * BETA / BW_LINK


def cpu(n):
    return max(2 * n * P / F_CPU, BETA * P / BW_CPU)


class Scripted:
    name = "scripted"

    def __init__(self, counts):
        self.counts = np.asarray(counts)

    def draw(self, rng, tokens):
        return self.counts


# 2 layers x 4 experts. Layer 0: e0 resident (3 tokens), e1 missed (1 token: CPU under fiddler,
# threshold 2), e2 missed (5 tokens: fetched). Layer 1: e0 resident (400 tokens: compute-bound on
# the GPU), e1 missed (2 tokens: fetched), e2 missed (7: fetched), e3 resident and idle.
COUNTS = [[3, 1, 5, 0], [400, 2, 7, 0]]
RESIDENT = [[1, 0, 0, 0], [1, 0, 0, 1]]


def layers(counts=COUNTS, resident=RESIDENT, policy="fiddler", rates=RATES, model=MIX, link=None, clock=None, **kw):
    pop = np.asarray(resident, dtype=float)
    return MoELayers(model, load_device("l4"), load_host("xeon-8462y"), routing=Scripted(counts),
                     placement=StaticPlacement(pop, int(pop.sum())),
                     exec_policy=ExpertExec(policy=policy, cpu_token_threshold=kw.pop("threshold", 2), **kw),
                     rng=np.random.default_rng(0), rates=rates, link=link, clock=clock)


def hand_step(prefetch=0.0, rest=0.0):
    """(total, GPU work) of one step of COUNTS by hand."""
    hidden0 = min(prefetch * fetch(), rest)
    link0 = fetch() - hidden0 + ship(1)
    l0 = max(t_gpu(3) + t_gpu(5), link0 + t_gpu(5), ship(1) + cpu(1))
    hidden1 = min(prefetch * 2 * fetch(), rest)
    link1 = 2 * fetch() - hidden1
    l1 = max(t_gpu(400) + t_gpu(2) + t_gpu(7), link1 + t_gpu(2))
    return l0 + l1, t_gpu(3) + t_gpu(5) + t_gpu(400) + t_gpu(2) + t_gpu(7)


def test_mixed_step_by_hand_and_stats_accumulate():
    m = layers()
    total, gpu_work = hand_step()
    assert 2 * 400 * P / F_GPU > BETA * (P + 400 * A) / BW_GPU  # 400 tokens: compute-bound
    for k in (1, 2):
        t, exposed, flops, nbytes = m.step(1, 0.0)
        assert t == pytest.approx(total, rel=1e-12)
        assert exposed == pytest.approx(total - gpu_work, rel=1e-12)
        assert flops == pytest.approx(2 * (3 + 5 + 400 + 2 + 7) * P, rel=1e-12)
        assert nbytes == pytest.approx(BETA * 5 * P + BETA * (3 + 5 + 400 + 2 + 7) * A, rel=1e-12)
        st = m.stats
        assert (st["touched"], st["hits"], st["fetched"], st["on_cpu"], st["steps"]) == (6 * k, 2 * k, 3 * k, k, k)
        assert st["link_bytes"] == pytest.approx(k * (3 * BETA * P + 2 * H * BETA * 1), rel=1e-12)
        assert st["gpu_s"] == pytest.approx(k * gpu_work, rel=1e-12)
        assert st["cpu_s"] == pytest.approx(k * cpu(1), rel=1e-12)
        assert st["link_s"] == pytest.approx(k * (3 * fetch() + ship(1)), rel=1e-12)
        assert st["moe_s"] == pytest.approx(k * total, rel=1e-12) and st["link_wait_s"] == 0
    assert moe_metrics([m.stats, m.stats]) == pytest.approx({
        "moe_expert_hit_rate": 2 / 6, "moe_experts_touched": 24, "moe_experts_fetched": 12, "moe_experts_on_cpu": 4,
        "moe_host_link_bytes": 4 * (3 * BETA * P + 2 * H * BETA), "moe_gpu_expert_time_s": 4 * gpu_work,
        "moe_cpu_expert_time_s": 4 * cpu(1), "moe_host_link_time_s": 4 * (3 * fetch() + ship(1)),
        "moe_host_link_wait_s": 0.0, "moe_expert_time_s": 4 * total}, rel=1e-12)


def test_prefetch_hides_at_most_the_rest_of_the_layer():
    for hit, rest in ((0.5, 1e-3), (0.01, 1.0), (1.0, 0.0)):
        m = layers(prefetch_hit_rate=hit)
        t, *_ = m.step(1, rest)
        assert t == pytest.approx(hand_step(hit, rest)[0], rel=1e-12), (hit, rest)


def test_cpu_policy_compute_and_memory_bound():
    """policy cpu: every miss on the host, even 100 tokens (which a cost-based choice would fetch).
    100 tokens are compute-bound there (2*100*P/2e12 = 17.6 ms > beta*P/200e9 = 1.76 ms), 1 token
    is memory-bound."""
    m = layers(counts=[[0, 100, 1, 0]], resident=[[1, 0, 0, 0]], policy="cpu")
    assert 2 * 100 * P / F_CPU > BETA * P / BW_CPU > 2 * 1 * P / F_CPU
    assert ship(100) + cpu(100) > fetch() + t_gpu(100)
    t, exposed, flops, nbytes = m.step(1, 0.0)
    cpu_work = ship(100) + cpu(100) + ship(1) + cpu(1)
    assert t == pytest.approx(cpu_work, rel=1e-12) and exposed == pytest.approx(cpu_work, rel=1e-12)
    assert flops == 0 and nbytes == 0
    assert m.stats["link_bytes"] == pytest.approx(2 * (100 + 1) * H * BETA, rel=1e-12)


def test_shared_link_waits_add_to_the_step_and_the_stats():
    """Two replicas on one host link, both stepping at t = 0: the second waits for the first's
    link time (3 fetches + 1 ship), and that wait is exposed time."""
    link = SharedHostLink()
    a, b = (layers(link=link, clock=lambda: 0.0) for _ in range(2))
    total, gpu_work = hand_step()
    busy = 3 * fetch() + ship(1)
    assert a.step(1, 0.0)[0] == pytest.approx(total, rel=1e-12)
    t, exposed, *_ = b.step(1, 0.0)
    assert t == pytest.approx(total + busy, rel=1e-12) and exposed == pytest.approx(total - gpu_work + busy, rel=1e-12)
    t, *_ = b.step(1, 0.0)  # the link is now booked until 3 x busy
    assert t == pytest.approx(total + 2 * busy, rel=1e-12)
    assert b.stats["link_wait_s"] == pytest.approx(3 * busy, rel=1e-12)
    assert b.stats["moe_s"] == pytest.approx(2 * total + 3 * busy, rel=1e-12)


def test_auto_policy_takes_the_cheaper_path_per_expert():
    """CPU when ship + c(n) < fetch + t(n): here for n <= 81 (ship + c(n) lies between
    fetch - t(n) and fetch + t(n) for n = 78..81, where leaving out t(n) would pick the fetch)."""
    n = np.arange(1, 160, dtype=float)[None, :]
    m = layers(counts=np.zeros((1, 159)), resident=np.zeros((1, 159)), policy="auto")
    expect = [ship(k) + cpu(k) < fetch() + t_gpu(k) for k in n[0]]
    assert m.choose_cpu(n, np.ones_like(n, dtype=bool))[0].tolist() == expect
    assert any(fetch() - t_gpu(k) < ship(k) + cpu(k) < fetch() + t_gpu(k) for k in n[0])
    assert expect.index(False) == 81  # n = 82 is the first fetched
    assert not m.choose_cpu(n, np.zeros_like(n, dtype=bool)).any()  # resident experts stay on the GPU


def test_peak_rates_eta_quantized_and_ungated_experts():
    dev = load_device("l4")  # 121 TFLOP/s bf16, 300 GB/s, 32 GB/s link
    kw = dict(routing=Scripted(COUNTS), placement=StaticPlacement(np.ones((2, 4)), 8), exec_policy=ExpertExec(),
              rng=np.random.default_rng(0))
    host = load_host("xeon-8462y")
    m = MoELayers(MIX, dev, host, **kw)  # no rates: the device's peaks, eta 1
    big = np.array(4000.0)
    assert m.gpu_time(big) == pytest.approx(2 * 4000 * P / 121e12, rel=1e-12)
    assert m.gpu_time(np.array(1.0)) == pytest.approx(BETA * (P + A) / 300e9, rel=1e-12)
    assert m.fetch_s == pytest.approx(BETA * P / 32e9, rel=1e-12)
    assert m.cpu_time(np.array(1.0)) == pytest.approx(BETA * P / 307.2e9, rel=1e-12)  # host DRAM 307.2 GB/s
    eta = MoELayers(MIX, dev, host, eta_compute=0.5, eta_memory=0.25, **kw)
    assert eta.gpu_time(big) == pytest.approx(2 * 4000 * P / (0.5 * 121e12), rel=1e-12)
    assert eta.gpu_time(np.array(1.0)) == pytest.approx(BETA * (P + A) / (0.25 * 300e9), rel=1e-12)
    part = MoELayers(MIX, dev, host, rates={"bw_link": 25e9}, **kw)  # only the link is replaced
    assert part.fetch_s == pytest.approx(BETA * P / 25e9, rel=1e-12)
    assert part.gpu_time(big) == pytest.approx(2 * 4000 * P / 121e12, rel=1e-12) and part.rate_sources == {}
    int4 = MoELayers(replace(MIX, weight_bytes_per_param={"experts": 0.5}), dev, host, **kw)
    assert int4.fetch_s == pytest.approx(0.5 * P / 32e9, rel=1e-12)  # quantized experts move 0.5 B/param
    assert int4.gpu_time(np.array(1.0)) == pytest.approx((0.5 * P + BETA * A) / 300e9, rel=1e-12)
    ungated = MoELayers(replace(MIX, gated_mlp=False), dev, host, **kw)
    assert ungated.params_e == 2 * H * W  # up and down only
    assert ungated.fetch_s == pytest.approx(BETA * 2 * H * W / 32e9, rel=1e-12)


class Inner:
    """Inner cost model stub: fixed compute / memory / comm / overhead seconds."""

    def __init__(self, compute_s, memory_s, comm_s, overhead_s, bound=BOUND_MEMORY):
        self.parts = (compute_s, memory_s, comm_s, overhead_s)
        self.bound = bound

    def step_cost(self, shape):
        c, m, comm, o = self.parts
        return StepCost(c + m + comm + o, c, m, comm, o, 1e9, 1e6, self.bound, "roofline")

    def describe(self):
        return {"kind": "stub", "source": "roofline"}


class Shape:
    num_tokens = 1


@pytest.mark.parametrize("counts, resident, compute_bound", [
    ([[3, 1, 5, 0], [2, 0, 0, 0]], [[1, 0, 0, 0], [1, 1, 1, 1]], False),  # few tokens: HBM-bound experts
    ([[900, 0, 0, 0], [800, 0, 0, 0]], [[1, 0, 0, 0], [1, 0, 0, 0]], True),  # 900 tokens: FLOP-bound
])
def test_cost_model_adds_expert_time_to_the_right_side(counts, resident, compute_bound):
    inner = Inner(0.002, 0.003, 0.0005, 0.0001)
    m = layers(counts=counts, resident=resident, prefetch_hit_rate=0.5)
    ref = layers(counts=counts, resident=resident, prefetch_hit_rate=0.5)
    other_layer_s = (0.002 + 0.003 + 0.0005) / 2  # the inner step's compute + memory + comm, per layer
    total, exposed, flops, nbytes = ref.step(1, other_layer_s)
    assert (flops / F_GPU >= nbytes / BW_GPU) == compute_bound
    c = MoECostModel(inner, m, 2).step_cost(Shape())
    gpu = total - exposed
    compute_s = 0.002 + (gpu if compute_bound else 0.0)
    memory_s = 0.003 + (0.0 if compute_bound else gpu) + exposed
    assert c.compute_s == pytest.approx(compute_s, rel=1e-12) and c.memory_s == pytest.approx(memory_s, rel=1e-12)
    assert c.time_s == pytest.approx(compute_s + memory_s + 0.0005 + 0.0001, rel=1e-12)
    assert (c.comm_s, c.overhead_s) == (0.0005, 0.0001)
    assert c.flops == pytest.approx(1e9 + flops) and c.bytes == pytest.approx(1e6 + nbytes)
    assert c.bound == (BOUND_COMPUTE if compute_s >= memory_s else BOUND_MEMORY)
    if not compute_bound:
        assert exposed > 0 and c.bound == BOUND_MEMORY  # a 14 ms fetch stalls the step


def test_cost_model_keeps_the_inner_bound_when_overheads_dominate():
    m = layers(counts=[[1, 0, 0, 0], [1, 0, 0, 0]], resident=np.ones((2, 4)))
    c = MoECostModel(Inner(1e-6, 1e-6, 0.5, 0.5, bound=BOUND_OVERHEAD), m, 2).step_cost(Shape())
    assert c.bound == BOUND_OVERHEAD and c.time_s == pytest.approx(1.0 + 2e-6 + 2 * t_gpu(1), rel=1e-9)
    big = layers(counts=[[900, 0, 0, 0], [900, 0, 0, 0]], resident=np.ones((2, 4)))
    assert MoECostModel(Inner(1e-6, 1e-6, 0.0, 0.0), big, 2).step_cost(Shape()).bound == BOUND_COMPUTE
    d = MoECostModel(Inner(0, 0, 0, 0), layers(), 2).describe()["moe"]
    assert d["rate_sources"] == {"gpu": "test rates"} and d["expert_params_per_rank"] == P
    assert (d["routing"], d["placement"]) == ("scripted", "static")
    assert d["host_link_gb_per_s"] == 25.0 and d["host_tflops"] == 2.0 and d["host_dram_gb_per_s"] == 200.0
    assert (d["exec"], d["cpu_token_threshold"], d["prefetch_hit_rate"], d["gpu_expert_slots"]) == ("fiddler", 2, 0.0, 3)


@pytest.mark.parametrize("kw, message", [
    ({"policy": "gpu"}, "policy='gpu' is invalid; allowed: fetch, cpu, fiddler, auto"),
    ({"cpu_token_threshold": -1}, "cpu_token_threshold must be >= 0, got -1"),
    ({"prefetch_hit_rate": 1.5}, "prefetch_hit_rate must be in [0, 1], got 1.5"),
    ({"prefetch_hit_rate": -0.1}, "prefetch_hit_rate must be in [0, 1], got -0.1"),
])
def test_expert_exec_checks(kw, message):
    with pytest.raises(ValueError) as e:
        ExpertExec(**kw)
    assert str(e.value) == message
    assert ExpertExec(cpu_token_threshold=0, prefetch_hit_rate=1.0).prefetch_hit_rate == 1.0


def test_no_expert_touched_has_no_hit_rate():
    assert moe_metrics([dict.fromkeys(("touched", "hits", "fetched", "on_cpu", "link_bytes", "gpu_s", "cpu_s", "link_s",
                                       "link_wait_s", "moe_s", "steps"), 0.0)])["moe_expert_hit_rate"] is None
