"""Hand-computed oracles for simulator/accounting (issue 19, mutation testing): every figure below
is written out from the formulas of the module docstrings (energy.py, power.py, kinetics.py) and
formulas.md "Kinetics cost", on toy devices and step tables small enough to add up by hand."""
import json
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
from toy_model import TOY

from hardware import DeviceSpec, load_device
from hardware.catalog import DATA_DIR as HARDWARE_DIR
from simulator.accounting import power as power_mod
from simulator.accounting.energy import (
    energy_section,
    money_sections,
    price_section,
    run_window_s,
    step_energy_w,
    utilizations,
)
from simulator.accounting.kinetics import (
    KineticsInputs,
    _per,
    dense_attended,
    kinetics_cost,
    kinetics_section,
    run_account,
    topk_attended,
)
from simulator.accounting.power import PowerModel, line_model, load_power_model
from simulator.engine import StepTotals

# 100 TFLOP/s bf16, 50 TFLOP/s fp32, 1000 GB/s, 500 W TDP, 100 W idle, $2 per GPU-hour
DEV = DeviceSpec(name="toy", display_name="toy", vendor="none", kind="gpu", memory_gib=80.0,
                 memory_bandwidth_gb_per_s=1000.0, peak_tflops={"bf16": 100.0, "fp32": 50.0}, tdp_w=500.0,
                 idle_w=100.0, host_link_kind="pcie", host_link_gb_per_s=64.0, price_usd_per_hour=2.0,
                 price_as_of="2026-03", price_source="test")
NAN = float("nan")


def steps(**extra):
    """U_c, U_m per step on DEV (bf16): (0.5, 0), (0, 0.25), (0, 1); replica 0 busy 2 s, replica 1 busy 2 s."""
    base = {"replica": np.array([0.0, 0.0, 1.0]), "start_s": np.array([0.0, 1.0, 0.0]),
            "duration_s": np.array([1.0, 1.0, 2.0]), "flops": np.array([5e13, 0.0, 0.0]),
            "bytes": np.array([0.0, 0.25e12, 2e12])}
    return {**base, **extra}


FITTED = {"format": "servesim-power/1", "device": "toy", "kind": "measured", "idle_w": 100.0, "tdp_w": 500.0,
          "active_w": 150.0, "compute_w": 200.0, "memory_w": 100.0, "source": "toy NVML runs",
          "known_error": "toy held-out error 3%"}


@pytest.fixture
def power_dir(tmp_path, monkeypatch):
    """A profiles/data stand-in holding toy/power.json (FITTED unless a test rewrites it)."""
    monkeypatch.setattr(power_mod, "POWER_DIR", tmp_path)
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "power.json").write_text(json.dumps(FITTED))
    return tmp_path


def write_power(folder, **raw):
    path = folder / "toy" / "power.json"
    path.write_text(json.dumps(FITTED | raw))


# ---- power.py ----------------------------------------------------------------------------------
def test_describe_and_to_json_are_the_whole_record():
    m = PowerModel("toy", 100.0, 500.0, active_w=150.0, compute_w=200.0, memory_w=100.0, kind="measured",
                   source="src", known_error="err")
    want = {"kind": "measured", "formula": "P = clip(active_w + compute_w * U_c + memory_w * U_m, idle_w, tdp_w)",
            "idle_w": 100.0, "tdp_w": 500.0, "active_w": 150.0, "compute_w": 200.0, "memory_w": 100.0,
            "source": "src", "known_error": "err"}
    assert m.describe() == want
    assert m.to_json() == {"format": "servesim-power/1", "device": "toy", **want}
    assert list(m.to_json())[:2] == ["format", "device"]


def test_fitted_model_clips_each_utilization_to_0_1():
    m = PowerModel("toy", 100.0, 500.0, active_w=150.0, compute_w=200.0, memory_w=100.0, kind="measured")
    # U_c 1.5 counts as 1: 150 + 200 = 350 (not 450); U_m 2 counts as 1: 150 + 100 = 250 (not 350)
    assert m.step_w(np.array([1.5, 0.0]), np.array([0.0, 2.0])).tolist() == [350.0, 250.0]
    # negative utilizations count as 0: 150 W (not 150 - 100 -> clipped to 100)
    assert m.step_w(np.array([-0.5, 0.0]), np.array([0.0, -1.0])).tolist() == [150.0, 150.0]


