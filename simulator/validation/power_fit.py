"""Fitting each device's power model to published NVML measurements of real serving runs.

Owns `servesim fit --power`: for every run in simulator/validation/data/power_runs.csv (ML.ENERGY
leaderboard v3: average GPU power over a steady-state window of vLLM at a fixed max_num_seqs,
with its throughput), the simulator gives the work per output token on one GPU (FLOPs and bytes
of the same setting); the measured throughput turns it into the run's utilizations
    U_c = FLOPs/token x measured tokens/s / peak FLOP/s,  U_m = bytes/token x tokens/s / peak bandwidth
(measured time, so the power fit does not inherit the timing model's error), and a non-negative
least-squares fit of  P_gpu = active_w + compute_w U_c + memory_w U_m  per device gives the
coefficients (accounting/power.py). Known error: leave-one-model-out (fit on the other models'
runs, predict this model's) per device. Devices with no runs get the measured devices' coefficients
as fractions of (TDP - idle), with the error of doing the same between the measured devices.
The Llama-3.1 energy points of the published set are never used here: they stay held out.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware import DeviceSpec, device_names, load_device
from simulator.accounting import PowerModel, power_path
from simulator.results import build_summary
from simulator.run import simulate
from simulator.scenario import scenario_from_dict

RUNS = Path(__file__).parent / "data" / "power_runs.csv"
PROMPT_TOKENS = 128  # LM Arena prompt lengths are not published: as the published points assume


@dataclass(frozen=True, slots=True)
class PowerRun:
    model: str
    gpu: str
    tp: int
    max_num_seqs: int
    output_tokens: int
    output_tok_per_s: float
    avg_power_w: float  # all GPUs of the run
    num_gpus: int
    source: str


def read_runs(path: Path = RUNS) -> list[PowerRun]:
    with open(path, newline="") as fh:
        return [PowerRun(r["model"], r["gpu"], int(r["tp"]), int(r["max_num_seqs"]), int(r["output_tokens"]),
                         float(r["output_tok_per_s"]), float(r["avg_power_w"]), int(r["num_gpus"]), r["source"])
                for r in csv.DictReader(fh)]


def run_utilization(run: PowerRun) -> tuple[float, float]:
    """(U_c, U_m) of one GPU over the run: simulated work per output token at measured speed."""
    s = scenario_from_dict({"model": run.model, "hardware": run.gpu, "tp": run.tp, "engine": "vllm",
                            "closed_loop_users": run.max_num_seqs, "max_num_seqs": run.max_num_seqs,
                            "num_requests": max(4 * run.max_num_seqs, 64), "prompt_tokens": str(PROMPT_TOKENS),
                            "output_tokens": str(run.output_tokens), "scheduler": "sarathi", "chunk_size": 8192,
                            "max_num_batched_tokens": 8192, "gpu_memory_utilization": 0.9, "seed": 0},
                           origin=f"power run {run.model} {run.gpu} n={run.max_num_seqs}")
    result = simulate(s)
    steps = result.recorder.step_arrays()
    tokens = build_summary(result)["metrics"]["total_output_tokens"]
    device = result.device
    per_token_flops = float(np.sum(steps["flops"])) / tokens  # per rank
    per_token_bytes = float(np.sum(steps["bytes"])) / tokens
    rate = run.output_tok_per_s / (run.num_gpus // run.tp)  # tokens/s of one replica
    return (per_token_flops * rate / device.peak_flops(s.dtype),
            per_token_bytes * rate / device.memory_bandwidth_bytes_per_s)


def _nnls(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    return nnls(x, y)[0]


def _design(u: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(u)), u[:, 0], u[:, 1]])


def fit_device(runs: list[PowerRun], utils: np.ndarray, device: DeviceSpec) -> tuple[PowerModel, dict]:
    """(PowerModel, error record) for one device from its runs."""
    y = np.array([r.avg_power_w / r.num_gpus for r in runs])
    coef = _nnls(_design(utils), y)
    models = sorted({r.model for r in runs})
    held = []
    for m in models:  # leave one model out
        train = np.array([r.model != m for r in runs])
        if train.all() or not train.any():
            continue
        c = _nnls(_design(utils[train]), y[train])
        pred = _design(utils[~train]) @ c
        held.extend(np.abs(pred / y[~train] - 1) * 100)
    fit_err = np.abs(_design(utils) @ coef / y - 1) * 100
    err = {"runs": len(runs), "models": models, "fit_median_ape_pct": float(np.median(fit_err)),
           "held_out_median_ape_pct": float(np.median(held)) if held else math.nan,
           "held_out_max_ape_pct": float(np.max(held)) if held else math.nan}
    known = (f"average power within {err['held_out_median_ape_pct']:.1f}% median ({err['held_out_max_ape_pct']:.1f}% "
             f"max) on models left out of the fit ({len(runs)} runs of {', '.join(models)})")
    model = PowerModel(device.name, device.idle_w, device.tdp_w, active_w=float(coef[0]), compute_w=float(coef[1]),
                       memory_w=float(coef[2]), kind="measured",
                       source=f"fitted to {len(runs)} NVML-measured vLLM runs: {runs[0].source}", known_error=known)
    return model, err


def _fractions(m: PowerModel) -> np.ndarray:
    span = m.tdp_w - m.idle_w
    return np.array([(m.active_w - m.idle_w) / span, m.compute_w / span, m.memory_w / span])


def transfer(measured: dict[str, PowerModel], device: DeviceSpec, *, error_pct: float) -> PowerModel:
    f = np.mean([_fractions(m) for m in measured.values()], axis=0)
    span = device.tdp_w - device.idle_w
    return PowerModel(device.name, device.idle_w, device.tdp_w, active_w=device.idle_w + f[0] * span,
                      compute_w=f[1] * span, memory_w=f[2] * span, kind="transfer",
                      source=(f"transfer: mean of {', '.join(sorted(measured))} coefficients as fractions of "
                              f"(TDP - idle), scaled to this device's {device.idle_w:.0f}-{device.tdp_w:.0f} W"),
                      known_error=f"about {error_pct:.0f}% median (one measured device's fractions predicting the other's runs)")


def fit_all(runs: list[PowerRun], progress=None) -> tuple[dict[str, PowerModel], dict]:
    """Power models for every catalog GPU, and the fit report."""
    by_gpu: dict[str, list[PowerRun]] = {}
    for r in runs:
        by_gpu.setdefault(r.gpu, []).append(r)
    utils, measured, report = {}, {}, {}
    for i, r in enumerate(runs):
        utils[id(r)] = run_utilization(r)
        if progress:
            progress(i + 1, len(runs))
    for gpu, rs in sorted(by_gpu.items()):
        u = np.array([utils[id(r)] for r in rs])
        measured[gpu], report[gpu] = fit_device(rs, u, load_device(gpu))
    cross = []  # each measured device predicted with the other's fractions
    for gpu, rs in by_gpu.items():
        others = {g: m for g, m in measured.items() if g != gpu}
        if not others:
            continue
        t = transfer(others, load_device(gpu), error_pct=0)
        u = np.array([utils[id(r)] for r in rs])
        pred = t.step_w(u[:, 0], u[:, 1])
        cross.extend(np.abs(pred / np.array([r.avg_power_w / r.num_gpus for r in rs]) - 1) * 100)
    cross_err = float(np.median(cross)) if cross else math.nan
    report["transfer_median_ape_pct"] = cross_err
    out = dict(measured)
    for d in device_names():
        device = load_device(d)
        if device.kind == "gpu" and d not in out:
            out[d] = transfer(measured, device, error_pct=cross_err)
    return out, report


def write_models(models: dict[str, PowerModel], root: Path | None = None) -> list[Path]:
    paths = []
    for name, m in sorted(models.items()):
        path = (root / name / "power.json") if root else power_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(m.to_json(), indent=1) + "\n")
        paths.append(path)
    return paths
