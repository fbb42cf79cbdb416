"""Device calibration: the class time model, its fits on synthetic rows, the transfer rule, the
published adjustments (STREAM, fp8, host link) and the shipped profiles/data/<device>/device.json."""
from dataclasses import replace

import pytest

from hardware import DeviceSpec, device_names, load_device
from profiles.device_catalog import _scale_memory
from profiles.device_fit import GEMM_P, fit_collectives, fit_gemm, fit_memory_bound
from profiles.device_model import CollectiveFit, DeviceKernels, KernelClass, load_device_kernels
from profiles.published_kernels import best_gemm_fraction, host_link_efficiency, read_published
from profiles.table import ProfileError, ProfileRow, make_shape
from profiles.transfer import transfer_device
from profiles.work import ELEMENTWISE_OPS, kernel_work
from simulator.cost.device_choice import DATA_DIR, device_kernels

# 989.4 TFLOP/s bf16, 3350 GB/s (H100 SXM's nominal peaks), PCIe5 host link
PEAK, BW = 989.4e12, 3.35e12
DEV = DeviceSpec(name="toy", display_name="toy", vendor="none", kind="gpu", memory_gib=80.0,
                 memory_bandwidth_gb_per_s=3350.0, peak_tflops={"bf16": 989.4}, tdp_w=700.0, idle_w=70.0,
                 host_link_kind="pcie5", host_link_gb_per_s=64.0, price_usd_per_hour=2.0, price_as_of="2026-03",
                 price_source="test")
MEASURED = {"a100-80gb", "h100-sxm", "a40"}
MEMORY_BOUND = (*ELEMENTWISE_OPS, "memory", "attn_decode")


def rows_from(cls: KernelClass, op: str, shapes: list[dict], dtype: str = "fp16") -> list[ProfileRow]:
    return [ProfileRow(op=op, dtype=dtype, shape=s,
                       time_median_us=cls.time_s(*kernel_work(op, s, dtype), PEAK, BW, dtype) * 1e6) for s in shapes]


def toy_kernels(collectives: dict[int, CollectiveFit], provenance: dict | None = None) -> DeviceKernels:
    classes = {"gemm": KernelClass(eta_compute=0.7, eta_memory=0.8, overhead_s=5e-6, p=GEMM_P),
               "memory": KernelClass(eta_compute=1.0, eta_memory=0.6, overhead_s=3e-6)}
    return DeviceKernels(DEV, classes, collectives, provenance or {"kind": "fit"})


def shipped(name: str) -> DeviceKernels:
    return device_kernels(load_device(name))


# ---- fits recover known parameters -----------------------------------------------------------
def test_fit_gemm_recovers_known_class():
    true = KernelClass(eta_compute=0.72, eta_memory=0.81, overhead_s=6e-6, p=GEMM_P)
    rows = []
    for op, (i, o) in {"attn_qkv": (4096, 6144), "attn_out": (4096, 4096), "mlp_up": (4096, 28672),
                       "mlp_down": (14336, 4096)}.items():
        rows += rows_from(true, op, [make_shape(num_tokens=t, in_dim=i, out_dim=o)
                                     for t in (1, 4, 16, 64, 256, 1024, 4096)])
    got = fit_gemm(rows, PEAK, BW)
    assert got.p == GEMM_P
    assert got.eta_compute == pytest.approx(0.72, rel=1e-5)
    assert got.eta_memory == pytest.approx(0.81, rel=1e-5)
    assert got.overhead_s == pytest.approx(6e-6, rel=1e-5)
    assert got.error["train"]["num_rows"] == 28 and got.error["train"]["p90_ape_pct"] < 1e-3


def test_fit_memory_bound_recovers_known_class():
    true = KernelClass(eta_compute=1.0, eta_memory=0.66, overhead_s=3e-6)
    rows = rows_from(true, "rms_norm", [make_shape(num_tokens=t, in_dim=i) for t in (1, 8, 64, 512, 4096, 32768)
                                        for i in (4096, 8192)], dtype="bf16")
    got = fit_memory_bound(rows, BW)
    assert got.p is None and got.eta_compute == 1.0
    assert got.eta_memory == pytest.approx(0.66, rel=1e-5)
    assert got.overhead_s == pytest.approx(3e-6, rel=1e-5)


