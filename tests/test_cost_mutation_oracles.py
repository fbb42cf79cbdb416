"""Hand-computed oracles for simulator/cost (issue 19, mutation testing): per-op FLOPs and bytes
written out from formulas.md "Roofline step time" and the ops.py docstrings on toy models, the
roofline sums on a toy device with round peaks, the engine's CPU time (engine.py docstring), and
the provenance records' text on a stand-in fidelity file."""
import dataclasses
import json
from types import SimpleNamespace

import pytest
from toy_model import TOY

from hardware import DeviceSpec, load_device
from hardware.catalog import DATA_DIR as HARDWARE_DIR
from simulator.cost import device_choice, known_error
from simulator.cost.build import decode_attention_speedup
from simulator.cost.engine import EngineCostModel, EngineSpec, _toml_value, engine_names, engine_toml, load_engine
from simulator.cost.kernel_stack import KernelStack
from simulator.cost.ops import (
    OpCost,
    attention_ops,
    eviction_ops,
    expected_active_experts,
    token_ops,
    token_ops_without_experts,
)
from simulator.cost.roofline import RooflineCostModel, RooflineParams
from simulator.cost.shape import BatchShape, KvWork
from simulator.cost.step import BOUND_COMPUTE, BOUND_MEMORY, BOUND_OVERHEAD, StepCost
from simulator.errors import ServesimError
from simulator.models import ModelSpec


def moe_model(**kw):
    """h=8, H=2, Hkv=1, d=4, 3 layers (1 dense, 2 MoE): 4 experts, top-2, expert width 7, shared width 5."""
    base = dict(name="toy-moe", model_type="mixtral", num_layers=3, hidden_size=8, num_heads=2, num_kv_heads=1,
                head_dim=4, intermediate_size=16, vocab_size=10, tie_word_embeddings=False, gated_mlp=True,
                max_position_embeddings=64, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=7,
                num_moe_layers=2, shared_expert_intermediate_size=5)
    return ModelSpec(**(base | kw))


# ---- ops.py ------------------------------------------------------------------------------------
def test_expected_active_experts_closed_form():
    # E (1 - (1 - k/E)^b) = 4 (1 - 0.5^3) = 3.5
    assert expected_active_experts(4, 2, 3) == 3.5
    assert expected_active_experts(8, 2, 1) == 2.0


def by_name(ops):
    return {op.name: op for op in ops}


def test_moe_ops_hand_computed_tp1():
    # t=3 tokens, beta=2, 2 MoE layers, h=8; experts stored at 1 byte per weight
    ops = by_name(token_ops(moe_model(weight_bytes_per_param={"experts": 1.0}), 3, 2, 1))
    # router: 2 t (h E) L FLOPs; bytes (h E beta + t (h + E) beta) L
    assert ops["moe_router"] == OpCost("moe_router", 2 * 3 * 32 * 2, (32 * 2 + 3 * (8 + 4) * 2) * 2)
    # experts: routed = t k = 6; gated up 2*7 = 14 wide; params per expert h*14 + 7*h = 168; active 3.5
    flops = 2 * 6 * 168 * 2
    weights = 168 * 3.5 * 1.0 * 2  # distinct experts' weights, 1 byte each
    acts = 6 * (8 + 14 + 7 + 8) * 2 * 2  # in, up out, down in, out per routed token
    assert ops["moe_experts"] == OpCost("moe_experts", flops, weights + acts)
    # shared expert: a dense gated MLP of width 5 on every token of the 2 MoE layers
    assert ops["moe_shared_up"] == OpCost("moe_shared_up", 2 * 3 * 80 * 2, (80 * 2 + 3 * (8 + 10) * 2) * 2)
    assert ops["moe_shared_down"] == OpCost("moe_shared_down", 2 * 3 * 40 * 2, (40 * 2 + 3 * (5 + 8) * 2) * 2)
    # the dense layer: gated MLP of width 16 on 1 layer
    assert ops["mlp_up"] == OpCost("mlp_up", 2 * 3 * (8 * 32) * 1, (8 * 32 * 2 + 3 * (8 + 32) * 2) * 1)
    names = [op.name for op in token_ops_without_experts(moe_model(), 3, 2, 1)]
    assert names == ["attn_qkv", "attn_out", "mlp_up", "mlp_down", "moe_router", "moe_shared_up",
                     "moe_shared_down", "elementwise"]


def test_moe_ops_hand_computed_tp2_and_ungated():
    ops = by_name(token_ops(moe_model(), 3, 2, 2))
    # expert width 7 // 2 = 3 per rank, gated up 6; params per expert 8*6 + 3*8 = 72; active 3.5; beta 2
    assert ops["moe_experts"] == OpCost("moe_experts", 2 * 6 * 72 * 2, 72 * 3.5 * 2 * 2 + 6 * (8 + 6 + 3 + 8) * 2 * 2)
    assert ops["moe_shared_up"] == OpCost("moe_shared_up", 2 * 3 * (8 * 4) * 2, (32 * 2 + 3 * (8 + 4) * 2) * 2)
    assert ops["all_reduce"] == OpCost("all_reduce", comm_bytes=3 * 8 * 2, count=2 * 3)
    plain = by_name(token_ops(moe_model(gated_mlp=False), 3, 2, 1))
    # ungated: up is 7 wide; params per expert 8*7 + 7*8 = 112
    assert plain["moe_experts"] == OpCost("moe_experts", 2 * 6 * 112 * 2, 112 * 3.5 * 2 * 2 + 6 * (8 + 7 + 7 + 8) * 2 * 2)
    assert [op.name for op in token_ops_without_experts(moe_model(), 3, 2, 2)][-1] == "all_reduce"


def test_attention_ops_hand_computed():
    m = moe_model()  # H=2, Hkv=1, d=4, 3 layers; beta 2, KV cache at 1 byte
    f, kv, qo = 4 * 2 * 4 * 3, 2 * 1 * 4 * 1 * 3, 2 * 2 * 4 * 2 * 3  # per pair; per cached token; per query token
    shape = BatchShape(prefill_chunks=((4, 2), (3, 0)), num_decode=2, decode_context_sum=10, num_logits=3,
                       decode_kv_read_sum=6)
    pairs = 4 * 2 + 4 * 5 / 2 + 3 * 4 / 2  # each new token sees the context and its own prefix
    assert attention_ops(m, shape, 2, 1, kv_beta=1) == [
        OpCost("attn_prefill", f * pairs, kv * (2 + 2 * 7) + qo * 7),
        OpCost("attn_decode", f * 10, kv * (6 + 2) + qo * 2),
    ]
    assert attention_ops(m, BatchShape(num_decode=1, decode_context_sum=5, num_logits=1), 2, 1) == [
        OpCost("attn_decode", f * 5, 2 * kv * (5 + 1) + qo)]  # KV at beta = 2 bytes


def test_eviction_ops_hand_computed():
    work = KvWork(score_pairs=5, score_tokens=7, scan_tokens=11, moved_tokens=13, search_keys=17)
    # TOY on one rank: heads 4, KV heads 2, d 8, 2 layers; scores fp32 (4 bytes); beta 2
    assert eviction_ops(TOY, work, 2, 1) == [
        OpCost("kv_score_materialize", flops=4 * 2 * 5, bytes=2 * 4 * 4 * 2 * 5),
        OpCost("kv_score_update", flops=4 * 2 * 7, bytes=2 * 4 * 2 * 2 * 7),
        OpCost("kv_victim_select", flops=2 * 2 * 11, bytes=4 * 2 * 2 * 11),
        OpCost("kv_compact", bytes=2 * 2 * 2 * 2 * 8 * 2 * 13),
        OpCost("kv_block_search", flops=2 * 4 * 8 * 2 * 17, bytes=2 * 2 * 8 * 2 * 17),
    ]
    # tp = 3: 4 // 3 = 1 query head and ceil(2 / 3) = 1 KV head per rank
    assert eviction_ops(TOY, work, 2, 3) == [
        OpCost("kv_score_materialize", flops=1 * 2 * 5, bytes=2 * 4 * 1 * 2 * 5),
        OpCost("kv_score_update", flops=1 * 2 * 7, bytes=2 * 4 * 1 * 2 * 7),
        OpCost("kv_victim_select", flops=1 * 2 * 11, bytes=4 * 1 * 2 * 11),
        OpCost("kv_compact", bytes=2 * 2 * 2 * 1 * 8 * 2 * 13),
        OpCost("kv_block_search", flops=2 * 1 * 8 * 2 * 17, bytes=2 * 1 * 8 * 2 * 17),
    ]
    assert eviction_ops(TOY, KvWork(), 2, 1) == []
    assert [op.name for op in eviction_ops(TOY, KvWork(scan_tokens=1.0), 2, 1)] == ["kv_victim_select"]