def test_line_model_clips_utilization_below_at_0():
    # max(-0.5, -0.25) counts as 0: idle 100 W, not 100 + 400 * (-0.25) = 0 W
    assert line_model(DEV).step_w(np.array([-0.5]), np.array([-0.25])).tolist() == [100.0]


def test_loader_reads_the_file_with_scale_1_for_the_same_idle_and_tdp(power_dir):
    m = load_power_model(DEV)
    assert m == PowerModel("toy", 100.0, 500.0, active_w=150.0, compute_w=200.0, memory_w=100.0, kind="measured",
                           source="toy NVML runs", known_error="toy held-out error 3%")
    assert m.device == "toy"
    assert load_power_model(DEV, calibrated=False) == line_model(DEV)


def test_loader_scale_is_1_when_the_file_has_no_span(power_dir):
    # file: idle 100 = TDP 100 (span 0): no scale (1.0); active = device idle + (130 - 100) * 1
    write_power(power_dir, idle_w=100.0, tdp_w=100.0, active_w=130.0, compute_w=50.0, memory_w=20.0)
    m = load_power_model(DEV)
    assert (m.active_w, m.compute_w, m.memory_w) == (130.0, 50.0, 20.0)


def test_loader_scales_a_narrow_span(power_dir):
    # file span 0.5 W, device span 400 W: scale 800; active 100 + 0.25 * 800, compute 0.25 * 800, memory 0.125 * 800
    write_power(power_dir, idle_w=100.0, tdp_w=100.5, active_w=100.25, compute_w=0.25, memory_w=0.125)
    m = load_power_model(DEV)
    assert (m.active_w, m.compute_w, m.memory_w) == (300.0, 200.0, 100.0)


# ---- energy.py: utilizations and step power -----------------------------------------------------
def test_utilizations_zero_duration_steps_are_idle_and_int_durations_accepted():
    np.full(2, 7.0)  # numpy reuses freed small buffers: leave a dirty one so an uninitialised output would show
    table = {"duration_s": np.array([2, 0]), "flops": np.array([1e14, 5e13]), "bytes": np.array([1e12, 1e12])}
    uc, um = utilizations(table, DEV, "bf16")
    # step 0: 1e14 FLOPs / (1e14 FLOP/s x 2 s) = 0.5; 1e12 B / (1e12 B/s x 2 s) = 0.5; step 1 lasts 0 s: 0
    assert uc.tolist() == [0.5, 0.0] and um.tolist() == [0.5, 0.0]
    np.full(3, 9.0)
    uc, um = utilizations({"duration_s": [0.0, 4.0, 0.0], "flops": np.array([1e14, 1e14, 3e14]),
                           "bytes": np.array([2e12, 1e12, 5e12])}, DEV, "fp32")
    assert uc.tolist() == [0.0, 0.5, 0.0] and um.tolist() == [0.0, 0.25, 0.0]  # fp32 peak 5e13


def test_step_energy_w_picks_the_engine_power_model(power_dir):
    fitted = load_power_model(DEV)
    assert fitted.kind == "measured"
    for engine in (None, object(), SimpleNamespace(device_model="calibrated")):
        w = step_energy_w(DEV, "bf16", engine)
        assert w.power_model == fitted
        # per GPU: 150 + 200 * 0.5 = 250, 150 + 100 * 0.25 = 175, 150 + 100 * 1 = 250
        assert w(steps()).tolist() == [250.0, 175.0, 250.0]
    ideal = step_energy_w(DEV, "bf16", SimpleNamespace(device_model="ideal"))
    assert ideal.power_model == line_model(DEV)
    assert ideal(steps()).tolist() == [300.0, 200.0, 500.0]  # 100 + 400 * max(U_c, U_m)


