"""Closed forms the roofline cost model and memory plan must reproduce."""
import pytest

from hardware import load_device
from simulator.cost.roofline import RooflineCostModel
from simulator.cost.shape import BatchShape
from simulator.cost.step import BOUND_COMPUTE, BOUND_MEMORY
from simulator.engine.memory_plan import activation_reserve_bytes, plan_memory
from simulator.models import load_model


def test_batch1_decode_step_is_weight_bytes_over_bandwidth():
    model, dev = load_model("llama-2-7b"), load_device("a100-80gb")
    cost = RooflineCostModel(model, dev).step_cost(BatchShape(num_decode=1, decode_context_sum=1, num_logits=1))
    # every matmul weight is read once (the embedding table is gathered, not read)
    w = (model.total_params - model.embedding_params) * 2
    assert cost.bound == BOUND_MEMORY
    assert cost.time_s == pytest.approx(w / dev.memory_bandwidth_bytes_per_s, rel=0.01)
    assert cost.time_s == pytest.approx(model.weight_bytes("bf16") / dev.memory_bandwidth_bytes_per_s, rel=0.03)


def test_large_prefill_is_compute_bound_at_2P_flops_per_token():
    model, dev = load_model("llama-2-7b"), load_device("a100-80gb")
    n = 4096
    cost = RooflineCostModel(model, dev).step_cost(BatchShape(prefill_chunks=((n, 0),), num_logits=1))
    assert cost.bound == BOUND_COMPUTE
    linear = 2 * n * (model.active_params_per_token - model.lm_head_params)
    attention = 4 * model.num_heads * model.head_dim * model.num_layers * n * (n + 1) / 2
    assert cost.flops == pytest.approx(linear + attention + 2 * model.lm_head_params, rel=0.01)
    # matmuls and attention run at peak; only the elementwise ops (norms, residuals, activation:
    # memory-bound traffic) add time on top
    assert cost.compute_s == pytest.approx((linear + attention) / dev.peak_flops("bf16"), rel=0.01)
    assert cost.compute_s < cost.time_s < 1.1 * cost.compute_s


def test_decode_weights_shared_by_batch_until_ridge():
    """Linear ops: time flat in batch while memory-bound, then linear: the knee sits at the ridge."""
    model, dev = load_model("llama-2-7b"), load_device("a100-80gb")
    cm = RooflineCostModel(model, dev)
    t = {b: cm.step_cost(BatchShape(num_decode=b, decode_context_sum=b, num_logits=b)).time_s for b in (1, 8, 1024)}
    assert t[8] == pytest.approx(t[1], rel=0.05)
    ridge = dev.ridge_flops_per_byte("bf16")  # ~153 FLOP/byte: critical batch ~ ridge (2 FLOP per 2 bytes)
    assert t[1024] > 1024 / ridge * t[1] * 0.8


def test_tensor_parallel_adds_all_reduce_over_interconnect():
    model, dev = load_model("llama-2-70b"), load_device("h100-sxm")
    shape = BatchShape(num_decode=1, decode_context_sum=1, num_logits=1)
    c1 = RooflineCostModel(model, dev, tp=1).step_cost(shape)
    c4 = RooflineCostModel(model, dev, tp=4).step_cost(shape)
    assert c1.comm_s == 0
    # 2 all-reduces per layer of hidden*2 bytes: ring 2(tp-1)/tp * bytes / link + 10 us latency each
    per = 2 * 3 / 4 * model.hidden_size * 2 / (900e9 / 2) + 10e-6
    assert c4.comm_s == pytest.approx(2 * model.num_layers * per)
    assert c4.memory_s == pytest.approx(c1.memory_s / 4, rel=0.02)


def test_kv_capacity_closed_form():
    model, dev = load_model("llama-2-7b"), load_device("a100-80gb")
    plan = plan_memory(model, dev, dtype="bf16", tp=1, block_size=16, gpu_memory_utilization=0.9,
                       max_num_batched_tokens=512, max_num_seqs=128)
    usable = int(80 * 1024**3 * 0.9)
    free = usable - model.weight_bytes("bf16") - activation_reserve_bytes(model, "bf16", 1, 512, 128)
    assert plan.num_gpu_blocks == free // (16 * 2 * 2 * 32 * 128 * 32)
    assert plan.kv_capacity_tokens == plan.num_gpu_blocks * 16