def test_kv_work_adds_field_by_field():
    assert KvWork(1, 2, 3, 4, 5) + KvWork(10, 20, 30, 40, 50) == KvWork(11, 22, 33, 44, 55)
    assert BatchShape(num_decode=1) != BatchShape(num_decode=2)
    assert BatchShape(num_decode=1, decode_context_sum=3) == BatchShape(num_decode=1, decode_context_sum=3)


# ---- roofline.py -------------------------------------------------------------------------------
# 1000 FLOP/s, 1000 B/s, 1000 B/s per direction between GPUs: seconds = FLOPs / 1000 = bytes / 1000
SLOW = DeviceSpec(name="slow", display_name="slow", vendor="none", kind="gpu", memory_gib=80.0,
                  memory_bandwidth_gb_per_s=1e-6, peak_tflops={"bf16": 1e-9}, tdp_w=500.0, idle_w=100.0,
                  host_link_kind="pcie", host_link_gb_per_s=1e-6, interconnect_kind="nvlink",
                  interconnect_bidirectional_gb_per_s=2e-6, price_usd_per_hour=2.0, price_as_of="2026-03",
                  price_source="test")


def weights_op(model, t, beta, tp):
    """A stand-in token op: 100 FLOPs per token, 1000 bytes of weights plus 10 per token."""
    return [OpCost("w", flops=100.0 * t, bytes=1000.0 + 10.0 * t)]


def roofline(builder=weights_op, *, tp=1, overhead=0.125, table=None):
    m = RooflineCostModel(TOY, SLOW, tp=tp, params=RooflineParams(step_overhead_s=overhead, collective_latency_s=0.01),
                          token_op_builder=builder, eviction_times=table)
    assert m.flops_per_s == pytest.approx(1000.0, rel=1e-15) and m.bytes_per_s == 1000.0
    m.flops_per_s = 1000.0  # exactly: 1e-9 TFLOP/s x 1e12 is one ulp above, which would break exact ties
    return m


def approx(*values):
    return pytest.approx(values, rel=1e-12, abs=1e-15)


def test_roofline_decode_step_hand_computed():
    c = roofline().step_cost(BatchShape(num_decode=2, decode_context_sum=10, kv_work=KvWork(moved_tokens=1)))
    # token op: 200 FLOPs (0.2 s) vs 1020 B (1.02 s): memory. decode attention (TOY, bf16): 4*4*8*2 = 256
    # FLOPs per pair x 10 = 2560 (2.56 s) vs KV 128 B x (10 + 2) + Q/O 256 B x 2 = 2048 B: compute.
    # eviction: gather 1 token = 2 * 2 * 2 B * 2 KV heads * 8 * 2 layers = 256 B (0.256 s)
    assert (c.compute_s, c.memory_s, c.comm_s, c.overhead_s, c.evict_s) == approx(2.56, 1.02, 0.0, 0.125, 0.256)
    assert c.time_s == pytest.approx(2.56 + 1.02 + 0.125 + 0.256, rel=1e-12)
    assert (c.flops, c.bytes) == (200.0 + 2560.0, 1020.0 + 2048.0 + 256.0)
    assert c.bound == BOUND_COMPUTE and c.source == "roofline"


def test_roofline_prefill_and_decode_attention_add_up():
    # prefill chunk (2, 0): pairs 3 -> 768 FLOPs, bytes 128 * 4 + 256 * 2 = 1024: memory 1.024 s;
    # decode of 1 over 3 entries, 1 read: 768 FLOPs, 128 * 2 + 256 = 512 B: compute 0.768 s
    c = roofline(overhead=0.0).step_cost(BatchShape(prefill_chunks=((2, 0),), num_decode=1, decode_context_sum=3,
                                                    decode_kv_read_sum=1))
    # token op for 3 tokens: 300 FLOPs vs 1030 B: memory 1.03 s
    assert (c.compute_s, c.memory_s) == approx(0.768, 1.024 + 1.03)
    assert (c.flops, c.bytes) == (300.0 + 768.0 + 768.0, 1030.0 + 1024.0 + 512.0)
    assert c.bound == BOUND_MEMORY
    two = roofline(overhead=0.0).step_cost(BatchShape(prefill_chunks=((1, 0), (1, 0)), num_decode=0))
    # two chunks of 1: pairs 2 -> 512 FLOPs; bytes 128 * 4 + 256 * 2 = 1024 B; all memory-bound
    assert two.memory_s == pytest.approx(1.024 + 1.02, rel=1e-12) and two.bytes == 1020.0 + 1024.0


def test_roofline_empty_parts_cost_nothing():
    # no tokens, no logits, no attention, no KV policy: only the fixed overhead (not the weights)
    c = roofline().step_cost(BatchShape())
    assert (c.time_s, c.flops, c.bytes, c.bound) == (0.125, 0.0, 0.0, BOUND_OVERHEAD)
    d = roofline().step_cost(BatchShape(num_decode=1, decode_context_sum=1))
    assert d.evict_s == 0.0 and d.bytes == 1010.0 + 128 * 2 + 256 and d.flops == 100.0 + 256.0


def test_roofline_ties_count_as_compute():
    # one op with equal FLOP and byte time counts as compute
    assert roofline()._sum_ops([OpCost("c", flops=500.0, bytes=500.0)]) == (0.5, 0.0, 0.0, 500.0, 500.0)
    # a one-token prefill adds attention: 256 FLOPs, 128 B x 2 + 256 B = 512 B -> memory 0.512 s
    shape = BatchShape(prefill_chunks=((1, 0),))
    both = roofline(lambda m, t, b, tp: [OpCost("c", flops=1024.0), OpCost("m", bytes=512.0)], overhead=1.024)
    c = both.step_cost(shape)  # compute 1.024 = memory 0.512 + 0.512 = overhead 1.024: compute
    assert (c.compute_s, c.memory_s, c.bound) == (1.024, 1.024, BOUND_COMPUTE)
    assert (c.flops, c.bytes) == (1024.0 + 256.0, 512.0 + 512.0)
    mem = roofline(lambda m, t, b, tp: [OpCost("m", bytes=512.0)], overhead=1.024)
    c = mem.step_cost(shape)  # memory 1.024 = overhead 1.024: memory
    assert (c.compute_s, c.memory_s, c.bound, c.time_s) == (0.0, 1.024, BOUND_MEMORY, 2.048)
    assert mem.step_cost(shape)._replace() == c  # the token ops are cached: the same answer again
    assert roofline(lambda m, t, b, tp: [OpCost("m", bytes=512.0)], overhead=2.0).step_cost(shape).bound == \
        BOUND_OVERHEAD
    assert roofline(lambda m, t, b, tp: [OpCost("c", flops=1024.0)], overhead=2.0).step_cost(shape).bound == \
        BOUND_OVERHEAD


def test_roofline_all_reduce_ring_and_latency():
    ops = [OpCost("all_reduce", comm_bytes=400.0, count=3), OpCost("c", flops=100.0)]  # a collective first
    # ring: 2 (tp - 1) / tp x 400 B over 1000 B/s = 0.4 s, + 0.01 s latency; 3 launches; then the compute op
    got = roofline(tp=2)._sum_ops(ops)
    assert got == pytest.approx((0.1, 0.0, 3 * 0.41, 100.0, 0.0), rel=1e-12)
    assert roofline(tp=1)._sum_ops(ops) == pytest.approx((0.1, 0.0, 0.0, 100.0, 0.0), rel=1e-12)  # one GPU: free
    c = roofline(lambda m, t, b, tp: ops, tp=2, overhead=0.0).step_cost(BatchShape(prefill_chunks=((1, 0),)))
    assert c.comm_s == pytest.approx(1.23, rel=1e-12) and c.bound == BOUND_OVERHEAD
    # attention on one of 2 ranks (2 heads, 1 KV head): 128 FLOPs, 64 B x 2 + 128 B = 256 B -> memory 0.256 s
    assert c.time_s == pytest.approx(0.1 + 1.23 + 0.256, rel=1e-12) and (c.flops, c.bytes) == (228.0, 256.0)


