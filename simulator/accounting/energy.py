"""Energy and money of a simulated run, from its per-step records.

Energy (an estimate, not a measurement): each GPU of a replica draws, during a step, the device's
power model (accounting/power.py: fitted to published NVML runs, carried over to devices without
them, or the pre-calibration utilization line) at the step's compute and memory utilization
U_c = FLOPs / (peak FLOP/s x duration), U_m = bytes / (peak bandwidth x duration), and idle_w
whenever the replica has no step running, over the window [0, end of the last step or request].
The step records carry per-rank FLOPs and bytes, so U is per GPU; a replica has tp GPUs. Hook: a
step column MEASURED_POWER_COLUMN (W per GPU, NaN where unmeasured; no recorder writes it yet - a
measured profile with power will) replaces the estimate per step.

Money: usd_per_gpu_hour (hardware catalog, or the scenario's price_usd_per_hour override)
x GPUs (replicas * tp) x window. Owns neither timing (cost/) nor metrics (results/).
"""
from __future__ import annotations

import numpy as np

from hardware import DeviceSpec
from simulator.accounting.power import PowerModel, line_model, load_power_model
from simulator.engine import StepTotals

MEASURED_POWER_COLUMN = "power_w"


def utilizations(steps: dict[str, np.ndarray], device: DeviceSpec, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """(U_c, U_m) per step, per GPU (module docstring)."""
    dur = np.asarray(steps["duration_s"], dtype=np.float64)
    pos = dur > 0
    uc = np.divide(steps["flops"] / device.peak_flops(dtype), dur, out=np.zeros_like(dur), where=pos)
    um = np.divide(steps["bytes"] / device.memory_bandwidth_bytes_per_s, dur, out=np.zeros_like(dur), where=pos)
    return uc, um


def step_power_w(steps: dict[str, np.ndarray], device: DeviceSpec, dtype: str,
                 power: PowerModel | None = None) -> np.ndarray:
    """Per-GPU power of each step (W): the power model, or the measured column."""
    power = power or line_model(device)
    watts = power.step_w(*utilizations(steps, device, dtype))
    measured = steps.get(MEASURED_POWER_COLUMN)
    if measured is not None and len(measured):
        watts = np.where(np.isfinite(measured), measured, watts)
    return watts


def step_energy_w(device: DeviceSpec, dtype: str, engine=None, power: PowerModel | None = None):
    """block of step rows -> per-GPU watts per step, with the power model a run of `engine` uses
    (load_power_model; the utilization line for engine "ideal"); StepTotals sums it x duration."""
    calibrated = getattr(engine, "device_model", "calibrated") == "calibrated"
    power = power or load_power_model(device, calibrated=calibrated)

    def watts(block) -> np.ndarray:
        return step_power_w(block, device, dtype, power)

    watts.power_model = power
    return watts


def run_window_s(totals: StepTotals, last_finish_s: float) -> float:
    """The run's span from t=0: the later of the last step's end and the last request's end."""
    return max(totals.end_s, float(last_finish_s) if np.isfinite(last_finish_s) else 0.0)


def energy_section(steps: StepTotals | dict[str, np.ndarray], device: DeviceSpec, *, dtype: str, tp: int,
                   replicas: int, window_s: float, num_output_tokens: int, power_model: PowerModel | None = None) -> dict:
    """The "energy" section from a run's step totals (folded with a power model: StepTotals with
    step_energy_w) or from a whole step table (folded here with `power_model`)."""
    power_model = power_model or line_model(device)
    if not isinstance(steps, StepTotals):
        steps = StepTotals.of(steps, step_energy_w(device, dtype, power=power_model))
    elif steps.power_w is None and steps.num_steps:
        raise ValueError("energy_section: the step totals were folded without a power model (StepTotals(power_w=...))")
    busy_j = steps.busy_gpu_j * tp
    busy_s = np.zeros(replicas)
    busy_s[:len(steps.replica_busy_s)] = steps.replica_busy_s[:replicas]
    idle_s = float(np.maximum(window_s - busy_s, 0.0).sum())
    idle_j = device.idle_w * tp * idle_s
    total_j = busy_j + idle_j
    num_measured = steps.num_measured_power
    num_steps = steps.num_steps
    nan = float("nan")
    return {
        "model": power_model.kind if num_measured < num_steps or not num_steps else "measured power",
        "utilization": "U_c = FLOPs/(peak FLOP/s x step duration), U_m = bytes/(peak bandwidth x step duration), per GPU",
        "power_model": power_model.describe(),
        "idle_w": device.idle_w, "tdp_w": device.tdp_w,
        "power_source": power_model.source,
        "power_known_error": power_model.known_error,
        "num_gpus": replicas * tp,
        "num_steps_measured_power": num_measured,
        "window_s": window_s,
        "busy_j": busy_j, "idle_j": idle_j, "total_j": total_j,
        "kwh": total_j / 3.6e6,
        "mean_power_w": total_j / window_s if window_s > 0 else nan,
        "j_per_output_token": total_j / num_output_tokens if num_output_tokens else nan,
    }


def price_section(device: DeviceSpec, *, override_usd_per_gpu_hour: float | None, num_gpus: int,
                  window_s: float, num_output_tokens: int) -> dict:
    if override_usd_per_gpu_hour is None:
        price, source = device.price_usd_per_hour, f"{_price_file(device)}, as of {device.price_as_of}"
    else:
        price, source = float(override_usd_per_gpu_hour), "scenario override (price_usd_per_hour)"
    usd_per_hour = price * num_gpus
    usd_total = usd_per_hour * window_s / 3600.0
    return {
        "usd_per_gpu_hour": price, "source": source, "num_gpus": num_gpus,
        "usd_per_hour": usd_per_hour, "window_s": window_s, "usd_total": usd_total,
        "usd_per_million_output_tokens": usd_total / num_output_tokens * 1e6 if num_output_tokens else float("nan"),
    }


def _price_file(device: DeviceSpec) -> str:
    from pathlib import Path

    from hardware.catalog import DATA_DIR

    origin = Path(device.origin) if device.origin else None
    if origin is None or origin.resolve().parent == DATA_DIR.resolve():
        return f"hardware catalog {device.name}"
    return f"device file {origin}"


def money_sections(result, metrics: dict) -> dict:
    """build_summary's "energy" and "price" sections for a RunResult."""
    rec, s = result.recorder, result.scenario
    steps = rec.totals
    last = float(np.fmax.reduce(rec.finish_s)) if len(rec.finish_s) else 0.0  # NaN-skipping max, no copy
    window = run_window_s(steps, last if np.isfinite(last) else 0.0)
    tokens = int(metrics.get("total_output_tokens", 0))
    return {
        "energy": energy_section(steps, result.device, dtype=s.dtype, tp=s.tp, replicas=s.replicas,
                                 window_s=window, num_output_tokens=tokens,
                                 power_model=load_power_model(result.device, calibrated=result.calibrated)),
        "price": price_section(result.device, override_usd_per_gpu_hour=s.price_usd_per_hour,
                               num_gpus=s.replicas * s.tp, window_s=window, num_output_tokens=tokens),
    }