def test_fit_collectives_recovers_latency_and_bus_bandwidth():
    truth = {2: (8e-6, 150e9), 4: (12e-6, 200e9), 8: (20e-6, 240e9)}
    samples = {}
    for n, (lat, bus) in truth.items():
        c = CollectiveFit(num_gpus=n, latency_s=lat, bus_bytes_per_s=bus)
        samples[n] = [(b, c.time_s(b)) for b in (1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9)]
    got = fit_collectives(samples, source="synthetic")
    assert sorted(got) == [2, 4, 8]
    for n, (lat, bus) in truth.items():
        assert got[n].num_gpus == n and got[n].source == "synthetic"
        assert got[n].latency_s == pytest.approx(lat, rel=1e-5)
        assert got[n].bus_bytes_per_s == pytest.approx(bus, rel=1e-5)


# ---- all-reduce lookup -----------------------------------------------------------------------
def test_all_reduce_measured_count_and_latency_override():
    k = toy_kernels({2: CollectiveFit(num_gpus=2, latency_s=8e-6, bus_bytes_per_s=150e9),
                     8: CollectiveFit(num_gpus=8, latency_s=20e-6, bus_bytes_per_s=240e9)})
    m = 1e6
    assert k.all_reduce_s(m, 8) == (20e-6 + 2.0 * 7 / 8 * m / 240e9, "fit")
    assert k.all_reduce_s(m, 8, latency_s=5e-6) == (5e-6 + 2.0 * 7 / 8 * m / 240e9, "fit")
    assert k.all_reduce_s(0.0, 2, latency_s=3e-6) == (3e-6, "fit")  # the override replaces the fitted latency


def test_all_reduce_unmeasured_count_uses_nearest_and_reports_transfer():
    k = toy_kernels({2: CollectiveFit(num_gpus=2, latency_s=8e-6, bus_bytes_per_s=150e9),
                     8: CollectiveFit(num_gpus=8, latency_s=20e-6, bus_bytes_per_s=240e9)})
    m = 1e6
    assert k.all_reduce_s(m, 3) == (8e-6 + 2.0 * 2 / 3 * m / 150e9, "transfer")  # log-nearest: 2
    assert k.all_reduce_s(m, 16) == (20e-6 + 2.0 * 15 / 16 * m / 240e9, "transfer")
    assert k.all_reduce_s(m, 4) == (8e-6 + 2.0 * 3 / 4 * m / 150e9, "transfer")  # a tie goes to the smaller count
    assert k.all_reduce_s(m, 16, latency_s=1e-6) == (1e-6 + 2.0 * 15 / 16 * m / 240e9, "transfer")


def test_all_reduce_one_gpu_is_free_and_no_collectives_is_none():
    k = toy_kernels({8: CollectiveFit(num_gpus=8, latency_s=20e-6, bus_bytes_per_s=240e9)},
                    provenance={"kind": "transfer"})
    assert k.all_reduce_s(1e9, 1) == (0.0, "transfer")
    assert k.all_reduce_s(1e9, 1, latency_s=1.0) == (0.0, "transfer")
    assert toy_kernels({}).all_reduce_s(1e6, 2) is None
    assert toy_kernels({}).all_reduce_s(1e6, 1) == (0.0, "fit")


# ---- shipped calibrations --------------------------------------------------------------------
def test_every_catalog_gpu_has_a_shipped_calibration():
    gpus = [d for d in device_names() if load_device(d).kind == "gpu"]
    assert MEASURED <= set(gpus)
    for name in gpus:
        assert (DATA_DIR / name / "device.json").is_file(), name
        cal = shipped(name)
        assert cal.device == name and cal.spec == load_device(name)
        assert cal.kind == cal.provenance["kind"] == ("fit" if name in MEASURED else "transfer"), name
        assert isinstance(cal.provenance["known_error"], str) and cal.provenance["known_error"].strip(), name
        assert {"gemm", "memory", "attn_decode", "attn_prefill"} <= set(cal.classes), name
        assert cal.describe()["kind"] == cal.kind


def test_cpu_gets_no_calibration():
    assert device_kernels(load_device("cpu")) is None