class Table:
    """Eviction-kernel hook: a measured 0.05 s for the gather, nothing for other ops."""

    def op_time_s(self, op):
        return 0.05 if op.name == "kv_compact" else None


def test_roofline_eviction_uses_measured_ops_where_the_table_has_them():
    work = KvWork(scan_tokens=3, moved_tokens=1)
    # victim select: 2 KV heads x 2 layers x 3 = 12 FLOPs, 4 B x 12 = 48 B -> 0.048 s; gather 256 B
    plain = roofline(overhead=0.0).step_cost(BatchShape(kv_work=work))
    assert plain.evict_s == pytest.approx(0.048 + 0.256, rel=1e-12)
    assert (plain.flops, plain.bytes) == (12.0, 48.0 + 256.0)
    timed = roofline(overhead=0.0, table=Table()).step_cost(BatchShape(kv_work=work))
    assert timed.evict_s == pytest.approx(0.048 + 0.05, rel=1e-12)
    assert (timed.flops, timed.bytes) == (12.0, 48.0 + 256.0)
    assert timed.bound == BOUND_OVERHEAD and timed.time_s == pytest.approx(0.098, rel=1e-12)


# ---- engine.py ---------------------------------------------------------------------------------
ENGINE = dict(name="e", display_name="E", step_overhead_ms=1.0, tp_overhead_ms=0.5, per_seq_us=10.0,
              per_seq_tp_us=2.0, per_prefill_token_us=0.1, per_layer_us=20.0)


class Inner:
    """A kernel model whose every step takes 2 ms: 1.5 ms compute, 0.5 ms memory."""

    def __init__(self, measured=False, time_s=2e-3):
        self.measured_overhead, self.time_s, self.marker = measured, time_s, "inner"

    def step_cost(self, shape):
        return StepCost(self.time_s, 0.75 * self.time_s, 0.25 * self.time_s, 0.0, 0.0, 7.0, 9.0, 0, "fit", 0.0)

    def describe(self):
        return {"kind": "inner"}


def test_step_cpu_s_hand_computed():
    e = EngineSpec(**ENGINE)
    # tp 2, 3 layers: 1 ms + 0.5 ms x 1 + 4 x (10 + 2 x 1) us; decode-only with CUDA graphs: no launches
    assert e.step_cpu_s(4, 0, 3, 2) == pytest.approx(1.548e-3, rel=1e-12)
    # with 100 prefill tokens: + 0.1 us x 100 + 20 us x 3 layers (eager); 2 running
    assert e.step_cpu_s(2, 100, 3, 2) == pytest.approx(1.5e-3 + 24e-6 + 10e-6 + 60e-6, rel=1e-12)
    eager = EngineSpec(**ENGINE, cuda_graphs=False)
    assert eager.step_cpu_s(4, 0, 3, 1) == pytest.approx(1e-3 + 40e-6 + 60e-6, rel=1e-12)


@pytest.mark.parametrize("shape,cpu", [
    (BatchShape(num_decode=4, decode_context_sum=40, num_logits=4), 1.548e-3),
    (BatchShape(prefill_chunks=((100, 0),), num_decode=1, decode_context_sum=5, num_logits=1),
     1.5e-3 + 24e-6 + 10e-6 + 60e-6),
    (BatchShape(), 1.5e-3 + 12e-6),  # nothing running still counts one sequence
    (BatchShape(prefill_chunks=((1, 0),), num_logits=1), 1.5e-3 + 12e-6 + 0.1e-6 + 60e-6),  # 1 token: eager
])
def test_engine_cost_model_adds_the_cpu_time(shape, cpu):
    m = EngineCostModel(Inner(), EngineSpec(**ENGINE), tp=2, num_layers=3)
    c = m.step_cost(shape)
    assert c.time_s == pytest.approx(2e-3 + cpu, rel=1e-12) and c.overhead_s == pytest.approx(cpu, rel=1e-12)
    assert (c.compute_s, c.memory_s, c.flops, c.bytes, c.source) == (1.5e-3, 0.5e-3, 7.0, 9.0, "fit")
    assert c.bound == BOUND_OVERHEAD  # cpu > 1.5 ms of compute
    assert c == tuple(m.step_cost(shape))
    assert m.marker == "inner" and m.describe() == {"kind": "inner", "engine": EngineSpec(**ENGINE).describe()}
    assert m.num_running == 0


def test_engine_cost_model_eager_and_overlap():
    eager = EngineCostModel(Inner(), EngineSpec(**ENGINE, cuda_graphs=False), tp=1, num_layers=3)
    c = eager.step_cost(BatchShape(num_decode=4, decode_context_sum=40, num_logits=4))
    assert c.overhead_s == pytest.approx(1e-3 + 40e-6 + 60e-6, rel=1e-12)
    hidden = EngineCostModel(Inner(), EngineSpec(**ENGINE, overlap=True), tp=2, num_layers=3)
    c = hidden.step_cost(BatchShape(num_decode=4, decode_context_sum=40, num_logits=4))
    assert (c.time_s, c.overhead_s, c.bound) == (2e-3, 0.0, BOUND_COMPUTE)  # 1.548 ms hidden under 2 ms
    short = EngineCostModel(Inner(time_s=0.5e-3), EngineSpec(**ENGINE, overlap=True), tp=2, num_layers=3)
    c = short.step_cost(BatchShape(num_decode=4, decode_context_sum=40, num_logits=4))
    assert c.time_s == pytest.approx(1.548e-3, rel=1e-12) and c.overhead_s == pytest.approx(1.048e-3, rel=1e-12)
    assert c.bound == BOUND_OVERHEAD  # 1.048 ms exposed > 0.375 ms compute
    mem = EngineCostModel(SimpleNamespace(step_cost=lambda s: StepCost(2e-3, 0.5e-3, 1.5e-3, 0.0, 0.0, 1.0, 1.0, 1,
                                                                       "fit", 0.0)),
                          EngineSpec(**ENGINE, overlap=True), tp=2, num_layers=3)
    assert mem.step_cost(BatchShape(num_decode=1)).bound == BOUND_MEMORY


def test_engine_cost_model_passes_measured_steps_through():
    shape = BatchShape(num_decode=4, decode_context_sum=40, num_logits=4)
    measured = EngineCostModel(Inner(measured=True), EngineSpec(**ENGINE), tp=2, num_layers=3)
    assert measured.step_cost(shape) == Inner().step_cost(shape)
    free = EngineCostModel(Inner(), EngineSpec(name="k", display_name="K"), tp=2, num_layers=3)
    assert free.step_cost(shape) == Inner().step_cost(shape)


def test_toml_values():
    assert _toml_value(True) == "true" and _toml_value(False) == "false"
    assert _toml_value(3) == "3" and _toml_value(0.1234567891) == "0.123457"
    assert _toml_value([1, "a", False]) == '[1, "a", false]'
    assert _toml_value({"a": 1, "b": [2.5]}) == "{ a = 1, b = [2.5] }"
    assert _toml_value('x"y\\z') == '"x\\"y\\\\z"'


def test_engine_toml_writes_only_what_differs():
    spec = EngineSpec(name="e", display_name="E", step_overhead_ms=1.5, cuda_graphs=False,
                      sources={"step_overhead_ms": "paper"}, notes='n "q"', fit={"points": 3})
    assert engine_toml(spec) == ('name = "e"\ndisplay_name = "E"\nstep_overhead_ms = 1.5\ncuda_graphs = false\n\n'
                                 '[sources]\nnotes = "n \\"q\\""\nstep_overhead_ms = "paper"\n\n[fit]\npoints = 3\n')
    assert engine_toml(EngineSpec(name="k", display_name="K")) == 'name = "k"\ndisplay_name = "K"\n\n[sources]\nnotes = ""\n'
    shipped = engine_toml(load_engine("vllm"))  # loaded from a file: its origin is not written back
    assert "origin" not in shipped and shipped.startswith('name = "vllm"\n')


