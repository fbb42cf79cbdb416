"""Oracles for the cost model's choices (issue 19, mutation testing): which engine, profile and
calibration a scenario gets (build.py, profile_choice.py, build.py's module docstring for the
order of trust), with the exact one-line messages of bad profiles."""
import json

import pytest

from hardware import load_device
from profiles.table import ProfileRow, make_shape, save_profile
from simulator.cost import profile_choice
from simulator.cost.build import build_cost_model, calibrated_dir, resolve_engine
from simulator.cost.engine import EngineSpec, load_engine
from simulator.cost.profile_choice import PROFILE_KINDS, choose_profile, load_any, shipped_candidates
from simulator.cost.roofline import RooflineCostModel
from simulator.errors import ServesimError
from simulator.models import load_model
from simulator.scenario import Scenario


# ---- build.py: the calibrate output directory and the engine ------------------------------------
def calibrate_dir(tmp_path, device="h100-sxm", calibrated_by="bench.json", engine_toml=None, name="cal"):
    """A `servesim calibrate` output stand-in: calibration.json, the device's shipped device.json
    (its provenance marked as calibrated on `calibrated_by`), and optionally an engine.toml."""
    out = tmp_path / name
    out.mkdir()
    (out / "calibration.json").write_text("{}")
    raw = json.loads((profile_choice.DATA_DIR / device / "device.json").read_text())
    if calibrated_by:
        raw["provenance"]["calibrated_by"] = calibrated_by
    (out / "device.json").write_text(json.dumps(raw))
    if engine_toml:
        (out / "engine.toml").write_text(engine_toml)
    return out


def test_calibrated_dir(tmp_path):
    assert calibrated_dir(None) is None and calibrated_dir("") is None
    assert calibrated_dir("none") is None and calibrated_dir("NONE") is None
    assert calibrated_dir(str(tmp_path)) is None  # no calibration.json: not a calibrate output
    out = calibrate_dir(tmp_path)
    assert calibrated_dir(str(out)) == out


def test_resolve_engine_defaults_and_the_calibrated_engine(tmp_path):
    gpu, cpu = load_device("h100-sxm"), load_device("cpu")
    assert resolve_engine(Scenario(), gpu) == load_engine("vllm")
    assert resolve_engine(Scenario(hardware="cpu"), cpu) == load_engine("kernels")
    assert resolve_engine(Scenario(engine="trtllm"), gpu) == load_engine("trtllm")
    out = calibrate_dir(tmp_path, engine_toml='name = "mine"\ndisplay_name = "Mine"\nstep_overhead_ms = 0.25\n')
    mine = resolve_engine(Scenario(profile=str(out)), gpu)
    assert (mine.name, mine.step_overhead_ms) == ("mine", 0.25)
    assert resolve_engine(Scenario(profile=str(out), engine="trtllm"), gpu) == load_engine("trtllm")
    bare = calibrate_dir(tmp_path, name="bare")
    assert resolve_engine(Scenario(profile=str(bare)), gpu) == load_engine("vllm")  # no engine.toml there


def test_build_uses_the_calibrated_directory(tmp_path):
    out = calibrate_dir(tmp_path)
    s = Scenario(model="llama-2-7b", hardware="h100-sxm", profile=str(out))
    cm = build_cost_model(s, load_model("llama-2-7b"), load_device("h100-sxm"))
    d = cm.describe()
    assert d["kind"] == "calibrated" and d["profile"] == f"calibrated profile {out}"
    assert d["calibration"]["calibrated_by"] == "bench.json" and d["measured_profile"] is None
    plain = calibrate_dir(tmp_path, calibrated_by=None, name="plain")
    d = build_cost_model(Scenario(model="llama-2-7b", hardware="h100-sxm", profile=str(plain)),
                         load_model("llama-2-7b"), load_device("h100-sxm")).describe()
    assert d["profile"] == "device calibration h100-sxm (fitted on measured tables)"


def test_build_labels_and_engine_all_reduce_latency():
    model = load_model("llama-2-7b")
    h100, h200 = load_device("h100-sxm"), load_device("h200")
    engine = EngineSpec(name="x", display_name="X", all_reduce_latency_us=5.0)
    cm = build_cost_model(Scenario(model="llama-2-7b", hardware="h100-sxm", tp=2), model, h100, engine=engine)
    assert cm.profile_name == "device calibration h100-sxm (fitted on measured tables)"
    assert cm.all_reduce_latency_s == pytest.approx(5e-6, rel=1e-12) and cm.measured_profile is None
    assert build_cost_model(Scenario(model="llama-2-7b", hardware="h100-sxm"), model, h100,
                            engine=EngineSpec(name="y", display_name="Y")).all_reduce_latency_s is None
    t = build_cost_model(Scenario(model="llama-2-7b", hardware="h200"), model, h200)
    assert t.profile_name == "device calibration h200 (transfer model)"
    assert t.describe()["calibration"]["kind"] == "transfer"


