"""Oracles for the profiled cost model (issue 19, mutation testing): a step priced from a table
where every kernel call takes a known constant time (tests/test_profiled_cost_model.constant_rows),
its split into compute- and memory-bound time by each op's own roofline (profiled.py docstring),
unmeasured ops on the roofline, collectives from the calibration, and the describe() record."""
from dataclasses import replace

import pytest

from hardware import load_device
from profiles.fit import FittedProfile
from profiles.table import ProfileRow, make_shape
from simulator.cost.kernel_stack import KernelStack
from simulator.cost.ops import attention_ops, logits_op, token_ops
from simulator.cost.profiled import ProfiledCostModel
from simulator.cost.roofline import RooflineCostModel
from simulator.cost.shape import BatchShape
from simulator.models import ModelSpec, load_model
from tests.test_profiled_cost_model import MODEL, US, constant_rows

LAYERS = 6
# constant_rows' kernel time of each op of a step (calls x us per call), 6 layers
KERNEL_US = {"attn_qkv": 6 * 10, "attn_out": 6 * 20, "mlp_up": 6 * 30, "mlp_down": 6 * 40,
             "elementwise": 13 * 1 + 12 * 2 + 6 * 3 + 6 * 4,  # 2 nL + 1 norms, 2 nL residual adds, rotary, activation
             "lm_head": 100, "sampling": 7, "attn_decode": 6 * 50, "attn_prefill": 6 * 60}


def model(rows=None, *, tp=1, provenance=None, **kw):
    spec, dev = load_model(MODEL), load_device("cpu")
    fit = FittedProfile.from_rows(rows or constant_rows(), provenance or {"device": "cpu", "dtype": "fp32"})
    return ProfiledCostModel(RooflineCostModel(spec, dev, dtype="fp32", tp=tp), fit, profile_name="test", **kw)


DECODE = BatchShape(num_decode=2, decode_context_sum=200, num_logits=2)


def split(cm, shape):
    """Expected (compute_s, memory_s, flops, bytes): each op's kernel time goes to the side its own
    roofline is bound by (FLOPs / peak >= bytes / bandwidth: compute), from the ops module's counts."""
    spec, fb = cm.model, cm.fallback
    ops = token_ops(spec, shape.num_tokens, 4, 1) + logits_op(spec, shape.num_logits, 4, 1) + attention_ops(
        spec, shape, 4, 1)
    compute = memory = flops = nbytes = 0.0
    for op in ops:
        t = KERNEL_US[op.name] * US
        if op.flops / fb.flops_per_s >= op.bytes / fb.bytes_per_s:
            compute += t
        else:
            memory += t
        flops += op.flops
        nbytes += op.bytes
    return compute, memory, flops, nbytes


PREFILL = BatchShape(prefill_chunks=((64, 0),), num_logits=1)  # all measured: 64 tokens, a (64, 0) chunk


def test_prefill_step_splits_kernel_time_by_each_ops_roofline():
    cm = model()
    c = cm.step_cost(PREFILL)
    compute, memory, flops, nbytes = split(cm, PREFILL)
    # on the CPU (5 FLOP per byte) the 64-token matmuls and the prefill attention are compute-bound,
    # the elementwise ops, lm_head and sampling memory-bound
    assert compute == pytest.approx((60 + 120 + 180 + 240 + 360) * US, rel=1e-12)
    assert memory == pytest.approx((79 + 100 + 7) * US, rel=1e-12)
    assert (c.compute_s, c.memory_s) == (pytest.approx(compute, rel=1e-12), pytest.approx(memory, rel=1e-12))
    assert (c.flops, c.bytes) == (pytest.approx(flops, rel=1e-12), pytest.approx(nbytes, rel=1e-12))
    assert c.bound == 0 and c.source == "profile"


