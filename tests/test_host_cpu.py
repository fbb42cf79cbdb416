"""The host CPU as an expert executor: the carry-over of measured per-core rates to a catalog host,
the shipped measurement, and the rates an offloaded-MoE run uses."""
import json

import pytest

from hardware import load_device, load_host
from profiles.host_cpu import HOST_CPU_FILE, HostCpuCalibration, load_host_cpu
from profiles.table import ProfileError
from simulator.cost.device_choice import device_kernels
from simulator.moe.setup import expert_rates
from simulator.scenario import Scenario

# per core: 10 GB/s bf16 GEMV, 8 GB/s fp32; 100 GFLOP/s bf16 GEMM, 20 GFLOP/s fp32; half the cores' worth in parallel
CAL = HostCpuCalibration({"bf16": 10e9, "fp32": 8e9}, {"bf16": 100e9, "fp32": 20e9}, 0.5, "toy cpu", "test")


def test_rates_below_the_caps():
    # 32 cores x 0.5 = 16 core-equivalents
    assert CAL.rates(cores=32, dram_bytes_per_s=307.2e9, peak_flops=91.75e12, dtype="bf16") == (1.6e12, 160e9)
    assert CAL.rates(cores=32, dram_bytes_per_s=307.2e9, peak_flops=5.73e12, dtype="fp32") == (320e9, 128e9)


def test_rates_capped_by_dram_and_peak():
    # 64 cores x 0.5 x 10 GB/s = 320 GB/s > 307.2 GB/s DRAM; 32 x 100 GFLOP/s = 3.2 TFLOP/s > 1 TFLOP/s peak
    assert CAL.rates(cores=64, dram_bytes_per_s=307.2e9, peak_flops=1e12, dtype="bf16") == (1e12, 307.2e9)
    assert CAL.rates(cores=64, dram_bytes_per_s=100e9, peak_flops=91.75e12, dtype="fp32") == (640e9, 100e9)


def test_dtype_without_own_rate_uses_bf16():
    assert CAL.rates(cores=4, dram_bytes_per_s=1e12, peak_flops=1e15, dtype="fp16") == (200e9, 20e9)


def test_shipped_measurement_loads():
    raw = json.loads(HOST_CPU_FILE.read_text())
    cpu = load_host_cpu()
    assert cpu is not None and cpu.machine == raw["machine"]["cpu"]
    assert cpu.gemv_bytes_per_s_per_core == raw["gemv_bytes_per_s_per_core"]
    assert cpu.gemm_flops_per_s_per_core == raw["gemm_flops_per_s_per_core"]
    assert set(cpu.gemv_bytes_per_s_per_core) == set(cpu.gemm_flops_per_s_per_core) == {"bf16", "fp32"}
    assert cpu.parallel_efficiency == raw["parallel_efficiency"] and 0 < cpu.parallel_efficiency <= 1
    assert raw["measured_at"] in cpu.source and cpu.describe().startswith(cpu.source)


def test_bad_host_cpu_file(tmp_path):
    assert load_host_cpu(tmp_path / "absent.json") is None
    bad = tmp_path / "cpu.json"
    bad.write_text('{"format": "other"}')
    with pytest.raises(ProfileError, match="cpu.json: format 'other'"):
        load_host_cpu(bad)
    bad.write_text('{"format": "servesim-host-cpu/1"}')
    with pytest.raises(ProfileError, match="cpu.json"):
        load_host_cpu(bad)


def test_expert_rates_ideal_engine_is_none():
    s = Scenario(model="mixtral-8x7b", hardware="l4", engine="ideal")
    assert expert_rates(s, load_device("l4"), load_host("xeon-8462y")) is None


def test_expert_rates_default_engine_use_calibrations():
    s = Scenario(model="mixtral-8x7b", hardware="l4")
    device, host = load_device("l4"), load_host("xeon-8462y")
    rates = expert_rates(s, device, host)
    cal = device_kernels(device)
    assert rates["bw_link"] == cal.host_link_bytes_per_s() == 32e9 * cal.provenance["host_link"]["efficiency"]
    assert rates["f_gpu"] == device.peak_flops("bf16") * cal.classes["gemm"].eta_c("bf16")
    assert rates["bw_gpu"] == device.memory_bandwidth_bytes_per_s * cal.classes["gemm"].eta_memory
    cpu = load_host_cpu()
    want = cpu.rates(cores=32, dram_bytes_per_s=307.2e9, peak_flops=91.75e12, dtype="bf16")
    assert (host.cores, host.memory_bandwidth_bytes_per_s, host.peak_flops("bf16")) == (32, 307.2e9, 91.75e12)
    assert (rates["f_cpu"], rates["bw_cpu"]) == want
    assert rates["sources"]["cpu"] == cpu.describe()
