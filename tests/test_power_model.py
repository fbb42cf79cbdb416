"""The power model: the utilization line, fitted/transferred coefficients and their loader, the
NNLS fit on NVML-like runs, and the energy it gives a hand-computed toy run."""
import json
import re

import numpy as np
import pytest

from hardware import DeviceSpec, device_names, load_device
from hardware.catalog import DATA_DIR as HARDWARE_DIR
from simulator.accounting.energy import energy_section
from simulator.accounting.power import PowerModel, line_model, load_power_model, power_path
from simulator.validation.power_fit import PowerRun, fit_device, transfer

# 100 TFLOP/s, 1000 GB/s, 500 W TDP, 100 W idle (as tests/test_energy.py)
DEV = DeviceSpec(name="toy", display_name="toy", vendor="none", kind="gpu", memory_gib=80.0,
                 memory_bandwidth_gb_per_s=1000.0, peak_tflops={"bf16": 100.0}, tdp_w=500.0, idle_w=100.0,
                 host_link_kind="pcie", host_link_gb_per_s=64.0, price_usd_per_hour=2.0, price_as_of="2026-03",
                 price_source="test")
MEASURED = {"h100-sxm", "b200"}


def steps():
    # U_c, U_m per step: (0.5, 0), (0, 0.25), (0, 1)
    return {"replica": np.array([0.0, 0.0, 1.0]), "start_s": np.array([0.0, 1.0, 0.0]),
            "duration_s": np.array([1.0, 1.0, 2.0]), "flops": np.array([5e13, 0.0, 0.0]),
            "bytes": np.array([0.0, 0.25e12, 2e12])}


def fitted(**kw):
    return PowerModel("toy", 100.0, 500.0, **({"active_w": 150.0, "compute_w": 200.0, "memory_w": 100.0,
                                             "kind": "measured"} | kw))


# ---- the two forms ---------------------------------------------------------------------------
def test_line_model_hand_values():
    m = line_model(DEV)
    assert (m.kind, m.idle_w, m.tdp_w) == ("line", 100.0, 500.0)
    uc = [0.0, 0.5, 0.1, 2.0, 0.3]
    um = [0.0, 0.2, 0.7, 0.0, 0.3]
    want = [100.0 + (500.0 - 100.0) * min(1.0, max(c, u)) for c, u in zip(uc, um)]
    assert m.step_w(np.array(uc), np.array(um)).tolist() == want
    assert want[:2] + want[3:] == [100.0, 300.0, 500.0, 220.0]
    assert m.describe()["formula"] == "P = idle_w + (tdp_w - idle_w) * min(1, max(U_c, U_m))"


def test_fitted_model_is_linear_and_clips_to_idle_and_tdp():
    m = fitted()
    got = m.step_w(np.array([0.0, 0.5, 0.0, 1.0]), np.array([0.0, 0.0, 0.25, 1.0]))
    assert got.tolist() == [150.0, 250.0, 175.0, 450.0]
    big = fitted(compute_w=600.0, memory_w=300.0)
    assert big.step_w(np.array([1.0, 3.0]), np.array([1.0, 0.0])).tolist() == [500.0, 500.0]  # clipped to TDP
    low = fitted(active_w=50.0, compute_w=10.0)
    assert low.step_w(np.array([0.0, 0.5]), np.array([0.0, 0.0])).tolist() == [100.0, 100.0]  # clipped to idle
    assert m.describe()["formula"] == "P = clip(active_w + compute_w * U_c + memory_w * U_m, idle_w, tdp_w)"


# ---- loader ------------------------------------------------------------------------------------
def test_uncalibrated_is_the_line():
    for name in ("h100-sxm", "l4"):
        d = load_device(name)
        assert load_power_model(d, calibrated=False) == line_model(d) == PowerModel(name, d.idle_w, d.tdp_w)


def test_calibrated_loads_shipped_power_json():
    gpus = [d for d in device_names() if load_device(d).kind == "gpu"]
    assert MEASURED <= set(gpus)
    for name in gpus:
        d = load_device(name)
        raw = json.loads(power_path(name).read_text())
        m = load_power_model(d)
        assert m.kind == raw["kind"] == ("measured" if name in MEASURED else "transfer"), name
        assert (m.idle_w, m.tdp_w) == (d.idle_w, d.tdp_w) == (raw["idle_w"], raw["tdp_w"]), name
        assert m.compute_w == raw["compute_w"] and m.memory_w == raw["memory_w"], name  # scale 1: same TOML
        assert m.active_w == pytest.approx(raw["active_w"], rel=1e-12), name
        assert m.source == raw["source"] and m.known_error == raw["known_error"] and m.known_error, name