def test_decode_step_is_memory_bound_kernel_time():
    cm = model()
    c = cm.step_cost(DECODE)
    compute, memory, flops, nbytes = split(cm, DECODE)
    assert compute == 0.0 and c.bound == 1  # 2 tokens: every op memory-bound on the CPU
    assert (c.compute_s, c.memory_s) == (pytest.approx(compute, rel=1e-12), pytest.approx(memory, rel=1e-12))
    assert (c.flops, c.bytes) == (pytest.approx(flops, rel=1e-12), pytest.approx(nbytes, rel=1e-12))
    assert c.time_s == pytest.approx((sum(KERNEL_US.values()) - KERNEL_US["attn_prefill"]) * US, rel=1e-12)
    assert (c.comm_s, c.overhead_s, c.source) == (0.0, 0.0, "profile")
    assert dict(cm.sources) == {"profile": 8}  # 5 token ops, lm_head, sampling, decode attention


def test_describe_whole_record_and_known_error():
    cm = model()
    cm.step_cost(DECODE)
    d = cm.describe()
    assert d == {
        "kind": "profiled", "source": "profile test", "calibration": None, "measured_profile": None,
        "profile": "test", "profile_device": "cpu", "profile_dtype": "fp32", "device": "cpu", "dtype": "fp32",
        "tp": 1, "fitted_ops": sorted({r.op for r in constant_rows()}), "op_sources": {"profile": 8},
        "num_extrapolated_shapes": 0, "extrapolated_shapes": [], "roofline_fallback": cm.fallback.describe(),
        "known_error": "fit error: see `servesim fit --test`; op lookups: 8 profile; 0 shapes extrapolated",
        "fit_test_error": None}
    err = {"overall": {"median_ape_pct": 3.14, "p90_ape_pct": 9.87}}
    tested = model(provenance={"device": "cpu", "dtype": "fp32", "test_error": err})
    tested.step_cost(DECODE)
    assert tested.describe()["fit_test_error"] == err
    assert tested.describe()["known_error"] == ("fit test error median 3.1% / p90 9.9%; op lookups: 8 profile; "
                                                "0 shapes extrapolated")
    cal = model(calibration={"known_error": "KE"})
    cal.step_cost(DECODE)
    assert (cal.describe()["kind"], cal.describe()["source"]) == ("calibrated", "test")
    assert cal.describe()["known_error"] == "KE; op lookups: 8 profile"
    over = model(calibration={"known_error": "KE"}, measured_profile="m")
    over.step_cost(DECODE)
    assert over.describe()["known_error"] == "fit error: see `servesim fit --test`; op lookups: 8 profile; 0 shapes " \
                                             "extrapolated"


def test_unmeasured_op_is_priced_on_its_roofline():
    cm = model([r for r in constant_rows() if r.op != "mlp_down"])
    c = cm.step_cost(DECODE)
    fb = cm.fallback
    down = next(op for op in token_ops(cm.model, 2, 4, 1) if op.name == "mlp_down")
    t_c, t_m = down.flops / fb.flops_per_s, down.bytes / fb.bytes_per_s
    compute, memory, flops, nbytes = split(model(), DECODE)
    moved = KERNEL_US["mlp_down"] * US  # the kernel time it would have had, on the side its roofline picks
    if t_c >= t_m:
        want = (compute - moved + t_c, memory)
    else:
        want = (compute, memory - moved + t_m)
    assert (c.compute_s, c.memory_s) == (pytest.approx(want[0], rel=1e-9), pytest.approx(want[1], rel=1e-9))
    assert (c.flops, c.bytes) == (pytest.approx(flops, rel=1e-12), pytest.approx(nbytes, rel=1e-12))
    assert c.source == "roofline" and dict(cm.sources) == {"profile": 7, "roofline": 1}