# ---- energy.py: the section -------------------------------------------------------------------
def test_energy_section_whole_record():
    e = energy_section(steps(), DEV, dtype="bf16", tp=2, replicas=2, window_s=3.0, num_output_tokens=100)
    assert e == {
        "model": "line",
        "utilization": "U_c = FLOPs/(peak FLOP/s x step duration), U_m = bytes/(peak bandwidth x step duration), "
                       "per GPU",
        "power_model": line_model(DEV).describe(), "idle_w": 100.0, "tdp_w": 500.0,
        "power_source": "hardware catalog idle_w and tdp_w: utilization line (uncalibrated estimate)",
        "power_known_error": "not calibrated: no NVML-measured runs for this device (the ideal engine, or a user "
                             "device file)",
        "num_gpus": 4, "num_steps_measured_power": 0, "window_s": 3.0,
        "busy_j": 3000.0, "idle_j": 400.0, "total_j": 3400.0,  # (300 + 200 + 500 * 2) * 2 GPUs; 100 W x 2 GPUs x 2 s
        "kwh": 3400.0 / 3.6e6, "mean_power_w": 3400.0 / 3.0, "j_per_output_token": 34.0,
    }


def test_energy_section_all_steps_measured_is_measured_power():
    e = energy_section(steps(power_w=np.array([250.0, 250.0, 250.0])), DEV, dtype="bf16", tp=2, replicas=2,
                       window_s=3.0, num_output_tokens=100)
    assert e["model"] == "measured power" and e["num_steps_measured_power"] == 3
    assert e["busy_j"] == (250.0 * 1 + 250.0 * 1 + 250.0 * 2) * 2
    some = energy_section(steps(power_w=np.array([250.0, NAN, 250.0])), DEV, dtype="bf16", tp=2, replicas=2,
                          window_s=3.0, num_output_tokens=100)
    assert some["model"] == "line" and some["num_steps_measured_power"] == 2


def test_energy_section_of_no_steps_and_no_window():
    e = energy_section(StepTotals(), DEV, dtype="bf16", tp=1, replicas=1, window_s=0.0, num_output_tokens=0)
    assert e["model"] == "line"  # no step at all: nothing measured, the model's own kind
    assert (e["busy_j"], e["idle_j"], e["total_j"], e["kwh"]) == (0.0, 0.0, 0.0, 0.0)
    assert math.isnan(e["mean_power_w"]) and math.isnan(e["j_per_output_token"])


def test_energy_section_refuses_totals_folded_without_power():
    msg = "energy_section: the step totals were folded without a power model (StepTotals(power_w=...))"
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
        energy_section(StepTotals.of(steps()), DEV, dtype="bf16", tp=1, replicas=2, window_s=3.0,
                       num_output_tokens=1)


def test_run_window_s_ignores_a_non_finite_last_finish():
    t = StepTotals.of({"start_s": np.array([0.0]), "duration_s": np.array([0.25])})
    assert run_window_s(t, 2.5) == 2.5 and run_window_s(t, 0.1) == 0.25
    assert run_window_s(t, NAN) == 0.25 and run_window_s(t, math.inf) == 0.25


# ---- energy.py: price and the run's money sections ----------------------------------------------
def test_price_file_names_catalog_and_user_device_files(tmp_path):
    h100 = load_device("h100-sxm")
    p = price_section(h100, override_usd_per_gpu_hour=None, num_gpus=1, window_s=3600.0, num_output_tokens=0)
    assert p["source"] == f"hardware catalog h100-sxm, as of {h100.price_as_of}"
    assert math.isnan(p["usd_per_million_output_tokens"]) and p["usd_total"] == h100.price_usd_per_hour
    toml = tmp_path / "mine.toml"
    toml.write_text((HARDWARE_DIR / "h100-sxm.toml").read_text())
    mine = load_device(toml)
    q = price_section(mine, override_usd_per_gpu_hour=None, num_gpus=1, window_s=1.0, num_output_tokens=1)
    assert q["source"] == f"device file {toml}, as of {mine.price_as_of}"