def test_engine_names_are_the_shipped_files():
    from simulator.cost.engine import ENGINE_DIR

    assert engine_names() == sorted(p.name[:-5] for p in ENGINE_DIR.iterdir() if p.name.endswith(".toml"))
    assert "vllm" in engine_names() and "ideal" in engine_names()


def test_decode_attention_speedup():
    shared = EngineSpec(name="e", display_name="E", attn_decode_speedup=1.5)
    per_head = EngineSpec(name="e", display_name="E", attn_decode_speedup=1.5, gqa_kv_shared=False)
    assert decode_attention_speedup(shared, TOY) == 1.5
    assert decode_attention_speedup(per_head, TOY) == 1.5 * 2 / 4  # KV read once per query head: Hkv/H as fast
    assert decode_attention_speedup(per_head, SimpleNamespace(num_kv_heads=0, num_heads=4)) == 1.5


# ---- kernel_stack.py ---------------------------------------------------------------------------
class Layer:
    def __init__(self, ops, answer, *, reduce=None, dev="d", dtype="bf16", table=None, describe=None):
        self.ops, self.answer, self.reduce = set(ops), answer, reduce
        self.provenance, self.device, self.dtype = {"table": table} if table else {"trained_on": "t"}, dev, dtype
        if describe is not None:
            self.describe = lambda: describe
        if reduce is not None:
            self.all_reduce_s = lambda nbytes, n, latency_s=None: reduce(nbytes, n, latency_s)

    def predict(self, op, shape, dtype):
        return self.answer.get(op)

    def predict_clamped(self, op, shape, dtype):
        got = self.answer.get(op)
        return None if got is None else (got[0] * shape.get("scale", 10), f"{got[1]}@{dtype}")


def test_kernel_stack_answers_from_the_first_layer_that_knows():
    top = Layer({"a"}, {"a": (1.0, "profile")}, dev="dev-top", dtype="fp16", table="t.csv")
    bottom = Layer({"a", "b"}, {"a": (2.0, "fit"), "b": (3.0, "fit")}, reduce=lambda b, n, lat: (b * n, lat),
                   describe={"kind": "calibration"})
    s = KernelStack(top, None, bottom)
    assert len(s.layers) == 2 and s.ops == {"a", "b"}
    assert (s.provenance, s.device, s.dtype) == ({"table": "t.csv"}, "dev-top", "fp16")
    assert s.predict("a", {}, "bf16") == (1.0, "profile") and s.predict("b", {}, "bf16") == (3.0, "fit")
    assert s.predict_clamped("a", {"scale": 5}, "fp8") == (5.0, "profile@fp8")
    assert s.predict_clamped("b", {}, "bf16") == (30.0, "fit@bf16") and s.predict("c", {}, "bf16") is None
    assert s.answers("a") is top and s.answers("b") is bottom and s.answers("c") is None
    assert s.all_reduce_s(100.0, 4, latency_s=0.5) == (400.0, 0.5)
    assert s.describe() == [{"profile": "t.csv", "device": "dev-top", "dtype": "fp16"}, {"kind": "calibration"}]
    untabled = KernelStack(Layer({"a"}, {}))
    assert untabled.describe() == [{"profile": "t", "device": "d", "dtype": "bf16"}]
    assert untabled.all_reduce_s(1.0, 2) is None
    none_first = KernelStack(Layer({"a"}, {}, reduce=lambda b, n, lat: None), Layer({"a"}, {}, reduce=lambda b, n, lat: (1.0, "x")))
    assert none_first.all_reduce_s(1.0, 2) == (1.0, "x")
    with pytest.raises(ValueError, match="^a kernel stack needs at least one predictor$"):
        KernelStack(None)


# ---- device_choice.py --------------------------------------------------------------------------
def test_shipped_calibration_paths_and_catalog_origins(tmp_path):
    assert device_choice._shipped("h100-sxm") == device_choice.DATA_DIR / "h100-sxm" / "device.json"
    assert device_choice._shipped("no-such-device") is None
    assert device_choice._is_catalog("") is True
    assert device_choice._is_catalog(str(HARDWARE_DIR / "h100-sxm.toml")) is True
    assert device_choice._is_catalog(str(tmp_path / "h100-sxm.toml")) is False


def test_transfer_error_is_the_shipped_transferred_calibrations_statement(tmp_path, monkeypatch):
    h200 = json.loads((device_choice.DATA_DIR / "h200" / "device.json").read_text())["provenance"]
    assert h200["kind"] == "transfer" and device_choice._transfer_error() == h200["known_error"]
    monkeypatch.setattr(device_choice, "DATA_DIR", tmp_path)
    assert device_choice._transfer_error() == "transfer model (error not measured)"
    for name, prov in (("a", {"kind": "fit", "known_error": "fit error"}), ("b", {"kind": "transfer"}),
                       ("c", {"kind": "transfer", "known_error": "c error"}), ("d", {"kind": "transfer",
                                                                                    "known_error": "d error"})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "device.json").write_text(json.dumps({"provenance": prov}))
    assert device_choice._transfer_error() == "c error"  # the first transferred one (by name) that states it
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "device.json").write_text("{}")  # no provenance at all: skipped
    assert device_choice._transfer_error() == "c error"


# ---- known_error.py ----------------------------------------------------------------------------
FID = {"device": {"dev-a": {"points": 5, "median_abs_error_pct": 12.4, "p90_abs_error_pct": 30.6},
                  "dev-b": {"points": 2, "median_abs_error_pct": 1.0, "p90_abs_error_pct": 2.0},
                  "dev-c": {"points": 3, "median_abs_error_pct": 8.6, "p90_abs_error_pct": 9.4}},
       "calibration_kind": {"transfer": {"points": 7, "median_abs_error_pct": 20.0, "p90_abs_error_pct": 41.0}},
       "engine": {"vllm": {"points": 9}}, "architecture": {"dense": {}, "moe": {}}}


@pytest.fixture
def fid(monkeypatch):
    monkeypatch.setattr(known_error, "_fidelity", lambda: FID)
    return FID


def test_end_to_end_error_own_points_group_or_none(fid):
    assert known_error.end_to_end_error("dev-a", "fit") == {
        "basis": "5 held-out published points on dev-a", **FID["device"]["dev-a"],
        "text": "held-out published points on dev-a: median |error| 12%, p90 31% (5 speed points)"}
    assert known_error.end_to_end_error("dev-c", None)["text"] == (
        "held-out published points on dev-c: median |error| 9%, p90 9% (3 speed points)")
    assert known_error.end_to_end_error("dev-b", "transfer") == {
        "basis": "no (or < 3) published points on dev-b: devices with transfer calibrations",
        **FID["calibration_kind"]["transfer"],
        "text": "no published points on dev-b; devices with transfer calibrations: median |error| 20%, p90 41% "
                "(7 points)"}
    assert known_error.end_to_end_error("dev-z", "fit") == {"basis": "none",
                                                             "text": "no published end-to-end point for dev-z"}


def test_end_to_end_error_without_a_fidelity_file(monkeypatch):
    monkeypatch.setattr(known_error, "_fidelity", lambda: {})
    assert known_error.end_to_end_error("dev-a", "fit") == {
        "basis": "none", "text": "end-to-end error not measured (profiles/data/fidelity.json missing)"}