class Collectives:
    """A calibration layer that only prices all-reduces: 7 us each, as fitted."""

    ops, provenance, device, dtype = set(), {"kind": "fit"}, "cpu", "fp32"

    def __init__(self):
        self.calls = []

    def predict(self, op, shape, dtype):
        return None

    def all_reduce_s(self, nbytes, num_gpus, latency_s=None):
        self.calls.append((nbytes, num_gpus, latency_s))
        return 7e-6, "fit"


def test_collectives_come_from_the_calibration():
    spec, dev = load_model(MODEL), load_device("cpu")
    fit = FittedProfile.from_rows(constant_rows(), {"device": "cpu", "dtype": "fp32"})
    coll = Collectives()
    cm = ProfiledCostModel(RooflineCostModel(spec, dev, dtype="fp32", tp=2), KernelStack(fit, coll),
                           profile_name="stack", all_reduce_latency_s=3e-6)
    c = cm.step_cost(BatchShape(num_decode=1, decode_context_sum=100, num_logits=1))
    # 2 all-reduces per layer of one token's hidden state (768 x 4 bytes), 7 us each
    assert c.comm_s == pytest.approx(2 * LAYERS * 7e-6, rel=1e-12)
    assert coll.calls == [(768 * 4, 2, 3e-6)] and cm.all_reduce_latency_s == 3e-6
    assert c.source == "fit" and cm.sources["fit"] >= 1


def test_dtypes_overhead_flag_and_attention_on_the_roofline():
    fp16 = model(provenance={"device": "cpu", "dtype": "fp16"})
    assert fp16.dtype == "fp16" and fp16.kv_dtype == "fp16"  # the table's dtype; KV as the table
    assert model(profile_dtype="bf16").dtype == "bf16"
    assert model().measured_overhead is False
    with_overhead = constant_rows() + [ProfileRow(op="step_overhead", dtype="fp32", time_median_us=5.0,
                                                  shape=make_shape(num_tokens=t, num_layers=6)) for t in (1, 2)]
    assert model(with_overhead).measured_overhead is True
    bare = model([r for r in constant_rows() if not r.op.startswith("attn_") or r.op in ("attn_qkv", "attn_out")])
    c = bare.step_cost(DECODE)
    roof = bare.fallback._attention(DECODE)  # (compute_s, memory_s, flops, bytes) of decode attention
    full = model().step_cost(DECODE)
    assert c.time_s == pytest.approx(full.time_s - KERNEL_US["attn_decode"] * US + roof[0] + roof[1], rel=1e-12)
    assert c.source == "roofline" and bare.sources["roofline"] == 1


def test_shared_experts_use_the_dense_mlp_kernels():
    spec = ModelSpec(name="toy-moe", model_type="qwen2_moe", num_layers=2, hidden_size=8, num_heads=2,
                     num_kv_heads=1, head_dim=4, intermediate_size=0, vocab_size=10, tie_word_embeddings=False,
                     gated_mlp=True, max_position_embeddings=64, num_experts=4, num_experts_per_tok=2,
                     moe_intermediate_size=6, num_moe_layers=2, shared_expert_intermediate_size=5)
    rows = [ProfileRow(op="mlp_up", dtype="bf16", time_median_us=11.0 * t,
                       shape=make_shape(num_tokens=t, in_dim=8, out_dim=10)) for t in (1, 2, 4)]
    rows += [ProfileRow(op="mlp_down", dtype="bf16", time_median_us=13.0 * t,
                        shape=make_shape(num_tokens=t, in_dim=5, out_dim=8)) for t in (1, 2, 4)]
    rows += [ProfileRow(op="mlp_up", dtype="bf16", time_median_us=17.0 * t,
                        shape=make_shape(num_tokens=t, in_dim=8, out_dim=5)) for t in (1, 2, 4)]  # ungated up
    rows += [ProfileRow(op="moe_expert", dtype="bf16", time_median_us=19.0 * t,
                        shape=make_shape(num_tokens=t, in_dim=8, out_dim=6)) for t in (1, 2, 4)]
    fit = FittedProfile.from_rows(rows, {"device": "h100-sxm", "dtype": "bf16"})
    cm = ProfiledCostModel(RooflineCostModel(spec, load_device("h100-sxm")), fit, profile_name="moe")
    # one dense MLP (gate/up 2 x 5 wide, down 5 -> 8) per MoE layer, 2 layers
    assert cm._token_op("moe_shared_up", 2) == (pytest.approx(2 * 22.0 * US, rel=1e-12), "profile")
    assert cm._token_op("moe_shared_down", 4) == (pytest.approx(2 * 52.0 * US, rel=1e-12), "profile")
    # the profiled expert kernel is gated: an ungated MoE's experts fall to the roofline
    plain = ProfiledCostModel(RooflineCostModel(replace(spec, gated_mlp=False), load_device("h100-sxm")), fit,
                              profile_name="moe")
    assert plain._token_op("moe_experts", 2) is None
    assert plain._token_op("moe_shared_up", 2) == (pytest.approx(2 * 34.0 * US, rel=1e-12), "profile")  # 5 wide
    assert cm._token_op("all_reduce", 2) is None and cm._logit_op("other", 2) is None


