import json

import pytest

from hardware import load_device
from profiles.fit import FittedProfile
from profiles.table import ProfileRow, make_shape, save_profile
from simulator.cli import main
from simulator.cost.profiled import ProfiledCostModel
from simulator.cost.roofline import RooflineCostModel
from simulator.cost.shape import BatchShape
from simulator.errors import ServesimError
from simulator.models import load_model

MODEL = "tiny-llama-validate"  # 6 layers, hidden 768, 12 heads / 4 KV heads of 64, MLP 2048, vocab 8192
US = 1e-6


def constant_rows(tokens=(1, 64), decode=((1, 4), (64, 128)), prefill=((16, 64), (0,))):
    """A profile where every kernel call takes a known constant time (microseconds)."""
    heads = dict(num_heads=12, num_kv_heads=4, head_dim=64)
    per_call = {"attn_qkv": 10, "attn_out": 20, "mlp_up": 30, "mlp_down": 40, "rms_norm": 1, "residual_add": 2,
                "rotary": 3, "activation": 4, "lm_head": 100, "sampling": 7}
    dims = {"attn_qkv": dict(in_dim=768, out_dim=(12 + 8) * 64, **heads), "attn_out": dict(in_dim=768, out_dim=768),
            "mlp_up": dict(in_dim=768, out_dim=4096), "mlp_down": dict(in_dim=2048, out_dim=768),
            "rms_norm": dict(in_dim=768), "residual_add": dict(in_dim=768), "rotary": heads,
            "activation": dict(out_dim=2048), "lm_head": dict(in_dim=768, out_dim=8192), "sampling": dict(out_dim=8192)}
    rows = [ProfileRow(op=op, dtype="fp32", time_median_us=float(t), shape=make_shape(num_tokens=n, **dims[op]))
            for op, t in per_call.items() for n in tokens]
    rows += [ProfileRow(op="attn_decode", dtype="fp32", time_median_us=50.0,
                        shape=make_shape(batch_size=b, context_tokens=c, **heads)) for b in decode[0] for c in decode[1]]
    rows += [ProfileRow(op="attn_prefill", dtype="fp32", time_median_us=60.0,
                        shape=make_shape(batch_size=1, chunk_tokens=n, context_tokens=c, **heads))
             for n in prefill[0] for c in prefill[1]]
    return rows


def model_with(rows, tp=1):
    spec, dev = load_model(MODEL), load_device("cpu")
    fit = FittedProfile.from_rows(rows, {"device": "cpu", "dtype": "fp32"})
    return ProfiledCostModel(RooflineCostModel(spec, dev, dtype="fp32", tp=tp), fit, profile_name="test")


def test_decode_step_is_sum_of_kernels():
    cm = model_with(constant_rows())
    c = cm.step_cost(BatchShape(num_decode=2, decode_context_sum=200, num_logits=2))
    layers = 6
    per_layer = 10 + 20 + 30 + 40 + 2 * 1 + 2 * 2 + 3 + 4 + 50
    expected = (layers * per_layer + 1 + 100 + 7) * US  # +1: final norm
    assert c.time_s == pytest.approx(expected)
    assert c.source == "profile"
    assert cm.describe()["num_extrapolated_shapes"] == 0


def test_prefill_pairs_and_extrapolation_listed():
    cm = model_with(constant_rows())
    c = cm.step_cost(BatchShape(prefill_chunks=((32, 0), (32, 0), (100, 0)), num_logits=3))
    assert c.source == "fit"  # 96 + 100 = 196 tokens > 64, (100, 0) prefill outside the grid
    d = cm.describe()
    ops = {s["op"] for s in d["extrapolated_shapes"]}
    assert "attn_qkv" in ops and "attn_prefill" in ops
    assert any(s["op"] == "attn_prefill" and s["chunk_tokens"] == 100 for s in d["extrapolated_shapes"])


def test_unmeasured_op_uses_roofline():
    rows = [r for r in constant_rows() if r.op != "attn_decode"]
    cm = model_with(rows)
    c = cm.step_cost(BatchShape(num_decode=1, decode_context_sum=64, num_logits=1))
    assert c.source == "roofline"
    assert cm.describe()["op_sources"]["roofline"] >= 1


def _write_profile(tmp_path, device="cpu", dtype="fp32"):
    folder = tmp_path / "prof"
    save_profile(constant_rows(tokens=(1, 2, 4, 8, 16, 32, 64), decode=((1, 2), (16, 128))), {"device": device, "dtype": dtype,
                                                                   "model": MODEL}, folder)
    return folder