def test_kernels_labels():
    k = known_error._kernels
    assert k({"kind": "roofline"}) == ("ideal roofline", known_error.IDEAL_NOTE)
    assert k({"kind": "speculative", "target": {"kind": "roofline"}}) == ("ideal roofline for the target",
                                                                          known_error.IDEAL_NOTE)
    assert k({"kind": "speculative", "target": "x", "profile": "p", "known_error": "E"}) == ("measured profile p", "E")
    assert k({"calibration": {"calibrated_by": "bench.json", "known_error": "E1"}}) == (
        "calibrated on your measurements (bench.json)", "E1")
    assert k({"calibration": {"calibrated_by": "bench.json"}}) == ("calibrated on your measurements (bench.json)", "")
    assert k({"calibration": {"device": "dev-a", "kind": "fit", "known_error": "E2"}}) == (
        "calibrated dev-a (fitted on measured tables)", "E2")
    assert k({"calibration": {"device": "dev-b", "kind": "transfer"}, "measured_profile": "p.csv"}) == (
        "measured profile p.csv over calibrated dev-b (transfer model)", "")
    assert k({"calibration": {"device": "dev-c", "kind": "other"}}) == ("calibrated dev-c (other)", "")
    assert k({"profile": "prof", "known_error": "E3"}) == ("measured profile prof", "E3")
    assert k({}) == ("measured profile ", "")
    assert known_error.kernel_error_of({"calibration": {"known_error": "E4"}}) == "E4"
    assert known_error.kernel_error_of({}) == "" and known_error.kernel_error_of({"calibration": None}) == ""


def test_prediction_provenance_calibrated_with_uncovered_engine_and_architecture(fid):
    cm = {"kind": "calibrated", "calibration": {"device": "dev-a", "kind": "fit", "known_error": "K"}}
    engine = {"name": "trtllm", "version": "0.9", "device_model": "calibrated",
              "sources": {"per_seq_us": "fitted on x", "step_overhead_ms": "as vllm: fitted on y",
                          "tp_overhead_ms": "as vllm: paper", "per_layer_us": "paper"}}
    p = known_error.prediction_provenance(cm, engine, "dev-a", power={"kind": "measured", "known_error": "P"},
                                          architecture="mla")
    assert p == {
        "label": "calibrated dev-a (fitted on measured tables)", "calibrated": True, "kind": "fit",
        "kernels": "calibrated dev-a (fitted on measured tables)", "kernels_known_error": "K",
        "engine": "trtllm 0.9 (fitted: per_seq_us) (borrowed fits: step_overhead_ms)",
        "known_error": "held-out published points on dev-a: median |error| 12%, p90 31% (5 speed points); engine "
                       "trtllm itself has no held-out published points (its cost is not validated end to end); no "
                       "held-out published point for a mla model (the error above is for dense, moe models)",
        "speed_error_median_pct": 12.4, "speed_error_p90_pct": 30.6,
        "error_basis": "5 held-out published points on dev-a", "power": "measured: P"}
    assert known_error.provenance_line(p) == (
        "cost model: calibrated dev-a (fitted on measured tables) + engine trtllm 0.9 (fitted: per_seq_us) "
        f"(borrowed fits: step_overhead_ms); known error: {p['known_error']}")
    covered = known_error.prediction_provenance(cm, {"name": "vllm", "version": "1"}, "dev-a", architecture="dense")
    assert covered["known_error"] == (
        "held-out published points on dev-a: median |error| 12%, p90 31% (5 speed points)")
    assert "power" not in covered and covered["engine"] == "vllm 1"
    nowhere = known_error.prediction_provenance(cm, {"name": "trtllm"}, "dev-z", architecture="mla")
    assert nowhere["known_error"] == "no published end-to-end point for dev-z" and nowhere["error_basis"] == "none"


def test_prediction_provenance_ideal_own_and_profile(fid):
    roof = known_error.prediction_provenance({"kind": "roofline"}, {"name": "ideal", "device_model": "ideal"}, "dev-a",
                                             architecture="mla")
    assert roof == {"label": "ideal roofline (uncalibrated)", "calibrated": False, "kind": "roofline",
                    "kernels": "ideal roofline", "kernels_known_error": known_error.IDEAL_NOTE, "engine": "ideal",
                    "known_error": known_error.IDEAL_NOTE + "; no held-out published point for a mla model (the "
                                   "error above is for dense, moe models)", "speed_error_median_pct": None,
                    "speed_error_p90_pct": None, "error_basis": "ideal"}
    prof = known_error.prediction_provenance({"kind": "profiled", "profile": "p", "known_error": "KP"},
                                             {"name": "ideal", "device_model": "ideal"}, "dev-a")
    assert (prof["label"], prof["kind"], prof["calibrated"], prof["error_basis"]) == ("measured profile p", "ideal",
                                                                                      False, "ideal")
    own = known_error.prediction_provenance(
        {"kind": "calibrated", "calibration": {"calibrated_by": "b.json", "known_error": "KE", "kind": "fit"}}, None,
        "dev-a", architecture="mla")
    assert (own["kind"], own["engine"], own["known_error"], own["error_basis"]) == (
        "calibrated", "none", "KE", "your benchmark files")
    measured = known_error.prediction_provenance({"kind": "profiled", "profile": "p", "known_error": "KP"},
                                                 {"name": "vllm"}, "dev-b")
    assert (measured["kind"], measured["calibrated"], measured["error_basis"]) == ("profile", True, "none")
    over = known_error.prediction_provenance(
        {"kind": "calibrated", "measured_profile": "m", "calibration": {"device": "dev-b", "kind": "transfer"}},
        {"name": "vllm"}, "dev-b")
    assert over["kind"] == "profile" and over["speed_error_p90_pct"] == 41.0


def test_short_label():
    assert known_error.short_label(None) == "n/a" and known_error.short_label({}) == "n/a"
    assert known_error.short_label({"calibrated": False}) == "ideal (uncalibrated)"
    assert known_error.short_label({"calibrated": True, "kind": "fit", "speed_error_p90_pct": 30.6}) == \
        "fitted, p90 err 31%"
    assert known_error.short_label({"calibrated": True, "kind": "transfer", "speed_error_p90_pct": None}) == "transfer"
    assert known_error.short_label({"calibrated": True}) == "?"


def test_describe_device(fid):
    fid["device"]["h100-sxm"] = {"points": 4, "median_abs_error_pct": 5.0, "p90_abs_error_pct": 14.5}
    assert known_error.describe_device(load_device("h100-sxm")) == "fitted, p90 err 14%"
    assert known_error.describe_device(load_device("h200")) == "transfer, p90 err 41%"
    assert known_error.describe_device(load_device("a40")) == "fitted"  # no point of its own, no fit group
    assert known_error.describe_device(load_device("cpu")) == "measured profile / roofline"


# ---- engine_overhead.py ------------------------------------------------------------------------
def test_overhead_records_round_to_a_tenth_of_a_microsecond():
    from dataclasses import replace

    from profiles.table import ProfileRow, make_shape
    from simulator.cost.engine_overhead import overhead_rows
    from simulator.models import load_model
    from tests.test_engine_overhead import kernel_rows

    # constant_rows' kernels with sampling at 7.06 us: a decode step prices 6 x 163 + 1 + 100 + 7.06 = 1086.06 us
    kernels = [replace(r, time_median_us=7.06) if r.op == "sampling" else r for r in kernel_rows()]
    engine = [ProfileRow(op="engine_decode", dtype="fp32", time_median_us=1500.06, extra={"note": 1.0},
                         shape=make_shape(num_layers=6, batch_size=2, context_tokens=16)),
              ProfileRow(op="engine_prefill", dtype="fp32", time_median_us=1200.0,
                         shape=make_shape(num_layers=6, batch_size=1, chunk_tokens=32))]
    rows, records = overhead_rows(kernels, engine, model=load_model("tiny-llama-validate"), device=load_device("cpu"),
                                  dtype="fp32")
    prefill_us = 6 * (10 + 20 + 30 + 40 + 2 * 1 + 2 * 2 + 3 + 4) + 1 + 6 * 60 + 100 + 7.06  # one chunk of attention
    assert records[0] == {"step": "decode", "batch_size": 2, "tokens": 16, "forward_us": 1500.1,
                          "kernels_us": 1086.1, "overhead_us": 414.0, "source": "profile"}
    assert records[1] == {"step": "prefill", "batch_size": 1, "tokens": 32, "forward_us": 1200.0,
                          "kernels_us": round(prefill_us, 1), "overhead_us": round(1200.0 - prefill_us, 1),
                          "source": "profile"}
    assert round(prefill_us, 1) == 1146.1 and round(1200.0 - prefill_us, 1) == 53.9
    assert [(r.op, r.dtype, r.extra) for r in rows] == [("step_overhead", "fp32", {"note": 1.0}),
                                                         ("prefill_overhead", "fp32", {})]
    assert rows[0].time_median_us == pytest.approx(1500.06 - 1086.06, rel=1e-12)