HEADS = dict(num_heads=12, num_kv_heads=4, head_dim=64)


def varying_rows(kv_append=False):
    """constant_rows with decode attention 10 b + ctx / 10 us per call, prefill attention n + ctx / 4 us,
    and optionally a KV append of b + ctx / 100 us (ctx: its context before the new token)."""
    rows = [r for r in constant_rows() if r.op not in ("attn_decode", "attn_prefill")]
    rows += [ProfileRow(op="attn_decode", dtype="fp32", time_median_us=10.0 * b + c / 10,
                        shape=make_shape(batch_size=b, context_tokens=c, **HEADS)) for b in (1, 2, 4) for c in (100, 200)]
    rows += [ProfileRow(op="attn_prefill", dtype="fp32", time_median_us=n + c / 4,
                        shape=make_shape(batch_size=1, chunk_tokens=n, context_tokens=c, **HEADS))
             for n in (16, 64) for c in (0, 64)]
    if kv_append:
        rows += [ProfileRow(op="kv_append", dtype="fp32", time_median_us=b + c / 100,
                            shape=make_shape(batch_size=b, context_tokens=c, **HEADS)) for b in (1, 2, 4)
                 for c in (99, 199)]
    return rows


def attention_us(cm, shape):
    """The step's kernel time less everything but attention (the constant token and logit kernels)."""
    other = sum(v for k, v in KERNEL_US.items() if not k.startswith("attn_d") and not k.startswith("attn_p"))
    if not shape.num_logits:
        other -= KERNEL_US["lm_head"] + KERNEL_US["sampling"]
    return cm.step_cost(shape).time_s / US - other


def test_decode_attention_is_looked_up_by_batch_and_mean_context():
    cm = model(varying_rows())
    # (batch 2, mean context 100): 20 + 10 = 30 us per layer; (batch 4, mean context 200): 40 + 20 = 60 us
    assert attention_us(cm, BatchShape(num_decode=2, decode_context_sum=200, num_logits=2)) == pytest.approx(
        6 * 30, rel=1e-9)
    assert attention_us(cm, BatchShape(num_decode=4, decode_context_sum=800, num_logits=4)) == pytest.approx(
        6 * 60, rel=1e-9)
    assert attention_us(cm, BatchShape(num_decode=2, decode_context_sum=200, num_logits=2)) == pytest.approx(
        6 * 30, rel=1e-9)  # the cached answer again


def test_kv_append_joins_decode_attention():
    cm = model(varying_rows(kv_append=True))
    # decode (2, 200): 20 + 20 = 40 us; append at context 199: 2 + 1.99 us; per layer
    got = attention_us(cm, BatchShape(num_decode=2, decode_context_sum=400, num_logits=2))
    assert got == pytest.approx(6 * (40 + 2 + 1.99), rel=1e-9)