def test_simulate_with_profile_names_it(tmp_path, capsys):
    folder = _write_profile(tmp_path)
    args = ["simulate", "--model", MODEL, "--hardware", "cpu", "--dtype", "fp32", "--scheduler", "static",
            "--max-num-seqs", "2", "--num-requests", "4", "--rate", "inf", "--prompt-tokens", "16",
            "--output-tokens", "4", "--max-model-len", "64", "--profile", str(folder), "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    cm = summary["provenance"]["cost_model"]
    assert cm["kind"] == "profiled" and cm["profile"] == str(folder)
    # 2 batches x (prefill + 3 decode steps); decode steps are pure table lookups
    per_decode = (6 * (10 + 20 + 30 + 40 + 2 + 4 + 3 + 4 + 50) + 1 + 100 + 7) * US
    assert summary["metrics"]["mean_tpot_ms"] == pytest.approx(per_decode * 1e3)


def test_mismatched_profile_is_an_error_unless_asked(tmp_path, capsys):
    folder = _write_profile(tmp_path, device="h100-sxm", dtype="bf16")
    base = ["simulate", "--model", MODEL, "--hardware", "cpu", "--dtype", "fp32", "--num-requests", "3",
            "--prompt-tokens", "8", "--output-tokens", "2", "--max-model-len", "64", "--profile", str(folder)]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert "h100-sxm" in err and "--profile-mismatch-ok" in err
    assert main(base + ["--profile-mismatch-ok"]) == 0


def test_default_is_the_device_calibration_and_ideal_keeps_the_shipped_fit():
    from simulator.run import simulate
    from simulator.scenario import Scenario

    r = simulate(Scenario(model="llama-2-7b", hardware="a100-80gb", num_requests=20))
    assert r.cost_model["kind"] == "calibrated"  # the device calibration (itself fitted on the Vidur tables)
    assert r.cost_model["measured_profile"] is None  # fits of other models are not stacked over it
    assert r.cost_model["calibration"]["device"] == "a100-80gb" and r.cost_model["calibration"]["kind"] == "fit"
    assert "attn_qkv" in r.cost_model["fitted_ops"]
    r = simulate(Scenario(model="llama-2-7b", hardware="a100-80gb", num_requests=20, profile="none"))
    assert r.cost_model["kind"] == "roofline"
    r = simulate(Scenario(model="llama-2-7b", hardware="h100-sxm", num_requests=20))
    assert r.cost_model["kind"] == "calibrated" and r.cost_model["measured_profile"] is None
    # the pre-calibration model: the shipped fit where one exists, else the roofline
    r = simulate(Scenario(model="llama-2-7b", hardware="a100-80gb", num_requests=20, engine="ideal"))
    assert r.cost_model["kind"] == "profiled" and r.cost_model["profile"].startswith("profiles/data/a100-80gb/")
    r = simulate(Scenario(model="llama-2-7b", hardware="h100-sxm", num_requests=20, engine="ideal"))
    assert r.cost_model["kind"] == "roofline"


def test_missing_profile_path():
    from simulator.cost.profile_choice import choose_profile

    with pytest.raises(ServesimError, match="does not exist"):
        choose_profile(profile="/nonexistent/x", hardware="cpu", model=MODEL, dtype="fp32", mismatch_ok=False)


def test_moe_router_and_experts_use_their_profiled_kernels():
    from simulator.cost.ops import expected_active_experts

    spec = load_model("mixtral-8x7b")  # 8 experts, top-2, 32 MoE layers, hidden 4096, expert width 14336
    rows = [ProfileRow(op="moe_expert", dtype="bf16", time_median_us=100.0 + 10.0 * t,
                       shape=make_shape(num_tokens=t, in_dim=4096, out_dim=14336)) for t in (1, 2, 4, 8, 16, 32)]
    rows += [ProfileRow(op="moe_router", dtype="bf16", time_median_us=3.0 + t,
                        shape=make_shape(num_tokens=t, in_dim=4096, out_dim=8)) for t in (1, 2, 4, 8, 16, 32)]
    fit = FittedProfile.from_rows(rows, {"device": "h100-sxm", "dtype": "bf16"})
    cm = ProfiledCostModel(RooflineCostModel(spec, load_device("h100-sxm"), dtype="bf16"), fit, profile_name="moe")
    for t, per_expert in ((1, 1), (4, 1), (16, 4)):  # mean tokens per active expert, rounded
        active = expected_active_experts(8, 2, t)
        assert per_expert == max(round(2 * t / active), 1)
        got, src = cm._token_op("moe_experts", t)
        assert src == "profile" and got == pytest.approx(32 * active * (100 + 10 * per_expert) * US)
        assert cm._token_op("moe_router", t)[0] == pytest.approx(32 * (3 + t) * US)