def fake_result(table, finish_s, *, calibrated=True, tp=2, replicas=2, power=None):
    """What money_sections reads of a RunResult: recorder totals (folded with `power`) and finishes."""
    totals = StepTotals.of(table, step_energy_w(DEV, "bf16", power=power or line_model(DEV)))
    rec = SimpleNamespace(totals=totals, finish_s=np.asarray(finish_s, dtype=np.float64))
    s = SimpleNamespace(dtype="bf16", tp=tp, replicas=replicas, price_usd_per_hour=None)
    return SimpleNamespace(recorder=rec, scenario=s, device=DEV, calibrated=calibrated)


def test_money_sections_hand_computed(power_dir):
    fitted = load_power_model(DEV)
    r = fake_result(steps(), [1.5, 2.5, NAN], power=fitted)
    out = money_sections(r, {"total_output_tokens": 100})
    e, p = out["energy"], out["price"]
    # window: the last finish 2.5 s (after the last step's end, 2 s); per-GPU watts 250, 175, 250 (fitted)
    assert e["window_s"] == p["window_s"] == 2.5
    assert e["busy_j"] == (250.0 * 1 + 175.0 * 1 + 250.0 * 2) * 2 == 1850.0
    assert e["idle_j"] == 100.0 * 2 * (0.5 + 0.5) and e["total_j"] == 2050.0
    assert e["j_per_output_token"] == 20.5 and e["mean_power_w"] == 820.0
    assert e["model"] == "measured" and e["power_model"] == fitted.describe()
    assert e["power_source"] == "toy NVML runs" and e["power_known_error"] == "toy held-out error 3%"
    assert p["num_gpus"] == e["num_gpus"] == 4 and p["usd_per_hour"] == 8.0
    assert p["usd_total"] == 8.0 * 2.5 / 3600.0
    assert p["usd_per_million_output_tokens"] == 8.0 * 2.5 / 3600.0 / 100 * 1e6
    ideal = money_sections(fake_result(steps(), [1.5, 2.5, NAN], calibrated=False, power=fitted), {})
    assert ideal["energy"]["model"] == "line" and ideal["energy"]["power_model"] == line_model(DEV).describe()
    assert math.isnan(ideal["energy"]["j_per_output_token"]) and math.isnan(ideal["price"]["usd_per_million_output_tokens"])


@pytest.mark.parametrize("finish", [[], [NAN, NAN]])
def test_money_sections_window_without_finishes_is_the_last_step_end(finish):
    table = {"replica": np.array([0.0]), "start_s": np.array([0.0]), "duration_s": np.array([0.25]),
             "flops": np.array([0.0]), "bytes": np.array([0.0])}
    out = money_sections(fake_result(table, finish, tp=1, replicas=1), {"total_output_tokens": 5})
    assert out["energy"]["window_s"] == out["price"]["window_s"] == 0.25
    assert out["energy"]["idle_j"] == 0.0 and out["energy"]["busy_j"] == 100.0 * 0.25  # U = 0: idle draw


# ---- kinetics.py: input checks (the whole message) ---------------------------------------------------
@pytest.mark.parametrize("bad,msg", [
    (dict(prompt_tokens=True), "prompt_tokens=True is invalid; allowed: an integer >= 1"),
    (dict(output_tokens=0), "output_tokens=0 is invalid; allowed: an integer >= 1"),
    (dict(intensity=-1.0), "intensity=-1.0 is invalid; allowed: FLOPs per byte > 0"),
    (dict(peak_flops=0.0), "peak_flops=0.0 is invalid; allowed: FLOP/s > 0"),
    (dict(attention="sparse"), "attention='sparse' is invalid; allowed: dense, topk, block_topk"),
    (dict(counting="approx"), "counting='approx' is invalid; allowed: exact, paper"),
    (dict(params_convention="paper"), "params_convention='paper' is invalid; allowed: exact, kinetics"),
    (dict(attention="topk"), "budget is required with attention topk or block_topk"),
    (dict(budget=8), "budget=8 is only allowed with attention topk or block_topk"),
    (dict(attention="block_topk", budget=8), "block_size is required with attention block_topk"),
    (dict(attention="topk", budget=8, block_size=4), "block_size=4 is only allowed with attention block_topk"),
    (dict(attention="topk", budget=0), "budget=0 is invalid; allowed: an integer >= 1"),
    (dict(attention="topk", budget=True), "budget=True is invalid; allowed: an integer >= 1"),
    (dict(attention="topk", budget=2.5), "budget=2.5 is invalid; allowed: an integer >= 1"),
    (dict(params_per_token=0), "params_per_token=0 is invalid; allowed: an integer >= 1"),
])
def test_kinetics_inputs_messages(bad, msg):
    with pytest.raises(ValueError) as exc:
        KineticsInputs(**({"model": TOY, "prompt_tokens": 10, "output_tokens": 4} | bad))
    assert str(exc.value) == msg


