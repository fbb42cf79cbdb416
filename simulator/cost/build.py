"""The cost model a scenario asks for: which kernel prices, which engine around them.

Owns the choice (no formulas): the engine (`engine` key; default vllm on GPUs, hf on CPUs), and
for the kernels, in order of trust: a profile given with --profile or shipped for this device and
model (measured tables), then the device's calibration (profiles/data/<device>/device.json, or
the transfer model for a user's device), then the roofline for anything neither prices. The
"ideal" engine keeps the pre-calibration choice (a shipped measured profile or fit for the device,
else the ideal roofline) and adds nothing; `profile = "none"` is the ideal roofline for the
kernels. Reads the scenario's fields by name; imports no Scenario (it sits above this room).
"""
from __future__ import annotations

from pathlib import Path

from hardware import DeviceSpec
from profiles.device_model import DeviceKernels, load_device_kernels
from simulator.cost.device_choice import device_kernels
from simulator.cost.engine import EngineCostModel, EngineSpec, load_engine
from simulator.cost.kernel_stack import KernelStack
from simulator.cost.ops import token_ops
from simulator.cost.profile_choice import choose_profile
from simulator.cost.profiled import ProfiledCostModel
from simulator.cost.roofline import RooflineCostModel, RooflineParams
from simulator.cost.step import CostModel

CALIBRATION_RECORD = "calibration.json"  # marks a `servesim calibrate` output directory


def calibrated_dir(profile: str | None) -> Path | None:
    """The `servesim calibrate` output a scenario's --profile names (device.json + engine.toml), or None."""
    if not profile or profile.lower() == "none":
        return None
    path = Path(profile)
    return path if (path / CALIBRATION_RECORD).is_file() else None


def resolve_engine(s, device: DeviceSpec) -> EngineSpec:
    """The scenario's engine; with a calibrated --profile directory, the engine fitted there."""
    if s.engine is None and (cal := calibrated_dir(s.profile)) is not None and (cal / "engine.toml").is_file():
        return load_engine(str(cal / "engine.toml"))
    return load_engine(s.engine or ("kernels" if device.kind == "cpu" else "vllm"))


def build_cost_model(s, model, device: DeviceSpec, token_op_builder=token_ops, *,
                     engine: EngineSpec | None = None, calibration: DeviceKernels | None = None) -> CostModel:
    """Kernel prices for one replica of `model` on `device` (no engine cost: see engine_cost_model).
    `calibration` replaces the device's (a candidate during `servesim calibrate`)."""
    engine = engine or resolve_engine(s, device)
    cal_dir = calibrated_dir(s.profile)
    if calibration is None and cal_dir is not None:
        calibration = load_device_kernels(cal_dir / "device.json", device)
        s = s.replace(profile=None)  # the directory is the calibration, not a measured table
    params = RooflineParams(eta_compute=s.eta_compute, eta_memory=s.eta_memory, step_overhead_s=s.step_overhead_ms / 1e3)
    roofline = RooflineCostModel(model, device, dtype=s.dtype, tp=s.tp, params=params, token_op_builder=token_op_builder,
                                 kv_dtype=s.kv_cache_dtype)
    ideal = engine.device_model == "ideal"
    chosen = choose_profile(profile=s.profile, hardware=device.name, model=model.name, dtype=s.dtype,
                            mismatch_ok=s.profile_mismatch_ok, include_fits=ideal)
    no_calibration = ideal or (s.profile is not None and s.profile.lower() == "none")
    calibration = None if no_calibration else (calibration or device_kernels(device))
    if calibration is not None:
        calibration = calibration.with_decode_attention_speedup(decode_attention_speedup(engine, model))
    if chosen is None and calibration is None:
        return roofline
    if calibration is None:
        return ProfiledCostModel(roofline, chosen.fit, profile_name=chosen.name)
    stack = KernelStack(chosen.fit if chosen else None, calibration)
    name = f"measured profile {chosen.name} over " if chosen else ""
    kind = {"fit": "fitted on measured tables", "transfer": "transfer model"}.get(calibration.kind, calibration.kind)
    label = (f"calibrated profile {cal_dir}" if cal_dir is not None and calibration.provenance.get("calibrated_by")
             else f"device calibration {device.name} ({kind})")
    return ProfiledCostModel(roofline, stack, profile_name=f"{name}{label}",
                             all_reduce_latency_s=None if engine.all_reduce_latency_us is None
                             else engine.all_reduce_latency_us * 1e-6,
                             calibration=calibration.describe(), measured_profile=chosen.name if chosen else None)


def decode_attention_speedup(engine: EngineSpec, model) -> float:
    """The engine's decode attention vs the calibrated kernels: its own speedup, and, for kernels
    that do not share a KV head across its query-head group (pre-XQA TensorRT-LLM), the KV read
    once per query head (num_kv_heads / num_heads as fast)."""
    shared = 1.0 if engine.gqa_kv_shared or not model.num_kv_heads else model.num_kv_heads / model.num_heads
    return engine.attn_decode_speedup * shared


def engine_cost_model(inner: CostModel, engine: EngineSpec, *, tp: int, num_layers: int) -> CostModel:
    """`inner` with the engine's own CPU time added per step (nothing for ideal or kernels-only)."""
    if engine.free:
        return inner
    return EngineCostModel(inner, engine, tp=tp, num_layers=num_layers)
