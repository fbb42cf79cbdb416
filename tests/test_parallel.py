"""Pipeline and expert parallelism: closed forms (GPipe bubble fraction, all-to-all bytes),
memory per GPU, and that pp = 1 without EP leaves a run unchanged."""
from __future__ import annotations

import math

import pytest
from engine_harness import ConstantCost

from hardware import LinkSpec, load_device, load_link
from simulator.cost import BatchShape
from simulator.engine import plan_memory
from simulator.engine.memory_plan import gpu_kv_bytes_per_token, gpu_weight_bytes
from simulator.errors import ServesimError
from simulator.models import load_model
from simulator.parallel.expert import AllToAll, ExpertParallelCostModel, all_to_all_bytes
from simulator.parallel.pipeline import PipelineCostModel, bubble_fraction, gpipe_step_s, split_shape
from simulator.scenario import Scenario


# ---- pipeline ------------------------------------------------------------------------------
@pytest.mark.parametrize("pp,m", [(1, 1), (2, 1), (4, 4), (4, 8), (8, 3)])
def test_gpipe_step_is_m_plus_p_minus_1_slots(pp, m):
    assert gpipe_step_s([0.5] * m, pp) == pytest.approx((m + pp - 1) * 0.5, abs=1e-12)


def test_bubble_fraction_closed_form():
    assert bubble_fraction(4, 4) == 3 / 7
    assert bubble_fraction(1, 5) == 0.0
    assert bubble_fraction(8, 1) == 7 / 8


def test_pipeline_cost_model_idle_share_is_the_bubble_fraction():
    """Constant inner cost T for any micro-batch: each stage works m x T/pp of (m+pp-1) x T/pp."""
    pp, m, T = 4, 4, 1.0
    pipe = PipelineCostModel(ConstantCost(T), pp=pp, microbatches=m, num_layers=32)
    shape = BatchShape(num_decode=8, decode_context_sum=800, num_logits=8)
    cost = pipe.step_cost(shape)
    assert cost.time_s == pytest.approx(7 * T / 4)
    busy = m * T / pp
    assert 1 - busy / cost.time_s == pytest.approx(bubble_fraction(pp, m))
    assert pipe.describe()["pipeline"]["bubble_fraction"] == pytest.approx(3 / 7)  # idle / (idle + busy)


def test_pipeline_one_sequence_is_one_microbatch():
    """A micro-batch holds whole sequences: one prefill gains nothing from pp (T/pp x pp stages)."""
    pipe = PipelineCostModel(ConstantCost(2.0), pp=4, microbatches=4, num_layers=32)
    assert pipe.step_cost(BatchShape(prefill_chunks=((512, 0),), num_logits=1)).time_s == pytest.approx(2.0)


def test_pipeline_sends_activations_over_the_link():
    """m = 1, pp = 2: stage 0 (T/2), send (bytes/bw + latency), stage 1 (T/2)."""
    link = LinkSpec(name="t", display_name="t", bandwidth_gb_per_s=1.0, latency_us=10.0)
    pipe = PipelineCostModel(ConstantCost(1.0), pp=2, microbatches=1, num_layers=2, link=link,
                             activation_bytes_per_token=1000.0)
    cost = pipe.step_cost(BatchShape(prefill_chunks=((100, 0),), num_logits=1))
    assert cost.time_s == pytest.approx(0.5 + (100 * 1000 / 1e9 + 10e-6) + 0.5)


def test_split_shape_conserves_the_step():
    shape = BatchShape(prefill_chunks=((100, 0), (50, 10), (7, 0)), num_decode=5, decode_context_sum=1003,
                       num_logits=7)
    parts = split_shape(shape, 3)
    assert [p.prefill_chunks for p in parts] == [((100, 0),), ((50, 10),), ((7, 0),)]
    assert [p.num_decode for p in parts] == [2, 2, 1]  # decodes continue the round-robin after 3 chunks
    assert sum(p.decode_context_sum for p in parts) == 1003
    assert sum(p.num_logits for p in parts) == 7
    assert sum(p.num_tokens for p in parts) == shape.num_tokens


# ---- expert parallelism --------------------------------------------------------------------
def test_all_to_all_bytes_closed_form():
    """Qwen3-30B-A3B, 256 tokens, top-8, hidden 2048, bf16, EP 8: 256 x 8 x 2048 x 2 x 7/8."""
    assert all_to_all_bytes(256, 8, 2048, 2.0, 8) == 256 * 8 * 2048 * 2 * 7 / 8 == 7340032.0
    assert all_to_all_bytes(256, 8, 2048, 2.0, 1) == 0.0


def test_expert_parallel_step_adds_dispatch_and_combine():
    """dp 4 x tp 2 = EP 8: each GPU dispatches T/tp tokens; two all-to-alls per MoE layer at
    latency + bytes/bandwidth; experts on the GEMM roofline (no calibration)."""
    model = load_model("qwen3-30b-a3b")
    a2a = AllToAll(latency_s=5e-6, bytes_per_s=100e9, source="roofline", what="test")
    ep = ExpertParallelCostModel(ConstantCost(0.0), model, tp=2, dp=4, beta=2.0,
                                 rates=(1e15, 1e12, "roofline"), all_to_all=a2a)
    T = 64
    expert_s, a2a_s, flops, nbytes, sent = ep.moe_time(T)
    per_layer = all_to_all_bytes(T / 2, model.num_experts_per_tok, model.hidden_size, 2.0, 8)
    assert per_layer == 32 * 8 * 2048 * 2 * 7 / 8
    assert a2a_s == pytest.approx(2 * model.num_moe_layers * (5e-6 + per_layer / 100e9))
    assert sent == 2 * model.num_moe_layers * per_layer
    routed = T * 4 * 8 / 8  # T x dp x top_k / ep copies land on each GPU
    assert flops == pytest.approx(2 * routed * 3 * 2048 * 768 * model.num_moe_layers)
    cost = ep.step_cost(BatchShape(num_decode=T, decode_context_sum=T * 100, num_logits=T))
    assert cost.time_s == pytest.approx(expert_s + a2a_s)
    assert cost.comm_s == pytest.approx(a2a_s)