def test_build_stacks_a_measured_profile_over_the_calibration(tmp_path):
    model = load_model("llama-2-7b")
    rows = [ProfileRow(op="lm_head", dtype="bf16", time_median_us=50.0 + t,
                       shape=make_shape(num_tokens=t, in_dim=4096, out_dim=32000)) for t in (1, 2, 4, 8)]
    save_profile(rows, {"device": "h100-sxm", "dtype": "bf16", "model": "llama-2-7b"}, tmp_path / "prof")
    s = Scenario(model="llama-2-7b", hardware="h100-sxm", profile=str(tmp_path / "prof"))
    cm = build_cost_model(s, model, load_device("h100-sxm"))
    assert cm.profile_name == f"measured profile {tmp_path / 'prof'} over device calibration h100-sxm (fitted on " \
                              "measured tables)"
    assert cm.measured_profile == str(tmp_path / "prof")
    assert set(cm.fit.layers[0].ops) == {"lm_head"} and len(cm.fit.layers) == 2
    # the measured table answers lm_head: 50 + 2 us for 2 tokens, one call
    assert cm._logit_op("lm_head", 2) == (pytest.approx(52e-6, rel=1e-9), "profile")


def test_build_roofline_reads_the_scenario_numbers():
    model = load_model("llama-2-7b")
    s = Scenario(model="llama-2-7b", hardware="h100-sxm", profile="none", eta_compute=0.5, eta_memory=0.25,
                 step_overhead_ms=2.0, tp=2, dtype="fp16", kv_cache_dtype="fp8")
    cm = build_cost_model(s, model, load_device("h100-sxm"))
    assert isinstance(cm, RooflineCostModel)
    assert (cm.params.eta_compute, cm.params.eta_memory, cm.params.step_overhead_s) == (0.5, 0.25, 2e-3)
    assert (cm.dtype, cm.tp, cm.kv_dtype, cm.kv_beta, cm.beta) == ("fp16", 2, "fp8", 1, 2)


# ---- profile_choice.py -------------------------------------------------------------------------
def test_explicit_profile_is_checked_and_named(tmp_path):
    rows = [ProfileRow(op="lm_head", dtype="fp32", time_median_us=5.0,
                       shape=make_shape(num_tokens=t, in_dim=8, out_dim=16)) for t in (1, 2)]
    save_profile(rows, {"device": "cpu", "dtype": "fp32", "model": "m"}, tmp_path / "p")
    chosen = choose_profile(profile=str(tmp_path / "p"), hardware="cpu", model="m", dtype="fp32", mismatch_ok=False)
    assert (chosen.name, chosen.shipped) == (str(tmp_path / "p"), False)
    assert chosen.fit.provenance["table"] == str(tmp_path / "p")
    with pytest.raises(ServesimError) as exc:
        choose_profile(profile=str(tmp_path / "p"), hardware="h100-sxm", model="m", dtype="bf16", mismatch_ok=False)
    assert str(exc.value) == (f"profile {tmp_path / 'p'} was measured on device 'cpu' (scenario: 'h100-sxm') and "
                              "dtype 'fp32' (scenario: 'bf16'); pass --profile-mismatch-ok to use it anyway")
    ok = choose_profile(profile=str(tmp_path / "p"), hardware="h100-sxm", model="m", dtype="bf16", mismatch_ok=True)
    assert ok.name == str(tmp_path / "p")


def test_shipped_fit_is_found_by_default_and_dtypes_must_match():
    got = choose_profile(profile=None, hardware="a100-80gb", model="llama-2-7b", dtype="bf16", mismatch_ok=False)
    assert (got.name, got.shipped) == ("profiles/data/a100-80gb/vidur-llama-2-7b.fit.json", True)
    assert choose_profile(profile=None, hardware="a100-80gb", model="llama-2-7b", dtype="bf16", mismatch_ok=False,
                          include_fits=False) is None
    assert choose_profile(profile=None, hardware="a100-80gb", model="llama-2-7b", dtype="fp32",
                          mismatch_ok=False) is None  # the shipped fit is fp16: not for an fp32 run