def test_kinetics_inputs_smallest_allowed_values():
    # budget 1: every generated token attends 1 entry; P = 1; intensity 0.5; peak 0.5 FLOP/s
    c = kinetics_cost(KineticsInputs(model=TOY, prompt_tokens=10, output_tokens=4, attention="topk", budget=1,
                                     params_per_token=1, intensity=0.5, peak_flops=0.5))
    assert c.c_comp_flops == 2 * 1 * 4 + 4 * 64 * 4 == 1032
    assert c.c_mem_bytes == 2 * 2 * 32 * 4 == 512
    assert c.eflops_total == 1032 + 0.5 * 512 and c.seconds_on_device == (1032 + 256) / 0.5


# ---- kinetics.py: exact integer counts beyond float precision ------------------------------------
def test_attended_counts_stay_exact_past_2_to_the_53():
    lin, n = 3, 10**9 + 7
    # arithmetic series L_in, ..., L_in + L - 1: (first + last) * L / 2
    assert dense_attended(lin, n) == (lin + lin + n - 1) * n // 2 == 500000009500000042
    # budget >= every context: min(B, L_in + i) is L_in + i throughout
    assert topk_attended(lin, n, n + lin) == 500000009500000042
    small = sum(min(7, 3 + i) for i in range(10))  # brute force: 3 4 5 6 7 7 7 7 7 7
    assert topk_attended(3, 10, 7) == small == 60


def test_prefill_flops_exact_past_2_to_the_53():
    lin = 10**9 + 7
    c = kinetics_cost(KineticsInputs(model=TOY, prompt_tokens=lin, output_tokens=1, params_per_token=1000,
                                     include_prefill=True))
    # 2 P (L_in - 1) + 4 H d nL (L_in - 1) L_in / 2, in integers, rounded once
    assert c.terms["prefill_flops"] == float(2 * 1000 * (lin - 1) + 2 * 64 * (lin - 1) * lin)


# ---- kinetics.py: per-unit figures and the run account ----------------------------------------------
def test_per_unit_figures_and_their_nans():
    assert _per(10.0, 4.0, 6.0, 2, 5) == {
        "eflops_per_output_token": 5.0, "eflops_compute_per_output_token": 2.0,
        "eflops_memory_per_output_token": 3.0, "eflops_per_request": 2.0, "memory_share": 0.6}
    empty = _per(0.0, 0.0, 0.0, 0, 0)
    assert set(empty) == {"eflops_per_output_token", "eflops_compute_per_output_token",
                          "eflops_memory_per_output_token", "eflops_per_request", "memory_share"}
    assert all(math.isnan(v) for v in empty.values())


def table(**extra):
    """A prefill of 10 tokens that finishes (1 logit), then 2 decodes attending 23 entries, 13 of them read."""
    base = {"replica": np.array([0, 0]), "start_s": np.array([0.0, 1.0]), "duration_s": np.array([1.0, 1.0]),
            "num_logits": np.array([1, 2]), "decode_context_sum": np.array([0, 23]),
            "num_prefill_tokens": np.array([10, 0]), "decode_kv_read_sum": np.array([0, 13]),
            "flops": np.array([1e6, 2e6]), "bytes": np.array([3e5, 4e5])}
    return {**base, **extra}