def test_prefill_attention_per_chunk_and_context():
    cm = model(varying_rows())
    # chunks (16, 64) twice and (64, 0): 2 x (16 + 64 / 4) + 64 us per layer, one call per chunk
    shape = BatchShape(prefill_chunks=((16, 64), (16, 64), (64, 0)), num_logits=0)
    c = cm.step_cost(shape)
    assert c.source == "fit"  # 96 tokens: the token ops are extrapolated beyond the measured 64
    token_s = cm._token_cache[96][0] + cm._token_cache[96][1]  # the step's token ops, priced apart
    assert (c.time_s - token_s) / US == pytest.approx(6 * (2 * 32 + 64), rel=1e-9)


def test_extrapolated_decode_shapes_count_every_lookup():
    cm = model(varying_rows())
    shape = BatchShape(num_decode=8, decode_context_sum=8 * 150, num_logits=8)  # batch 8: beyond the grid
    cm.step_cost(shape)
    cm.step_cost(shape)
    listed = [s for s in cm.describe()["extrapolated_shapes"] if s["op"] == "attn_decode"]
    assert listed == [{"op": "attn_decode", "batch_size": 8, "context_tokens": 150, **HEADS, "lookups": 2}]


def test_clamped_overhead_is_listed_once_per_lookup_not_per_step():
    rows = constant_rows() + [ProfileRow(op="step_overhead", dtype="fp32", time_median_us=100.0 * t,
                                         shape=make_shape(num_tokens=t, num_layers=6)) for t in (2, 4)]
    cm = model(rows)
    for _ in range(3):
        c = cm.step_cost(BatchShape(num_decode=1, decode_context_sum=100, num_logits=1))
    assert c.overhead_s == pytest.approx(200 * US, rel=1e-12) and c.source == "fit"  # clamped to batch 2
    listed = [s for s in cm.describe()["extrapolated_shapes"] if s["op"] == "step_overhead"]
    assert listed == [{"op": "step_overhead", "num_layers": 6, "num_tokens": 1, "lookups": 1}]


def test_calibration_attention_answers_each_shape():
    from simulator.cost.device_choice import device_kernels

    spec, dev = load_model("llama-2-7b"), load_device("h100-sxm")
    cal = device_kernels(dev)
    cm = ProfiledCostModel(RooflineCostModel(spec, dev), cal, profile_name="cal")
    heads = spec.attention_kernel_dims(1)
    for b, ctx in ((4, 1000), (16, 3000), (4, 1000)):
        c = cm._attention_op("attn_decode", BatchShape(num_decode=b, decode_context_sum=b * ctx, num_logits=b))
        want = cal.predict("attn_decode", make_shape(batch_size=b, context_tokens=ctx, **heads), "bf16")
        assert c[0] == pytest.approx(32 * want[0], rel=1e-9) and c[1] == want[1]
    p = cm._attention_op("attn_prefill", BatchShape(prefill_chunks=((512, 0), (512, 0), (256, 128))))
    want = [cal.predict("attn_prefill", make_shape(batch_size=bb, chunk_tokens=n, context_tokens=ctx, **heads), "bf16")
            for bb, n, ctx in ((2, 512, 0), (1, 256, 128))]
    assert p[0] == pytest.approx(32 * (want[0][0] + want[1][0]), rel=1e-9)


# ---- step bookkeeping: repeated steps, evictions, ties, collectives -----------------------------
def test_cached_token_and_logit_prices_count_their_lookups_once():
    cm = model()
    cm.step_cost(DECODE)
    cm.step_cost(DECODE)  # token ops and logits come from the caches; attention is looked up again
    assert dict(cm.sources) == {"profile": 9}