def test_expert_parallel_memory_per_gpu():
    """Experts whole over ep GPUs, the rest tp-sharded: qwen3-30b-a3b EP 8 (tp 1, dp 8)."""
    model = load_model("qwen3-30b-a3b")
    experts = model.expert_params_total * 2
    rest = model.weight_bytes("bf16") - experts
    assert gpu_weight_bytes(model, "bf16", tp=1, ep=8) == int(rest + experts / 8)
    assert gpu_weight_bytes(model, "bf16", tp=2, ep=8) == int(rest / 2 + experts / 8)


def test_pipeline_memory_per_gpu():
    """llama-3-8b pp 2: half the layers per stage plus the larger end (lm_head = embedding here)."""
    model = load_model("llama-3-8b")
    total = model.weight_bytes("bf16")
    head = model.lm_head_params * 2
    embed = model.embedding_params * 2
    assert gpu_weight_bytes(model, "bf16", tp=1, pp=2) == int((total - head - embed) / 2 + max(head, embed))
    assert gpu_weight_bytes(model, "bf16", tp=1, pp=1) == total
    kv = model.kv_bytes_per_token("bf16", 1)
    assert gpu_kv_bytes_per_token(model, "bf16", tp=1, pp=2) == kv // 2 == 2 * 8 * 128 * 2 * 16
    assert gpu_kv_bytes_per_token(model, "bf16", tp=1, pp=3) == int(kv * math.ceil(32 / 3) / 32)


def test_plan_memory_pp_doubles_kv_room():
    model, device = load_model("llama-3-8b"), load_device("h100-sxm")
    args = dict(dtype="bf16", tp=1, block_size=16, gpu_memory_utilization=0.9, max_num_batched_tokens=2048,
                max_num_seqs=256)
    one, two = plan_memory(model, device, **args), plan_memory(model, device, **args, pp=2)
    assert two.kv_bytes_per_token * 2 == one.kv_bytes_per_token
    assert two.kv_capacity_tokens > 2 * one.kv_capacity_tokens  # half the KV per token, and more free memory


# ---- scenario checks -----------------------------------------------------------------------
def test_scenario_rejects_bad_parallel_fields():
    with pytest.raises(ServesimError, match="pp=0"):
        Scenario(pp=0)
    with pytest.raises(ServesimError, match="data_parallel_size=2 is invalid without enable_expert_parallel"):
        Scenario(data_parallel_size=2)
    with pytest.raises(ServesimError, match="kv_transfer_overlap='sometimes'"):
        Scenario(kv_transfer_overlap="sometimes")


def test_run_rejects_ep_on_dense_and_uneven_experts():
    from simulator.run import simulate

    with pytest.raises(ServesimError, match="needs an MoE model"):
        simulate(Scenario(model="llama-3-8b", enable_expert_parallel=True, num_requests=2))
    with pytest.raises(ServesimError, match="does not divide num_experts=128"):
        simulate(Scenario(model="qwen3-30b-a3b", data_parallel_size=3, enable_expert_parallel=True, num_requests=2))


def test_link_transfer_time_is_bytes_over_bandwidth_plus_latency():
    link = load_link("nvlink4")
    assert link.effective_gb_per_s == 357.8 and link.latency_us == 6.0
    assert link.transfer_s(357.8e6) == pytest.approx(1e-3 + 6e-6)


# ---- the summary counts every GPU ----------------------------------------------------------
def _summary(**kw):
    from simulator.results.summary import build_summary
    from simulator.run import simulate

    return build_summary(simulate(Scenario(model="llama-3.2-1b", num_requests=20, rate=4.0, price_usd_per_hour=1.0,
                                           prompt_tokens="128", output_tokens="16", **kw)))


def test_price_counts_pipeline_dp_and_pool_gpus():
    plain = _summary(tp=2)
    assert "parallelism" not in plain and plain["price"]["num_gpus"] == 2 and plain["price"]["usd_per_hour"] == 2.0
    pp = _summary(tp=2, pp=2)
    assert pp["price"]["num_gpus"] == 4 and pp["price"]["usd_per_hour"] == pytest.approx(4.0)
    assert pp["energy"]["num_gpus"] == 4
    assert "pp 2 x 2 micro-batches" in pp["parallelism"]["text"]
    pd = _summary(num_prefill_instances=2, prefill_tp=2, num_decode_instances=1, decode_tp=1)
    assert pd["price"]["num_gpus"] == 5 and pd["price"]["usd_per_hour"] == pytest.approx(5.0)


def test_data_parallel_ranks_are_engine_instances_with_ep_memory():
    from simulator.run import simulate

    s = Scenario(model="qwen3-30b-a3b", data_parallel_size=2, enable_expert_parallel=True, num_requests=8, rate=4.0,
                 prompt_tokens="64", output_tokens="8")
    r = simulate(s)
    assert set(r.recorder.replica.tolist()) == {0, 1}  # each DP attention rank schedules its own requests
    assert r.memory.weight_bytes == gpu_weight_bytes(r.model, "bf16", tp=1, ep=2)
    assert r.cost_model["expert_parallel"]["experts_per_gpu"] == 64