# ---- ops.py: dense token ops, logits and attention closed forms ---------------------------------
# TOY with an MLP 66 wide, a 102-token vocabulary, and quantized weights: attention 1 byte, MLP 0.5 byte,
# lm_head 1 byte per weight (activations stay at beta = 2 bytes)
TOYQ = dataclasses.replace(TOY, name="toyq", intermediate_size=66, vocab_size=102,
                           weight_bytes_per_param={"attention": 1.0, "mlp": 0.5, "lm_head": 1.0})


def test_dense_token_ops_hand_computed_tp1():
    # linear: FLOPs 2 t P L; bytes (P wb + t (in + out) beta) L; t = 3 tokens, L = 2 layers
    assert token_ops(TOYQ, 3, 2, 1) == [
        OpCost("attn_qkv", 2 * 3 * 2048 * 2, (2048 * 1.0 + 3 * (32 + 64) * 2) * 2),  # q 32 + k 16 + v 16 wide
        OpCost("attn_out", 2 * 3 * 1024 * 2, (1024 * 1.0 + 3 * (32 + 32) * 2) * 2),
        OpCost("mlp_up", 2 * 3 * 32 * 132 * 2, (32 * 132 * 0.5 + 3 * (32 + 132) * 2) * 2),  # gate + up: 2 x 66
        OpCost("mlp_down", 2 * 3 * 66 * 32 * 2, (66 * 32 * 0.5 + 3 * (66 + 32) * 2) * 2),
        # norms, residuals, rotary, activation: 8 h FLOPs and (10 h + 3 act + 2 (q + k)) elements per token and layer
        OpCost("elementwise", flops=3 * 2 * 8.0 * 32, bytes=3 * 2 * 2 * (10 * 32 + 3 * 66 + 2 * (32 + 16))),
    ]


def test_dense_token_ops_hand_computed_tp4():
    # 4 ranks: 1 query head each, the 2 KV heads replicated (1 per rank), MLP 66 // 4 = 16 wide per rank
    assert TOYQ.qkv_op(4) == (32 * (8 + 8 + 8), 32, 24) and TOYQ.o_op(4) == (8 * 32, 8, 32)
    assert token_ops(TOYQ, 3, 2, 4) == [
        OpCost("attn_qkv", 2 * 3 * 768 * 2, (768 * 1.0 + 3 * (32 + 24) * 2) * 2),
        OpCost("attn_out", 2 * 3 * 256 * 2, (256 * 1.0 + 3 * (8 + 32) * 2) * 2),
        OpCost("mlp_up", 2 * 3 * 32 * 32 * 2, (32 * 32 * 0.5 + 3 * (32 + 32) * 2) * 2),
        OpCost("mlp_down", 2 * 3 * 16 * 32 * 2, (16 * 32 * 0.5 + 3 * (16 + 32) * 2) * 2),
        OpCost("elementwise", flops=3 * 2 * 8.0 * 32, bytes=3 * 2 * 2 * (10 * 32 + 3 * 16 + 2 * (8 + 8))),
        OpCost("all_reduce", comm_bytes=3 * 32 * 2, count=2 * 2),  # two all-reduces of t h beta per layer
    ]
    assert token_ops(TOYQ, 3, 2, 2)[-1] == OpCost("all_reduce", comm_bytes=3 * 32 * 2, count=4)


def test_moe_only_elementwise_uses_the_routed_width():
    m = moe_model(num_layers=2, num_moe_layers=2, intermediate_size=0)  # every layer MoE, no dense MLP
    ew = by_name(token_ops(m, 3, 2, 1))["elementwise"]
    # activation width: expert width 7 x top-2 = 14; q 8, k 4
    assert ew == OpCost("elementwise", flops=3 * 2 * 8.0 * 8, bytes=3 * 2 * 2 * (10 * 8 + 3 * 14 + 2 * (8 + 4)))
    assert "mlp_up" not in by_name(token_ops(m, 3, 2, 1))


def test_logits_op_hand_computed():
    from simulator.cost.ops import logits_op

    # lm_head over the 102-token vocabulary, weights 1 byte; sampling 5 FLOPs and 2 fp32 passes per logit
    assert logits_op(TOYQ, 3, 2, 1) == [
        OpCost("lm_head", 2 * 3 * 32 * 102, 32 * 102 * 1.0 + 3 * (32 + 102) * 2),
        OpCost("sampling", flops=3 * 102 * 5.0, bytes=3 * 102 * 4.0 * 2)]
    assert logits_op(TOYQ, 3, 2, 4) == [  # 102 // 4 = 25 vocabulary entries per rank
        OpCost("lm_head", 2 * 3 * 32 * 25, 32 * 25 * 1.0 + 3 * (32 + 25) * 2),
        OpCost("sampling", flops=3 * 25 * 5.0, bytes=3 * 25 * 4.0 * 2)]


def test_attention_closed_forms_directly():
    from simulator.cost.ops import attention_coefficients, decode_attention, prefill_attention

    # TOY, beta 2, KV at 1 byte: 4 H d nL = 256 FLOPs per pair, 2 Hkv d nL = 64 KV bytes per token, 2 H d beta nL = 256
    assert attention_coefficients(TOY, 2, 1, kv_beta=1) == (256.0, 64.0, 256.0)
    assert attention_coefficients(TOY, 2, 1) == (256.0, 128.0, 256.0)
    assert attention_coefficients(TOY, 4, 2) == (128.0, 128.0, 256.0)  # fp32 on one of 2 ranks
    coeffs = (256.0, 64.0, 256.0)
    assert decode_attention(2, 10, coeffs) == (256.0 * 10, 64.0 * (10 + 2) + 256.0 * 2)  # every entry read
    assert decode_attention(2, 10, coeffs, kv_read_sum=6) == (256.0 * 10, 64.0 * (6 + 2) + 256.0 * 2)
    # chunks (3 new after 5 cached), (2 new, none cached): pairs 3*5 + 6 + 3; KV read 5, written and read 2 x 5
    assert prefill_attention(((3, 5), (2, 0)), coeffs) == (256.0 * 24, 64.0 * (5 + 2 * 5) + 256.0 * 5)
    assert prefill_attention((), coeffs) == (0.0, 0.0)


# ---- roofline.py: parameters, construction and describe ----------------------------------------
@pytest.mark.parametrize("kw,msg", [
    (dict(eta_compute=0.0), "eta_compute must be in (0, 1], got 0.0"),
    (dict(eta_memory=1.5), "eta_memory must be in (0, 1], got 1.5"),
    (dict(step_overhead_s=-1.0), "step_overhead_s must be >= 0, got -1.0"),
    (dict(collective_latency_s=-0.5), "collective_latency_s must be >= 0, got -0.5"),
])
def test_roofline_params_messages(kw, msg):
    with pytest.raises(ValueError) as exc:
        RooflineParams(**kw)
    assert str(exc.value) == msg


def test_roofline_efficiencies_kv_dtype_and_describe():
    p = RooflineParams(eta_compute=0.5, eta_memory=0.25, step_overhead_s=0.0, collective_latency_s=0.0)
    assert (p.eta_compute, p.eta_memory) == (0.5, 0.25)  # the largest allowed efficiency is 1
    assert RooflineParams(eta_compute=1.0, eta_memory=1.0).eta_compute == 1.0
    dev = load_device("h100-sxm")
    m = RooflineCostModel(TOY, dev, params=p, kv_dtype="fp8", eviction_times=Table())
    assert m.flops_per_s == dev.peak_flops("bf16") * 0.5 and m.bytes_per_s == dev.memory_bandwidth_bytes_per_s * 0.25
    assert (m.kv_dtype, m.kv_beta, m.beta) == ("fp8", 1, 2)
    assert m._attn == (256.0, 2 * 2 * 8 * 1 * 2, 256.0)  # the KV cache at 1 byte per element
    assert isinstance(m.eviction_times, Table)
    assert m.describe() == {
        "kind": "roofline", "source": "roofline", "device": "h100-sxm", "dtype": "bf16", "tp": 1,
        "eta_compute": 0.5, "eta_memory": 0.25, "step_overhead_s": 0.0,
        "known_error": "ideal roofline, uncalibrated: real engines are typically 1.4-1.9x slower",
        "eviction_overhead": "profiled eviction kernels, roofline where not covered"}
    assert RooflineCostModel(TOY, dev).describe()["eviction_overhead"] == "roofline estimate (ops.eviction_ops)"
    assert RooflineCostModel(TOY, dev).kv_dtype == "bf16"