def test_profiled_step_adds_the_policys_eviction_ops():
    from simulator.cost.ops import eviction_ops
    from simulator.cost.shape import KvWork

    cm = model()
    work = KvWork(scan_tokens=1000.0, moved_tokens=10.0)
    base, c = model().step_cost(DECODE), cm.step_cost(BatchShape(num_decode=2, decode_context_sum=200, num_logits=2,
                                                                  kv_work=work))
    ev = eviction_ops(cm.model, work, 4, 1)
    fb = cm.fallback
    evict_s = sum(max(op.flops / fb.flops_per_s, op.bytes / fb.bytes_per_s) for op in ev)
    assert c.evict_s == pytest.approx(evict_s, rel=1e-12) and evict_s > 0
    assert c.time_s == pytest.approx(base.time_s + evict_s, rel=1e-12)
    assert c.flops == pytest.approx(base.flops + sum(op.flops for op in ev), rel=1e-12)
    assert c.bytes == pytest.approx(base.bytes + sum(op.bytes for op in ev), rel=1e-12)


def with_overhead(seconds):
    spec, dev = load_model(MODEL), load_device("cpu")
    from simulator.cost.roofline import RooflineParams

    fit = FittedProfile.from_rows(constant_rows(), {"device": "cpu", "dtype": "fp32"})
    fb = RooflineCostModel(spec, dev, dtype="fp32", params=RooflineParams(step_overhead_s=seconds))
    return ProfiledCostModel(fb, fit, profile_name="test")


def test_profiled_bound_ties_go_to_the_first_part():
    pre = model().step_cost(PREFILL)
    assert with_overhead(pre.compute_s).step_cost(PREFILL).bound == 0  # compute = overhead: compute
    assert with_overhead(pre.compute_s * 1.5).step_cost(PREFILL).bound == 2
    dec = model().step_cost(DECODE)
    assert with_overhead(dec.memory_s).step_cost(DECODE).bound == 1  # memory = overhead: memory
    assert with_overhead(dec.memory_s * 1.5).step_cost(DECODE).bound == 2
    assert model().step_cost(BatchShape()).bound == 0  # nothing at all: compute 0 = memory 0 = overhead 0


def test_profiled_time_includes_collectives():
    c = model(tp=2).step_cost(BatchShape(num_decode=1, decode_context_sum=100, num_logits=1))
    assert c.comm_s > 0
    assert c.time_s == pytest.approx(c.compute_s + c.memory_s + c.comm_s + c.overhead_s + c.evict_s, rel=1e-12)


def test_two_unmeasured_ops_and_their_lookups_in_known_error():
    cm = model([r for r in constant_rows() if r.op not in ("mlp_down", "mlp_up")])
    c = cm.step_cost(PREFILL)
    fb = cm.fallback
    missing = [op for op in token_ops(cm.model, 64, 4, 1) if op.name in ("mlp_up", "mlp_down")]
    roof_c = sum(op.flops / fb.flops_per_s for op in missing if op.flops / fb.flops_per_s >= op.bytes / fb.bytes_per_s)
    roof_m = sum(op.bytes / fb.bytes_per_s for op in missing if op.flops / fb.flops_per_s < op.bytes / fb.bytes_per_s)
    compute, memory, _, _ = split(model(), PREFILL)
    assert c.compute_s == pytest.approx(compute - (180 + 240) * US + roof_c, rel=1e-9)
    assert c.memory_s == pytest.approx(memory + roof_m, rel=1e-9)
    assert dict(cm.sources) == {"profile": 6, "roofline": 2}
    assert cm.describe()["known_error"] == ("fit error: see `servesim fit --test`; op lookups: 6 profile, "
                                            "2 roofline; 0 shapes extrapolated")


