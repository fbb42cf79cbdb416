"""GPU power during a step, from measured power where it exists.

Owns the PowerModel record and its loader. A calibrated device (profiles/data/<device>/power.json,
written by `servesim fit --power`, simulator/validation/power_fit.py) draws, per GPU,
    P = clip(active_w + compute_w * U_c + memory_w * U_m, idle_w, tdp_w)   while a step runs,
    P = idle_w                                                           between steps,
with U_c = FLOPs / (peak FLOP/s x step time) and U_m = bytes / (peak bandwidth x step time) the
step's compute and memory utilization on one GPU (what the step does, not a straight line to TDP:
a memory-bound decode step and a compute-bound prefill step draw differently). `active_w` is the
draw of a step with no useful work (clocks up, launches, engine time). The coefficients are fitted
to NVML averages of real serving runs (their source, run count and held-out error are in the
file); devices without published power get them carried over as fractions of (TDP - idle) from
the measured devices (source "transfer"). The pre-calibration model (engine "ideal", or a device
with no file) is the utilization line P = idle_w + (tdp_w - idle_w) * min(1, max(U_c, U_m)).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from hardware import DeviceSpec
from simulator.errors import ServesimError

POWER_DIR = Path(__file__).resolve().parents[2] / "profiles" / "data"
FORMAT = "servesim-power/1"
LINE = "line"  # the pre-calibration utilization line


@dataclass(frozen=True, slots=True)
class PowerModel:
    device: str
    idle_w: float
    tdp_w: float
    active_w: float = 0.0
    compute_w: float = 0.0
    memory_w: float = 0.0
    kind: str = LINE  # "measured" (fitted to this device's NVML data), "transfer", or LINE
    source: str = "hardware catalog idle_w and tdp_w: utilization line (uncalibrated estimate)"
    known_error: str = "not calibrated: no NVML-measured runs for this device (the ideal engine, or a user device file)"

    def step_w(self, u_compute: np.ndarray, u_memory: np.ndarray) -> np.ndarray:
        """Per-GPU watts of steps with the given utilizations (arrays of the same shape)."""
        if self.kind == LINE:
            u = np.clip(np.maximum(u_compute, u_memory), 0.0, 1.0)
            return self.idle_w + (self.tdp_w - self.idle_w) * u
        p = self.active_w + self.compute_w * np.clip(u_compute, 0, 1) + self.memory_w * np.clip(u_memory, 0, 1)
        return np.clip(p, self.idle_w, self.tdp_w)

    def describe(self) -> dict:
        if self.kind == LINE:
            formula = "P = idle_w + (tdp_w - idle_w) * min(1, max(U_c, U_m))"
        else:
            formula = "P = clip(active_w + compute_w * U_c + memory_w * U_m, idle_w, tdp_w)"
        return {"kind": self.kind, "formula": formula, "idle_w": self.idle_w, "tdp_w": self.tdp_w,
                "active_w": self.active_w, "compute_w": self.compute_w, "memory_w": self.memory_w,
                "source": self.source, "known_error": self.known_error}

    def to_json(self) -> dict:
        return {"format": FORMAT, "device": self.device} | self.describe()


def line_model(device: DeviceSpec) -> PowerModel:
    return PowerModel(device.name, device.idle_w, device.tdp_w)


def power_path(device_name: str) -> Path:
    return POWER_DIR / device_name / "power.json"


@lru_cache(maxsize=64)
def _read(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ServesimError(f"{path}: not valid JSON: {exc}") from None
    if raw.get("format") != FORMAT:
        raise ServesimError(f"{path}: format {raw.get('format')!r}, expected {FORMAT!r}")
    return raw


def load_power_model(device: DeviceSpec, *, calibrated: bool = True) -> PowerModel:
    """The device's fitted or transferred power model; the utilization line when `calibrated` is
    False (engine "ideal") or the device has none (a user's TOML). Watts scale with this TOML's
    idle_w/tdp_w when it differs from the file's (a power-capped card)."""
    raw = _read(power_path(device.name)) if calibrated else None
    if raw is None:
        return line_model(device)
    span_file = raw["tdp_w"] - raw["idle_w"]
    scale = (device.tdp_w - device.idle_w) / span_file if span_file > 0 else 1.0
    return PowerModel(device.name, device.idle_w, device.tdp_w,
                      active_w=device.idle_w + (raw["active_w"] - raw["idle_w"]) * scale,
                      compute_w=raw["compute_w"] * scale, memory_w=raw["memory_w"] * scale,
                      kind=raw["kind"], source=raw["source"], known_error=raw["known_error"])