def test_batch_shape_defaults_and_counts():
    s = BatchShape(prefill_chunks=((3, 0), (4, 2)), num_decode=2, decode_context_sum=9)
    assert (s.num_prefill_tokens, s.num_tokens, s.decode_kv_read_sum, s.num_logits, s.kv_work) == (7, 9, 9, 0, None)
    e = BatchShape()
    assert (e.decode_context_sum, e.num_logits, e.num_prefill_tokens, e.num_tokens, e.decode_kv_read_sum) == (0, 0, 0, 0, 0)
    w = BatchShape(num_decode=1, decode_context_sum=5, decode_kv_read_sum=2, kv_work=KvWork(1.0))
    assert (w.decode_kv_read_sum, w.kv_work) == (2, KvWork(1.0))
    assert BatchShape(num_decode=1) != "BatchShape(num_decode=1)"


# ---- more roofline sums: logits, attention parts, several ops -----------------------------------
def test_roofline_logits_join_the_step():
    c = roofline(overhead=0.0).step_cost(BatchShape(num_decode=2, decode_context_sum=10, num_logits=2))
    # lm_head for 2 tokens: 2 x 2 x 3200 = 12800 FLOPs (12.8 s) vs 3200 x 2 + 2 x (32 + 100) x 2 = 6928 B: compute;
    # sampling: 2 x 100 x 5 = 1000 FLOPs (1 s) vs 2 x 100 x 8 = 1600 B: memory 1.6 s
    assert (c.compute_s, c.memory_s) == approx(12.8 + 2.56, 1.02 + 1.6)
    assert (c.flops, c.bytes) == (200.0 + 13800.0 + 2560.0, 1020.0 + 8528.0 + 2048.0)


def test_roofline_attention_parts_on_the_same_side():
    none = roofline(lambda m, t, b, tp: [], overhead=0.0)
    # prefill (4, 0): 10 pairs -> 2560 FLOPs vs 512 x 4 = 2048 B; decode of 1 over 10: 2560 FLOPs vs 1664 B: compute
    both_c = none.step_cost(BatchShape(prefill_chunks=((4, 0),), num_decode=1, decode_context_sum=10))
    assert (both_c.compute_s, both_c.memory_s) == approx(5.12, 0.0)
    # prefill (1, 0): 256 FLOPs vs 512 B; decode of 1 over 1: 256 FLOPs vs 512 B: memory
    both_m = none.step_cost(BatchShape(prefill_chunks=((1, 0),), num_decode=1, decode_context_sum=1))
    assert (both_m.compute_s, both_m.memory_s) == approx(0.0, 1.024) and both_m.bytes == 1024.0
    tie = none.step_cost(BatchShape(prefill_chunks=((3, 0),)))  # 6 pairs: 1536 FLOPs = 1536 B: compute
    assert (tie.compute_s, tie.memory_s) == (1.536, 0.0)


def test_roofline_sums_every_op():
    ops = [OpCost("a", bytes=300.0), OpCost("b", bytes=200.0), OpCost("r", comm_bytes=100.0, count=1),
           OpCost("s", comm_bytes=200.0, count=1)]
    # ring for 2 GPUs: 1/1 x bytes / 1000 B/s + 0.01 s each
    assert roofline(tp=2)._sum_ops(ops) == pytest.approx((0.0, 0.5, 0.11 + 0.21, 0.0, 500.0), rel=1e-12)


# ---- EngineCostModel: the bound with evictions and ties -----------------------------------------
def fixed(compute, memory, evict):
    return SimpleNamespace(step_cost=lambda s: StepCost(compute + memory + evict, compute, memory, 0.0, 0.0, 1.0, 2.0,
                                                        0, "fit", evict))


HALF_MS = EngineSpec(name="h", display_name="H", step_overhead_ms=0.5)  # 0.5 ms of CPU per step, nothing else


@pytest.mark.parametrize("compute,memory,evict,bound", [
    (1e-3, 1e-3, 0.5e-3, BOUND_COMPUTE),  # compute = memory = CPU 0.5 + eviction 0.5: compute
    (1e-3, 0.5e-3, 0.8e-3, BOUND_OVERHEAD),  # eviction counts with the CPU time: 1.3 ms > 1 ms
    (0.5e-3, 1e-3, 0.5e-3, BOUND_MEMORY),  # memory = CPU + eviction: memory
    (0.5e-3, 1e-3, 0.8e-3, BOUND_OVERHEAD),
])
def test_engine_cost_model_bound_counts_evictions(compute, memory, evict, bound):
    c = EngineCostModel(fixed(compute, memory, evict), HALF_MS, tp=1, num_layers=2).step_cost(BatchShape(num_decode=1))
    assert (c.bound, c.evict_s, c.overhead_s) == (bound, evict, 0.5e-3)
    assert c.time_s == pytest.approx(compute + memory + evict + 0.5e-3, rel=1e-12)


# ---- EngineSpec checks, describe, and the engine files ------------------------------------------
@pytest.mark.parametrize("kw,msg", [
    (dict(step_overhead_ms=float("inf")), "step_overhead_ms must be a finite number >= 0, got inf"),
    (dict(per_seq_us=-1.0), "per_seq_us must be a finite number >= 0, got -1.0"),
    (dict(attn_decode_speedup=0.0), "attn_decode_speedup must be in (0, 4], got 0.0"),
    (dict(attn_decode_speedup=4.5), "attn_decode_speedup must be in (0, 4], got 4.5"),
    (dict(all_reduce_latency_us=-1.0), "all_reduce_latency_us must be in [0, 10000), got -1.0"),
    (dict(all_reduce_latency_us=1e4), "all_reduce_latency_us must be in [0, 10000), got 10000.0"),
    (dict(admission="fifo"), "admission='fifo'; allowed: preempt, reserve"),
    (dict(device_model="exact"), "device_model='exact'; allowed: calibrated, ideal"),
    (dict(sources={"bogus": "x"}), "[sources] names ['bogus'], which are not engine fields"),
])
def test_engine_spec_messages(kw, msg):
    with pytest.raises(ValueError) as exc:
        EngineSpec(name="e", display_name="E", **kw)
    assert str(exc.value) == msg


def test_engine_spec_boundaries_and_describe():
    for kw in (dict(attn_decode_speedup=4.0), dict(attn_decode_speedup=1e-9), dict(all_reduce_latency_us=0.0),
               dict(all_reduce_latency_us=0.5), dict(all_reduce_latency_us=9999.5)):
        EngineSpec(name="e", display_name="E", **kw)  # allowed
    spec = EngineSpec(name="e", display_name="E", step_overhead_ms=1.0, sources={"step_overhead_ms": "paper"},
                      fit={"points": 1}, origin="/x/e.toml")
    assert spec.describe() == {
        "name": "e", "display_name": "E", "version": "", "step_overhead_ms": 1.0, "per_seq_us": 0.0,
        "per_prefill_token_us": 0.0, "per_layer_us": 0.0, "cuda_graphs": True, "tp_overhead_ms": 0.0,
        "per_seq_tp_us": 0.0, "overlap": False, "request_overhead_ms": 0.0, "all_reduce_latency_us": None,
        "attn_decode_speedup": 1.0, "gqa_kv_shared": True, "admission": "preempt", "device_model": "calibrated",
        "sources": {"step_overhead_ms": "paper"}, "notes": "", "file": "/x/e.toml"}


FIELDS = ("name, display_name, version, step_overhead_ms, per_seq_us, per_prefill_token_us, per_layer_us, cuda_graphs, "
          "tp_overhead_ms, per_seq_tp_us, overlap, request_overhead_ms, all_reduce_latency_us, attn_decode_speedup, "
          "gqa_kv_shared, admission, device_model")