def test_power_capped_toml_scales_coefficients(tmp_path):
    text = (HARDWARE_DIR / "h100-sxm.toml").read_text()
    toml = tmp_path / "h100-capped.toml"
    toml.write_text(re.sub(r"(?m)^tdp_w = .*$", "tdp_w = 500.0", text))
    d = load_device(toml)
    assert (d.name, d.tdp_w, d.idle_w) == ("h100-sxm", 500.0, 70.0)
    raw = json.loads(power_path("h100-sxm").read_text())
    scale = (500.0 - 70.0) / (raw["tdp_w"] - raw["idle_w"])
    m = load_power_model(d)
    assert (m.kind, m.idle_w, m.tdp_w) == ("measured", 70.0, 500.0)
    assert m.active_w == 70.0 + (raw["active_w"] - raw["idle_w"]) * scale
    assert m.compute_w == raw["compute_w"] * scale and m.memory_w == raw["memory_w"] * scale
    assert scale == 430.0 / 630.0


# ---- the fit -----------------------------------------------------------------------------------
def synthetic_runs(coef=(180.0, 420.0, 260.0)):
    rng = np.random.default_rng(3)
    runs, utils = [], []
    for model in ("m-a", "m-b", "m-c"):
        for i, n in enumerate((8, 32, 128)):
            uc, um = rng.uniform(0.05, 0.6), rng.uniform(0.1, 0.9)
            gpus = 2 if i == 1 else 1
            watts = gpus * (coef[0] + coef[1] * uc + coef[2] * um)
            runs.append(PowerRun(model, "toy", gpus, n, 500, 1000.0, watts, gpus, "synthetic"))
            utils.append((uc, um))
    return runs, np.array(utils)


def test_fit_device_recovers_coefficients_and_zero_held_out_error():
    runs, utils = synthetic_runs()
    m, err = fit_device(runs, utils, DEV)
    assert (m.kind, m.device, m.idle_w, m.tdp_w) == ("measured", "toy", 100.0, 500.0)
    assert m.active_w == pytest.approx(180.0, rel=1e-6)
    assert m.compute_w == pytest.approx(420.0, rel=1e-6)
    assert m.memory_w == pytest.approx(260.0, rel=1e-6)
    assert err["runs"] == 9 and err["models"] == ["m-a", "m-b", "m-c"]
    assert err["fit_median_ape_pct"] < 1e-6
    assert err["held_out_median_ape_pct"] < 1e-6 and err["held_out_max_ape_pct"] < 1e-6
    assert "9 runs of m-a, m-b, m-c" in m.known_error and "synthetic" in m.source


def test_transfer_carries_fractions_of_tdp_minus_idle():
    x = PowerModel("x", 100.0, 500.0, active_w=200.0, compute_w=300.0, memory_w=100.0, kind="measured")
    y = PowerModel("y", 50.0, 250.0, active_w=150.0, compute_w=40.0, memory_w=60.0, kind="measured")
    # fractions of (TDP - idle): x (0.25, 0.75, 0.25), y (0.5, 0.2, 0.3); mean (0.375, 0.475, 0.275)
    target = load_device("h200")  # 70-700 W: span 630
    t = transfer({"x": x, "y": y}, target, error_pct=12.0)
    assert (t.kind, t.device, t.idle_w, t.tdp_w) == ("transfer", "h200", 70.0, 700.0)
    assert t.active_w == pytest.approx(70.0 + 0.375 * 630, rel=1e-12)
    assert t.compute_w == pytest.approx(0.475 * 630, rel=1e-12)
    assert t.memory_w == pytest.approx(0.275 * 630, rel=1e-12)
    assert t.known_error.startswith("about 12% median") and "x, y" in t.source
    one = transfer({"x": x}, DEV, error_pct=0.0)  # same idle and TDP: the same coefficients
    assert (one.active_w, one.compute_w, one.memory_w) == pytest.approx((200.0, 300.0, 100.0), rel=1e-12)


# ---- energy with a power model -----------------------------------------------------------------
def test_energy_section_with_fitted_model_hand_computed():
    e = energy_section(steps(), DEV, dtype="bf16", tp=2, replicas=2, window_s=3.0, num_output_tokens=100,
                       power_model=fitted())
    # per-GPU watts: 150 + 200*0.5 = 250, 150 + 100*0.25 = 175, 150 + 100*1 = 250
    assert e["busy_j"] == (250 * 1 + 175 * 1 + 250 * 2) * 2 == 1850
    assert e["idle_j"] == 100 * 2 * (1.0 + 1.0) == 400  # each replica idle 1 s of the 3 s window, 2 GPUs each
    assert e["total_j"] == 2250 and e["j_per_output_token"] == 22.5 and e["mean_power_w"] == 750.0
    assert e["model"] == "measured" and e["power_model"]["active_w"] == 150.0
    assert e["power_source"] == fitted().source


def test_energy_section_clipped_model_hand_computed():
    e = energy_section(steps(), DEV, dtype="bf16", tp=1, replicas=2, window_s=2.0, num_output_tokens=0,
                       power_model=fitted(active_w=60.0, compute_w=1000.0, memory_w=0.0))
    # 60 + 500 -> 500 (TDP), 60 -> 100 (idle), 60 -> 100 (idle); replica 0 idle 0 s, replica 1 idle 0 s
    assert e["busy_j"] == 500 * 1 + 100 * 1 + 100 * 2 == 800
    assert e["idle_j"] == 0 and e["total_j"] == 800 and np.isnan(e["j_per_output_token"])