def test_shipped_candidates_order(tmp_path, monkeypatch):
    monkeypatch.setattr(profile_choice, "DATA_DIR", tmp_path)
    dev = tmp_path / "dev"
    for table, model in (("a-other", "other"), ("b-mine", "mine")):
        (dev / table).mkdir(parents=True)
        (dev / table / "metadata.json").write_text(json.dumps({"model": model}))
    (dev / "x.fit.json").write_text("{}")
    assert shipped_candidates("dev", "mine") == [dev / "b-mine", dev / "x.fit.json", dev / "a-other"]
    assert shipped_candidates("dev", "mine", include_fits=False) == [dev / "b-mine"]
    assert shipped_candidates("no-device", "mine") == []


@pytest.mark.parametrize("name,text,why", [
    ("a.json", '{"format": "servesim-fit/1"}', "not a servesim profile (lacks key 'ops')"),
    ("e.json", '{"format": "servesim-fit/1", "ops": 3, "provenance": {}, "grids": []}',
     "not a servesim profile ('int' object has no attribute 'items')"),
])
def test_load_any_names_what_is_not_a_profile(tmp_path, name, text, why):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ServesimError) as exc:
        load_any(path)
    assert str(exc.value) == f"profile {str(path)!r}: {why}; {PROFILE_KINDS}"


def test_load_any_wrong_format_and_missing_table(tmp_path):
    path = tmp_path / "f.json"
    path.write_text('{"a": 1}')
    with pytest.raises(ServesimError) as exc:
        load_any(path)
    assert str(exc.value) == (f"{path}: not a servesim fit (format None, expected 'servesim-fit/1'); {PROFILE_KINDS}")
    with pytest.raises(ServesimError) as exc:
        load_any(tmp_path / "nope")
    assert str(exc.value) == f"profile {str(tmp_path / 'nope')!r}: profile table {str(tmp_path / 'nope')!r} does not exist"


def test_profile_none_means_the_roofline_even_beside_a_folder_named_none(tmp_path, monkeypatch):
    calibrate_dir(tmp_path, name="none")
    monkeypatch.chdir(tmp_path)
    assert calibrated_dir("none") is None and calibrated_dir("None") is None


def test_build_label_names_an_unknown_calibration_kind_as_is(tmp_path):
    out = calibrate_dir(tmp_path, calibrated_by=None)
    raw = json.loads((out / "device.json").read_text())
    raw["provenance"]["kind"] = "custom"
    (out / "device.json").write_text(json.dumps(raw))
    cm = build_cost_model(Scenario(model="llama-2-7b", hardware="h100-sxm", profile=str(out)),
                          load_model("llama-2-7b"), load_device("h100-sxm"))
    assert cm.profile_name == "device calibration h100-sxm (custom)"


def test_build_passes_the_token_op_builder_and_the_models_kv_sharing():
    from simulator.cost.ops import token_ops_without_experts
    from simulator.cost.shape import BatchShape

    model = load_model("qwen3-0.6b")  # 16 query heads, 8 KV heads
    s = Scenario(model="qwen3-0.6b", hardware="h100-sxm")
    cm = build_cost_model(s, model, load_device("h100-sxm"), token_op_builder=token_ops_without_experts)
    assert cm.fallback._token_ops is token_ops_without_experts
    shape = BatchShape(num_decode=8, decode_context_sum=8 * 4096, num_logits=8)
    shared = build_cost_model(s, model, load_device("h100-sxm"), engine=EngineSpec(name="a", display_name="A"))
    per_head = build_cost_model(s, model, load_device("h100-sxm"),
                                engine=EngineSpec(name="b", display_name="B", gqa_kv_shared=False))
    # KV read once per query head: decode attention (8 x 4096 cached tokens, memory-bound) takes longer
    assert per_head.step_cost(shape).time_s > shared.step_cost(shape).time_s


def test_build_finds_a_shipped_same_model_table(tmp_path, monkeypatch):
    monkeypatch.setattr(profile_choice, "DATA_DIR", tmp_path / "profiles" / "data")
    folder = tmp_path / "profiles" / "data" / "h100-sxm" / "mine"
    rows = [ProfileRow(op="lm_head", dtype="bf16", time_median_us=50.0 + t,
                       shape=make_shape(num_tokens=t, in_dim=4096, out_dim=32000)) for t in (1, 2, 4, 8)]
    save_profile(rows, {"device": "h100-sxm", "dtype": "bf16", "model": "llama-2-7b"}, folder)
    cm = build_cost_model(Scenario(model="llama-2-7b", hardware="h100-sxm"), load_model("llama-2-7b"),
                          load_device("h100-sxm"))
    assert cm.measured_profile == "profiles/data/h100-sxm/mine"
    other = build_cost_model(Scenario(model="llama-2-13b", hardware="h100-sxm"), load_model("llama-2-13b"),
                             load_device("h100-sxm"))
    assert other.measured_profile is None  # a table of another model is not stacked over the calibration