def test_engine_file_messages(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\ndisplay_name = "B"\nbogus = 1\n')
    with pytest.raises(ServesimError) as exc:
        load_engine(str(bad))
    assert str(exc.value) == f"{bad}: unknown field(s) ['bogus']; allowed: {FIELDS}, and the tables [sources] and [fit]"
    anon = tmp_path / "anon.toml"
    anon.write_text("step_overhead_ms = 1.0\n")
    with pytest.raises(ServesimError) as exc:
        load_engine(str(anon))
    assert str(exc.value) == f"{anon}: name and display_name missing (every engine file names itself)"
    with pytest.raises(ServesimError) as exc:
        load_engine(str(tmp_path / "none.toml"))
    assert str(exc.value) == f"engine file {tmp_path / 'none.toml'} not found"
    with pytest.raises(ServesimError) as exc:
        load_engine("nope")
    from simulator.cost.engine import ENGINE_DIR
    assert str(exc.value) == (f"unknown engine 'nope'; known engines: {', '.join(engine_names())} (or a path to an "
                              f"engine .toml; copy {ENGINE_DIR / 'vllm.toml'} to start one)")
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(f'inherits = "{b}"\nname = "a"\ndisplay_name = "A"\n')
    b.write_text(f'inherits = "{a}"\nname = "b"\ndisplay_name = "B"\n')
    with pytest.raises(ServesimError) as exc:
        load_engine(str(a))
    assert str(exc.value) == f"{a}: 'inherits' loops through {a} -> {b}"


def test_engine_file_inherits_numbers_not_names(tmp_path):
    vllm = load_engine("vllm")
    child = tmp_path / "child.toml"
    child.write_text('inherits = "vllm"\nname = "child"\ndisplay_name = "Child"\nstep_overhead_ms = 9.0\n'
                     '[sources]\nstep_overhead_ms = "mine"\n')
    spec = load_engine(str(child))
    assert (spec.name, spec.display_name, spec.version, spec.fit, spec.notes) == ("child", "Child", "", {}, "")
    assert (spec.step_overhead_ms, spec.per_seq_us, spec.all_reduce_latency_us) == (9.0, vllm.per_seq_us, 10.0)
    assert spec.origin == str(child)
    assert spec.sources == {"per_seq_us": f"as vllm: {vllm.sources['per_seq_us']}",
                            "all_reduce_latency_us": f"as vllm: {vllm.sources['all_reduce_latency_us']}",
                            "step_overhead_ms": "mine"}  # admission's source stays behind: vllm sets no number
    assert vllm.notes and vllm.fit and vllm.version == "0.11.1"


def test_prediction_provenance_roofline_under_any_engine_and_power_without_error(fid):
    p = known_error.prediction_provenance({"kind": "roofline"}, {"name": "vllm", "device_model": "calibrated",
                                                                 "sources": {"a": "fitted x", "b": "fitted y",
                                                                             "c": "as vllm: fitted z",
                                                                             "d": "as vllm: fitted w"}},
                                          "dev-a", power={"kind": "line"})
    assert (p["label"], p["calibrated"], p["kind"], p["error_basis"]) == ("ideal roofline (uncalibrated)", False,
                                                                          "roofline", "ideal")
    assert p["engine"] == "vllm (fitted: a, b) (borrowed fits: c, d)" and p["power"] == "line: "


def test_device_kernels_of_a_user_copy_is_transferred(tmp_path):
    from dataclasses import replace

    h100 = load_device("h100-sxm")
    assert device_choice.device_kernels(h100).kind == "fit"
    assert device_choice.device_kernels(replace(h100, origin="")).kind == "fit"  # no file: the catalog's
    toml = tmp_path / "h100-sxm.toml"
    toml.write_text((HARDWARE_DIR / "h100-sxm.toml").read_text())
    assert device_choice.device_kernels(load_device(toml)).kind == "transfer"  # a user's file is carried over


def test_overhead_rows_subtract_only_kernels_and_price_unmeasured_ones_at_the_dtype():
    from profiles.table import ProfileRow, make_shape
    from simulator.cost.engine_overhead import overhead_rows
    from simulator.models import load_model
    from tests.test_engine_overhead import kernel_rows

    spec, cpu = load_model("tiny-llama-validate"), load_device("cpu")
    engine = [ProfileRow(op="engine_decode", dtype="fp32", time_median_us=1500.0,
                         shape=make_shape(num_layers=6, batch_size=2, context_tokens=16))]
    base = overhead_rows(kernel_rows(), engine, model=spec, device=cpu, dtype="fp32")[1][0]["kernels_us"]
    timed = kernel_rows() + [ProfileRow(op="step_overhead", dtype="fp32", time_median_us=100.0,
                                        shape=make_shape(num_tokens=t, num_layers=6)) for t in (1, 16)]
    assert overhead_rows(timed, engine, model=spec, device=cpu, dtype="fp32")[1][0]["kernels_us"] == base
    # without an lm_head table the roofline prices it at fp32: 32 * 8192 * 768 weights... read at 4 bytes each
    no_head = [r for r in kernel_rows() if r.op != "lm_head"]
    rec = overhead_rows(no_head, engine, model=spec, device=cpu, dtype="fp32")[1][0]
    head = (768 * 8192 * 4 + 2 * (768 + 8192) * 4) / cpu.memory_bandwidth_bytes_per_s * 1e6
    assert rec["kernels_us"] == pytest.approx(round(base - 100 + head, 1), abs=0.051)
    assert rec["source"] == "roofline"


def test_end_to_end_error_with_partial_fidelity_files(monkeypatch):
    monkeypatch.setattr(known_error, "_fidelity", lambda: {"calibration_kind": FID["calibration_kind"]})
    assert known_error.end_to_end_error("dev-a", "transfer")["basis"] == (
        "no (or < 3) published points on dev-a: devices with transfer calibrations")  # no per-device table
    monkeypatch.setattr(known_error, "_fidelity", lambda: {"device": {"dev-q": {"median_abs_error_pct": 1.0}}})
    assert known_error.end_to_end_error("dev-q", "fit") == {  # no point count, no per-kind table
        "basis": "none", "text": "no published end-to-end point for dev-q"}


def test_ungated_mlp_tp3_elementwise_and_mla_rotary_width():
    from dataclasses import replace

    from simulator.models import load_model

    plain = by_name(token_ops(replace(TOY, gated_mlp=False), 3, 2, 1))
    assert plain["mlp_up"] == OpCost("mlp_up", 2 * 3 * 32 * 64 * 2, (32 * 64 * 2 + 3 * (32 + 64) * 2) * 2)
    # tp 3: MLP 66 // 3 = 22, q 32 // 3 = 10, KV heads ceil(2 / 3) = 1 of 8
    ew = by_name(token_ops(TOYQ, 3, 2, 3))["elementwise"]
    assert ew.bytes == 3 * 2 * 2 * (10 * 32 + 3 * 22 + 2 * (10 + 8))
    mla = load_model("deepseek-v2-lite")  # rotary reads q and the shared rope key (qk_rope_head_dim 64)
    act = (mla.intermediate_size or mla.moe_intermediate_size * mla.num_experts_per_tok)
    want = 1 * 2 * mla.num_layers * (10 * mla.hidden_size + 3 * act + 2 * (mla.q_size + 64))
    assert by_name(token_ops(mla, 1, 2, 1))["elementwise"].bytes == want


def test_step_cpu_s_one_prefill_token_is_eager():
    e = EngineSpec(**ENGINE)
    assert e.step_cpu_s(1, 1, 3, 1) == pytest.approx(1e-3 + 10e-6 + 0.1e-6 + 60e-6, rel=1e-12)


def test_engine_cost_model_keeps_the_collectives():
    inner = SimpleNamespace(step_cost=lambda s: StepCost(3e-3, 1e-3, 1e-3, 1e-3, 0.0, 1.0, 2.0, 0, "fit", 0.0))
    c = EngineCostModel(inner, HALF_MS, tp=2, num_layers=2).step_cost(BatchShape(num_decode=1))
    assert (c.comm_s, c.overhead_s, c.bound) == (1e-3, 0.5e-3, BOUND_OVERHEAD)  # 1 ms comm + 0.5 ms CPU > 1 ms