def test_decode_priced_on_the_roofline_when_only_prefill_attention_was_measured():
    from simulator.cost.ops import decode_attention

    cm = model([r for r in constant_rows() if r.op != "attn_decode"])
    shape = BatchShape(num_decode=2, decode_context_sum=200, num_logits=2, decode_kv_read_sum=120)
    c = cm.step_cost(shape)
    f, b = decode_attention(2, 200, cm._coeffs, 120)
    fb = cm.fallback
    full = model().step_cost(BatchShape(num_decode=2, decode_context_sum=200, num_logits=2, decode_kv_read_sum=120))
    assert c.time_s == pytest.approx(full.time_s - KERNEL_US["attn_decode"] * US + max(f / fb.flops_per_s,
                                                                                       b / fb.bytes_per_s), rel=1e-12)
    assert (c.flops, c.bytes) == (pytest.approx(full.flops, rel=1e-12), pytest.approx(full.bytes, rel=1e-12))
    two = model([r for r in constant_rows() if r.op != "attn_decode"])
    two.step_cost(shape)
    two.step_cost(shape)
    assert two.sources["roofline"] == 2


def test_kv_cache_dtype_rows_answer_attention_and_the_rest_stay_at_the_dtype():
    from simulator.cost.ops import attention_coefficients

    rows = [r for r in constant_rows() if r.op != "attn_decode"]
    rows += [ProfileRow(op="attn_decode", dtype="fp8", time_median_us=50.0,
                        shape=make_shape(batch_size=b, context_tokens=c, **HEADS)) for b in (1, 64) for c in (4, 128)]
    spec, dev = load_model(MODEL), load_device("cpu")
    fit = FittedProfile.from_rows(rows, {"device": "cpu", "dtype": "fp32"})
    cm = ProfiledCostModel(RooflineCostModel(spec, dev, dtype="fp32", kv_dtype="fp8"), fit, profile_name="kv8")
    assert (cm.dtype, cm.kv_dtype) == ("fp32", "fp8")
    c = cm.step_cost(DECODE)
    assert c.source == "profile" and c.time_s == pytest.approx(sum(KERNEL_US.values()) * US - 360 * US, rel=1e-12)
    assert cm._coeffs == attention_coefficients(spec, 4, 1, 1)  # KV bytes at 1 byte per element


def test_stack_lists_only_the_tables_extrapolations_and_batches_prefill():
    from simulator.cost.device_choice import device_kernels

    spec, dev = load_model("llama-2-7b"), load_device("h200")
    cal = device_kernels(dev)
    assert cal.kind == "transfer"
    rows = [ProfileRow(op="lm_head", dtype="bf16", time_median_us=50.0 + t,
                       shape=make_shape(num_tokens=t, in_dim=4096, out_dim=32000)) for t in (1, 2, 4, 8)]
    rows += [ProfileRow(op="rms_norm", dtype="bf16", time_median_us=2.0,
                        shape=make_shape(num_tokens=t, in_dim=4096)) for t in (1, 64)]
    table = FittedProfile.from_rows(rows, {"device": "h200", "dtype": "bf16"})
    cm = ProfiledCostModel(RooflineCostModel(spec, dev), KernelStack(table, cal), profile_name="stack")
    cm.step_cost(BatchShape(prefill_chunks=((512, 0), (512, 0)), num_logits=16))
    listed = {s["op"] for s in cm.describe()["extrapolated_shapes"]}
    assert listed == {"lm_head", "rms_norm"}  # 16 logits, 1024 tokens: beyond the table; the calibration: never
    heads = spec.attention_kernel_dims(1)
    want = cal.predict("attn_prefill", make_shape(batch_size=2, chunk_tokens=512, context_tokens=0, **heads), "bf16")
    got = cm._attention_op("attn_prefill", BatchShape(prefill_chunks=((512, 0), (512, 0))))
    assert got[0] == pytest.approx(32 * want[0], rel=1e-9)  # one batched call of 2 chunks per layer
    # elementwise at 4 tokens: norms measured (profile), rotary, residual adds and activation from the
    # transferred calibration: the least trusted source of the parts is the op's
    assert cm._token_op("elementwise", 4)[1] == "transfer"
