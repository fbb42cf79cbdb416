"""Energy (utilization model) and price arithmetic on hand-computed tiny runs."""
import numpy as np
import pytest

from hardware import DeviceSpec
from simulator.accounting.energy import energy_section, price_section, step_power_w
from simulator.cli import main
from simulator.errors import ServesimError
from simulator.results.summary import build_summary
from simulator.results.table import format_summary
from simulator.run import simulate
from simulator.scenario import Scenario

# 100 TFLOP/s, 1000 GB/s, 500 W TDP, 100 W idle, $2 per GPU-hour
DEV = DeviceSpec(name="toy", display_name="toy", vendor="none", kind="gpu", memory_gib=80.0,
                 memory_bandwidth_gb_per_s=1000.0, peak_tflops={"bf16": 100.0}, tdp_w=500.0, idle_w=100.0,
                 host_link_kind="pcie", host_link_gb_per_s=64.0, price_usd_per_hour=2.0, price_as_of="2026-03",
                 price_source="test")


def steps(**extra):
    base = {"replica": np.array([0.0, 0.0, 1.0]), "start_s": np.array([0.0, 1.0, 0.0]),
            "duration_s": np.array([1.0, 1.0, 2.0]), "flops": np.array([5e13, 0.0, 0.0]),
            "bytes": np.array([0.0, 0.25e12, 2e12])}
    return {**base, **extra}


def test_step_power_is_linear_in_bottleneck_utilization():
    # u = 0.5 (half the peak FLOPs for 1 s), 0.25 (a quarter of the bandwidth), 1.0
    assert step_power_w(steps(), DEV, "bf16").tolist() == [300.0, 200.0, 500.0]


def test_energy_hand_computed():
    e = energy_section(steps(), DEV, dtype="bf16", tp=2, replicas=2, window_s=3.0, num_output_tokens=100)
    assert e["busy_j"] == (300 * 1 + 200 * 1 + 500 * 2) * 2 == 3000
    assert e["idle_j"] == 100 * 2 * (1.0 + 1.0) == 400  # each replica idle 1 s of the 3 s window, 2 GPUs each
    assert e["total_j"] == 3400 and e["j_per_output_token"] == 34.0
    assert e["mean_power_w"] == 3400 / 3.0 and e["num_gpus"] == 4
    assert e["model"] == "line" and e["power_model"]["formula"].startswith("P = idle_w + (tdp_w - idle_w)")


def test_measured_power_hook_replaces_estimate():
    e = energy_section(steps(power_w=np.array([np.nan, 250.0, np.nan])), DEV, dtype="bf16", tp=2, replicas=2,
                       window_s=3.0, num_output_tokens=100)
    assert e["busy_j"] == (300 + 250 + 500 * 2) * 2 and e["num_steps_measured_power"] == 1


def test_price_hand_computed():
    p = price_section(DEV, override_usd_per_gpu_hour=None, num_gpus=4, window_s=3.0, num_output_tokens=100)
    assert p["usd_per_hour"] == 8.0 and p["usd_total"] == 8.0 * 3.0 / 3600
    assert p["usd_per_million_output_tokens"] == pytest.approx(8.0 * 3.0 / 3600 / 100 * 1e6, rel=1e-15)
    assert p["source"] == "hardware catalog toy, as of 2026-03"
    q = price_section(DEV, override_usd_per_gpu_hour=1.0, num_gpus=4, window_s=3.0, num_output_tokens=100)
    assert q["usd_per_hour"] == 4.0 and q["source"] == "scenario override (price_usd_per_hour)"


def test_run_sections_consistent():
    s = Scenario(model="qwen3-0.6b", num_requests=20, rate=50.0, replicas=2, prompt_tokens="64",
                 output_tokens="16", price_usd_per_hour=3.0)
    summary = build_summary(simulate(s))
    price, energy, m = summary["price"], summary["energy"], summary["metrics"]
    assert price["num_gpus"] == 2 and price["usd_per_gpu_hour"] == 3.0
    assert price["window_s"] == energy["window_s"] == m["duration"]  # last step ends at the last finish
    assert price["usd_total"] == 6.0 * price["window_s"] / 3600
    assert energy["j_per_output_token"] == energy["total_j"] / m["total_output_tokens"]
    assert 70.0 * 2 <= energy["mean_power_w"] <= 700.0 * 2  # between idle and TDP of 2 h100-sxm
    table = format_summary(summary)
    assert "USD per 1M output tokens" in table and "scenario override" in table


def test_price_override_validated():
    with pytest.raises(ServesimError, match="price_usd_per_hour"):
        Scenario(price_usd_per_hour=-1.0)
    assert main(["simulate", "--num-requests", "5", "--price-usd-per-hour", "-2"]) == 2