def test_h100_fp8_gemm_efficiency_is_its_own_and_below_one():
    gemm = shipped("h100-sxm").classes["gemm"]
    spec = load_device("h100-sxm")
    assert gemm.eta_c("bf16") == gemm.eta_compute
    assert gemm.eta_c("fp8") != gemm.eta_c("bf16") and 0 < gemm.eta_c("fp8") < 1
    published = read_published()
    ratio = (best_gemm_fraction(published, "h100-sxm", "fp8", spec.peak_tflops["fp8"])
             / best_gemm_fraction(published, "h100-sxm", "bf16", spec.peak_tflops["bf16"]))
    assert gemm.eta_c("fp8") == pytest.approx(gemm.eta_compute * ratio, rel=1e-12)


def test_stream_scaling_of_h200_memory_classes():
    factor = (4150 / 4800) / (2970 / 3350)  # achieved/nominal STREAM triad: H200 over its basis H100 SXM
    h200, h100 = load_device("h200"), shipped("h100-sxm")
    assert h200.memory_bandwidth_gb_per_s == 4800.0 and h100.spec.memory_bandwidth_gb_per_s == 3350.0
    classes = {name: KernelClass(eta_compute=0.9, eta_memory=0.5 + i / 100, overhead_s=2e-6)
               for i, name in enumerate(MEMORY_BOUND)}
    classes["gemm"] = KernelClass(eta_compute=0.7, eta_memory=0.8, overhead_s=5e-6, p=GEMM_P)
    classes["attn_prefill"] = KernelClass(eta_compute=0.6, eta_memory=0.7, overhead_s=5e-6)
    cal = DeviceKernels(h200, classes, {}, {"kind": "transfer"})
    scaled = _scale_memory(cal, read_published(), [h100])
    for name in MEMORY_BOUND:
        assert scaled.classes[name].eta_memory == classes[name].eta_memory * factor, name
        assert "achieved STREAM fraction" in scaled.classes[name].source
    assert scaled.classes["gemm"] == classes["gemm"] and scaled.classes["attn_prefill"] == classes["attn_prefill"]


def test_shipped_h200_memory_classes_are_transfer_times_stream_factor():
    factor = (4150 / 4800) / (2970 / 3350)
    h100 = shipped("h100-sxm")
    before = transfer_device(load_device("h200"), [h100])  # h200's basis: its family's measured device
    cal = shipped("h200")
    assert cal.provenance["basis"] == ["h100-sxm"]
    for name in MEMORY_BOUND:
        assert cal.classes[name].eta_memory == pytest.approx(before.classes[name].eta_memory * factor, rel=1e-12), name
    assert cal.classes["gemm"].eta_memory == pytest.approx(before.classes["gemm"].eta_memory, rel=1e-12)


def test_h200_host_link_efficiency_is_published_copy_over_nominal():
    spec = load_device("h200")
    assert spec.host_link_kind == "pcie5" and spec.host_link_gb_per_s == 64.0
    eff, source = host_link_efficiency(read_published(), spec)
    assert eff == 55.43 / 64 and "d42" in source
    cal = shipped("h200")
    assert cal.provenance["host_link"]["efficiency"] == round(55.43 / 64, 4)  # stored to 4 decimals
    assert cal.host_link_bytes_per_s() == 64e9 * round(55.43 / 64, 4)
    assert cal.host_link_bytes_per_s() == pytest.approx(64e9 * eff, rel=1e-5)
    assert toy_kernels({}).host_link_bytes_per_s() == 64e9  # no published efficiency: the nominal link