def test_run_account_reads_the_shared_prefix_column_when_recorded():
    assert TOY.active_params_per_token == 2 * (32 * 64 + 32 * 32 + 3 * 32 * 64) + 32 * 100 == 21632
    acc = run_account(table(), TOY, dtype="bf16", intensity=2.0, peak_flops=1e3)
    # passes 3, attended 23 + 10, read 13 + 10; bf16 KV bytes per entry 2 * 2 * 32 = 128
    assert acc.c_comp_flops == 2 * 21632 * 3 + 4 * 64 * 33 == 138240
    assert acc.c_mem_bytes == 128 * 23 == 2944
    assert acc.seconds_on_device == (138240 + 2.0 * 2944) / 1e3
    no_col = table()
    del no_col["decode_kv_read_sum"]
    assert run_account(no_col, TOY).c_mem_bytes == 128 * 33  # without the column every attended entry is read


def kinetics_result(tp=2):
    totals = StepTotals.of(table())
    return SimpleNamespace(recorder=SimpleNamespace(totals=totals), scenario=SimpleNamespace(dtype="fp32", tp=tp),
                           device=DEV, model=TOY)


def test_kinetics_section_whole_record():
    k = kinetics_section(kinetics_result(), {"total_output_tokens": 6, "completed": 2})
    # fp32: KV bytes per entry 2 * 4 * 32 = 256; C_comp 138240 (above), C_mem 256 * (13 + 10) = 5888
    paper_mem, dev_mem = 562.5 * 5888, 50.0 * 5888  # device intensity: 5e13 FLOP/s over 1e12 B/s
    paper_total, dev_total = 138240 + paper_mem, 138240 + dev_mem
    assert k == {
        "counting": "Kinetics (arXiv 2506.05333): decode passes only, no weight traffic; generated token i attends "
                    "L_in + i tokens (token 0 = the prefill's last row)",
        "params_per_token": 21632, "num_forward_passes": 3,
        "paper_intensity": {
            "c_comp_flops": 138240.0, "c_mem_bytes": 5888.0, "eflops_compute": 138240.0, "eflops_memory": paper_mem,
            "eflops_total": paper_total, "intensity": 562.5, "seconds_on_device": paper_total / 4.5e15,
            "peak_flops": 4.5e15, "eflops_per_output_token": paper_total / 6,
            "eflops_compute_per_output_token": 138240 / 6, "eflops_memory_per_output_token": paper_mem / 6,
            "eflops_per_request": paper_total / 2, "memory_share": paper_mem / paper_total},
        "device_intensity": {
            "c_comp_flops": 138240.0, "c_mem_bytes": 5888.0, "eflops_compute": 138240.0, "eflops_memory": dev_mem,
            "eflops_total": dev_total, "intensity": 50.0, "seconds_on_device": dev_total / 5e13,
            "peak_flops": 5e13, "eflops_per_output_token": dev_total / 6,
            "eflops_compute_per_output_token": 138240 / 6, "eflops_memory_per_output_token": dev_mem / 6,
            "eflops_per_request": dev_total / 2, "memory_share": dev_mem / dev_total},
        # every op the cost model counted, on both TP ranks: (1e6 + 2e6) x 2 FLOPs, (3e5 + 4e5) x 2 bytes
        "all_ops": {"flops": 6e6, "bytes": 1.4e6, "intensity": 562.5, "eflops_total": 6e6 + 562.5 * 1.4e6,
                    "eflops_per_output_token": (6e6 + 562.5 * 1.4e6) / 6, "eflops_compute_per_output_token": 1e6,
                    "eflops_memory_per_output_token": 562.5 * 1.4e6 / 6,
                    "eflops_per_request": (6e6 + 562.5 * 1.4e6) / 2,
                    "memory_share": 562.5 * 1.4e6 / (6e6 + 562.5 * 1.4e6)},
    }


def test_kinetics_section_without_counts_gives_nan_per_unit():
    k = kinetics_section(kinetics_result(tp=1), {})
    for part in ("paper_intensity", "device_intensity", "all_ops"):
        for key in ("eflops_per_output_token", "eflops_compute_per_output_token", "eflops_memory_per_output_token",
                    "eflops_per_request"):
            assert math.isnan(k[part][key]), (part, key)
    assert k["all_ops"]["flops"] == 3e6 and k["all_ops"]["bytes"] == 7e5