# ---- transfer ---------------------------------------------------------------------------------
def test_transfer_to_identical_device_reproduces_gemm_efficiencies():
    basis = shipped("a100-80gb")
    twin = replace(basis.spec, name="a100-80gb-twin")
    moved = transfer_device(twin, [basis])
    assert moved.kind == "transfer" and moved.provenance["basis"] == ["a100-80gb"]
    assert sorted(moved.classes) == sorted(basis.classes)
    for name, cls in basis.classes.items():
        got = moved.classes[name]
        assert got.eta_compute == pytest.approx(cls.eta_compute, rel=1e-12), name
        assert got.eta_memory == pytest.approx(cls.eta_memory, rel=1e-12), name
        assert got.overhead_s == pytest.approx(max(cls.overhead_s, 1e-9), rel=1e-12), name
        assert got.p == cls.p and got.extra_tokens == cls.extra_tokens
        assert got.eta_compute_by_dtype == pytest.approx(cls.eta_compute_by_dtype, rel=1e-12)
    for n, c in basis.collectives.items():
        assert moved.collectives[n].latency_s == pytest.approx(c.latency_s, rel=1e-12)
        assert moved.collectives[n].bus_bytes_per_s == pytest.approx(c.bus_bytes_per_s, rel=1e-12)
    shape = make_shape(num_tokens=128, in_dim=4096, out_dim=4096)
    assert moved.predict("mlp_up", shape, "bf16")[0] == pytest.approx(basis.predict("mlp_up", shape, "bf16")[0],
                                                                      rel=1e-12)
    assert moved.predict("mlp_up", shape, "bf16")[1] == "transfer"


def test_transfer_never_uses_the_target_itself():
    with pytest.raises(ValueError, match="no measured device calibration"):
        transfer_device(load_device("a100-80gb"), [shipped("a100-80gb")])


# ---- JSON and bad input -------------------------------------------------------------------------
def test_json_round_trip():
    k = toy_kernels({8: CollectiveFit(num_gpus=8, latency_s=20e-6, bus_bytes_per_s=240e9)})
    back = DeviceKernels.from_json(k.to_json(), DEV)
    assert back.classes == k.classes and back.collectives == k.collectives and back.provenance == k.provenance


def test_wrong_format_names_origin(tmp_path):
    raw = toy_kernels({}).to_json() | {"format": "servesim-device/0"}
    with pytest.raises(ProfileError, match=r"my/calibration\.json: .*'servesim-device/0'"):
        DeviceKernels.from_json(raw, DEV, origin="my/calibration.json")
    path = tmp_path / "device.json"
    path.write_text('{"format": "other"}')
    with pytest.raises(ProfileError, match=str(path)):
        load_device_kernels(path, DEV)


def test_bad_class_values_rejected():
    with pytest.raises(ValueError, match="eta_compute must be in"):
        KernelClass(eta_compute=0, eta_memory=0.5, overhead_s=0.0)
    with pytest.raises(ValueError, match="eta_memory must be in"):
        KernelClass(eta_compute=0.5, eta_memory=2.5, overhead_s=0.0)
    raw = toy_kernels({}).to_json()
    raw["classes"]["gemm"]["eta_compute"] = 0
    with pytest.raises(ProfileError, match="bad.json: eta_compute must be in"):
        DeviceKernels.from_json(raw, DEV, origin="bad.json")


@pytest.mark.parametrize("name", ["h100-sxm", "a100-80gb", "mi300x"])
@pytest.mark.parametrize("op", ["attn_prefill", "attn_decode"])
def test_attention_predictor_gives_predicts_numbers_exactly(name, op):
    """The hot path's attention predictor (no shape dicts) is predict() itself, bit for bit, with
    and without a class's extra_tokens, for every dtype the KV may be stored in."""
    kernels = device_kernels(load_device(name))
    heads = dict(num_heads=32, num_kv_heads=8, head_dim=128)
    cls = kernels.classes[op]
    variants = [DeviceKernels(kernels.spec, {**kernels.classes, op: replace(cls, extra_tokens=extra)},
                              kernels.collectives, kernels.provenance) for extra in (0.0, 12.135, 7.5)]
    for k in variants:
        for dtype in ("bf16", "fp8", "fp32"):
            seconds = k.attention_predictor(op, dtype, **heads)
            for b, n, ctx in [(1, 1, 0), (3, 512, 0), (64, 0, 4095), (7, 128, 10_000), (1, 8192, 123_457)]:
                if op == "attn_decode":
                    n = 0
                dims = dict(batch_size=b, context_tokens=ctx, **heads) | ({"chunk_tokens": n} if n else {})
                assert seconds(b, n, ctx) == k.predict(op, make_shape(**dims), dtype)[0]
    assert kernels.attention_predictor("kv_append", "bf16", **heads) is None  # no class prices it
