"""A user's own serving benchmark against the simulator: `servesim validate --bench` and
`servesim calibrate --bench`.

Owns, for BenchResult files (workload/bench_results.py):
- the measured vLLM metrics, computed from the per-request data with vLLM's definitions
  (TTFT; TPOT = (e2el - ttft) / (output - 1); ITL = every inter-token gap; E2EL = ttft + sum of
  ITLs; throughputs over the file's own duration);
- the Scenario that replays the file: the user's model, device and engine, exactly the file's
  finished requests (lengths in send order), arriving at their send times when the file has them,
  else by the file's rate and burstiness (or its max concurrency as closed-loop users);
- the comparison, metric by metric;
- the calibration: the device's compute and memory efficiencies (scales of its calibration) and
  the engine's per-step and per-sequence CPU time, fitted (validation/engine_fit.py fit_box) to
  mean TTFT, mean TPOT and output throughput of every file, with a leave-one-file-out error when
  there are several, written as a profile directory (device.json, engine.toml, calibration.json)
  that `simulate --profile DIR` uses and names;
- bench_json: a simulated run in the same file format (tests, and diffing two runs).
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardware import load_device
from simulator.cost import EngineSpec, device_kernels, engine_toml, resolve_engine
from simulator.engine import FINISHED
from simulator.errors import ServesimError
from simulator.results import build_summary
from simulator.run import simulate
from simulator.scenario import Scenario
from simulator.validation.engine_fit import fit_box
from simulator.workload import BenchResult

LATENCIES = ("ttft", "tpot", "itl", "e2el")
STATS = ("mean", "median", "p90", "p99")
METRICS = (("request_throughput", "req/s"), ("output_throughput", "tok/s"), ("total_token_throughput", "tok/s")) + tuple(
    (f"{s}_{k}_ms", "ms") for k in LATENCIES for s in STATS)
FIT_METRICS = ("mean_ttft_ms", "mean_tpot_ms", "output_throughput")
DEVICE_NUMBERS = ("compute_scale", "memory_scale")
BOUNDS = {"compute_scale": (0.2, 2.5), "memory_scale": (0.2, 1.6), "step_overhead_ms": (0.0, 30.0),
          "per_seq_us": (0.0, 500.0), "request_overhead_ms": (0.0, 200.0)}
DEFAULT_NUMBERS = ("compute_scale", "memory_scale", "step_overhead_ms")


def _stats(prefix: str, values_ms: np.ndarray) -> dict:
    if not len(values_ms):
        return {f"{s}_{prefix}_ms": math.nan for s in STATS}
    return {f"mean_{prefix}_ms": float(np.mean(values_ms)), f"median_{prefix}_ms": float(np.median(values_ms)),
            f"p90_{prefix}_ms": float(np.percentile(values_ms, 90)), f"p99_{prefix}_ms": float(np.percentile(values_ms, 99))}


def measured_metrics(b: BenchResult) -> dict:
    """The file's vLLM metrics from its per-request data (module docstring)."""
    ok = b.ok
    ttft = b.ttfts_s[ok]
    itls = [b.itls_s[i] for i in np.flatnonzero(ok)]
    e2el = ttft + np.array([x.sum() for x in itls])
    out = b.output_lens[ok]
    multi = out > 1
    tpot = (e2el - ttft)[multi] / (out[multi] - 1)
    duration = b.reported.get("duration")
    if duration is None and b.start_times_s is not None:
        duration = float(np.max(b.start_times_s[ok] + e2el))
    if not duration or duration <= 0:
        raise ServesimError(f"{b.path}: no duration (neither a 'duration' field nor send times) to compute throughput")
    m = {"completed": int(ok.sum()), "failed": b.num_failed, "duration": float(duration),
         "request_throughput": ok.sum() / duration, "output_throughput": out.sum() / duration,
         "total_token_throughput": (out.sum() + b.input_lens[ok].sum()) / duration}
    flat = np.concatenate(itls) if itls else np.zeros(0)
    for name, values in (("ttft", ttft), ("tpot", tpot), ("itl", flat), ("e2el", e2el)):
        m.update(_stats(name, values * 1e3))
    return m


def bench_scenario(b: BenchResult, base: Scenario) -> Scenario:
    """`base` (model, device, engine, limits) serving exactly the file's finished requests."""
    n = int(b.ok.sum())
    longest = int((b.input_lens[b.ok] + b.output_lens[b.ok]).max())
    kw = dict(trace=str(b.path), trace_format="bench", num_requests=n, frontend="server",
              max_model_len=max(base.max_model_len or 0, longest))
    if b.start_times_s is not None:
        kw.update(trace_arrivals="trace", closed_loop_users=None)
    elif b.max_concurrency and math.isinf(b.request_rate):
        kw.update(trace_arrivals="rate", rate=math.inf, closed_loop_users=b.max_concurrency)
    else:
        kw.update(trace_arrivals="rate", rate=b.request_rate, closed_loop_users=None,
                  arrival="poisson" if b.burstiness == 1 else "gamma", burstiness=b.burstiness)
    return base.replace(**kw)


def predicted_metrics(summary: dict) -> dict:
    return {k: summary["metrics"].get(k, math.nan) for k, _ in METRICS} | {
        "completed": summary["metrics"].get("completed"), "failed": summary["metrics"].get("failed")}


def compare(b: BenchResult, base: Scenario, **simulate_kw) -> dict:
    """Measured vs predicted for one file: {"rows": [...], "prediction": provenance, ...}."""
    s = bench_scenario(b, base)
    summary = build_summary(simulate(s, **simulate_kw))
    meas, pred = measured_metrics(b), predicted_metrics(summary)
    rows = []
    for key, unit in METRICS:
        mv, pv = meas.get(key, math.nan), pred.get(key, math.nan)
        err = (pv / mv - 1) * 100 if mv and math.isfinite(mv) and math.isfinite(pv) else math.nan
        rows.append({"metric": key, "unit": unit, "measured": mv, "predicted": pv, "error_pct": err})
    return {"file": str(b.path), "tool": b.tool, "identity": b.identity, "requests": meas["completed"],
            "failed_in_file": b.num_failed, "arrivals": "send times from the file" if b.start_times_s is not None
            else (f"closed loop, {b.max_concurrency} users" if s.closed_loop_users else
                  f"{b.request_rate:g} req/s, burstiness {b.burstiness:g} (the file has no send times)"),
            "rows": rows, "prediction": summary["provenance"]["prediction"]}


def format_compare(report: dict) -> str:
    lines = [f"{report['file']} ({report['tool']}, {report['requests']} requests, {report['failed_in_file']} failed "
             f"in the file; arrivals: {report['arrivals']})",
             f"cost model: {report['prediction']['label']} + engine {report['prediction']['engine']}",
             f"{'metric':<26} {'measured':>12} {'predicted':>12} {'error':>8}"]
    for r in report["rows"]:
        err = f"{r['error_pct']:+.1f}%" if math.isfinite(r["error_pct"]) else "n/a"
        lines.append(f"{r['metric']:<26} {r['measured']:>12.4g} {r['predicted']:>12.4g} {err:>8}")
    return "\n".join(lines)


# ---- calibration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Calibration:
    values: dict[str, float]
    engine: EngineSpec
    calibration: object  # profiles DeviceKernels
    errors_before_pct: dict[str, dict[str, float]]  # file -> metric -> error
    errors_after_pct: dict[str, dict[str, float]]
    held_out_pct: dict[str, dict[str, float]]  # file -> metric -> error when fitted on the others
    evaluations: int


def _candidate(base_engine: EngineSpec, base_cal, values: dict):
    engine = dataclasses.replace(base_engine, **{k: v for k, v in values.items() if k not in DEVICE_NUMBERS})
    cal = base_cal.scaled(compute=values.get("compute_scale", 1.0), memory=values.get("memory_scale", 1.0))
    return engine, cal


def _fit(benches: list[BenchResult], base: Scenario, names: list[str], bounds: dict, base_engine, base_cal):
    scenarios = [bench_scenario(b, base) for b in benches]
    measured = np.array([[measured_metrics(b)[k] for k in FIT_METRICS] for b in benches])

    def predict(x) -> np.ndarray:
        engine, cal = _candidate(base_engine, base_cal, dict(zip(names, x)))
        rows = []
        for s in scenarios:
            m = build_summary(simulate(s, engine=engine, calibration=cal))["metrics"]
            rows.append([m.get(k, math.nan) for k in FIT_METRICS])
        return np.array(rows)

    def residuals(x) -> np.ndarray:
        pred = predict(x)
        if not np.all(np.isfinite(pred) & (pred > 0)):
            raise ServesimError(f"calibrate: a file's requests gave no prediction at {dict(zip(names, x))}")
        return np.log(pred / measured).ravel()

    start = [1.0 if n in DEVICE_NUMBERS else float(getattr(base_engine, n) or 0.0) for n in names]
    return fit_box(residuals, [tuple(bounds[n]) for n in names], start)


def _errors(benches, residuals: np.ndarray) -> dict:
    r = np.asarray(residuals).reshape(len(benches), len(FIT_METRICS))
    return {str(b.path): {k: (math.exp(v) - 1) * 100 for k, v in zip(FIT_METRICS, row)} for b, row in zip(benches, r)}


def calibrate(benches: list[BenchResult], base: Scenario, *, numbers: list[str] | None = None,
              bounds: dict | None = None, hold_out: bool = True) -> Calibration:
    """Fit `numbers` (default DEFAULT_NUMBERS: compute and memory efficiency scales and the
    per-step CPU time; per_seq_us and request_overhead_ms on request) to the files (module
    docstring). Files at different batch sizes and prompt lengths separate the numbers. Raises ServesimError when the files cannot determine them (fewer
    fitted metrics than numbers), a name is unknown, or the device has no calibration (a CPU)."""
    numbers = list(numbers or DEFAULT_NUMBERS)
    bounds = {**BOUNDS, **(bounds or {})}
    engine_fields = {f.name for f in dataclasses.fields(EngineSpec)}
    if unknown := [n for n in numbers if n not in DEVICE_NUMBERS and n not in engine_fields]:
        raise ServesimError(f"calibrate: {unknown} are neither {DEVICE_NUMBERS} nor engine fields")
    if missing := [n for n in numbers if n not in bounds]:
        raise ServesimError(f"calibrate: no bounds for {missing}; give them as NAME=LO:HI")
    if len(benches) * len(FIT_METRICS) < len(numbers):
        raise ServesimError(f"calibrate: {len(benches)} file(s) give {len(benches) * len(FIT_METRICS)} metrics, "
                            f"too few for {len(numbers)} numbers; add a file or fit fewer (--fit)")
    device = load_device(base.hardware)
    base_cal = device_kernels(device)
    if base_cal is None:
        raise ServesimError(f"calibrate: {device.name} is a CPU; profile it instead (`servesim profile`)")
    base_engine = resolve_engine(base, device)
    x, before, after, calls = _fit(benches, base, numbers, bounds, base_engine, base_cal)
    held: dict[str, dict[str, float]] = {}
    if hold_out and len(benches) > 1 and (len(benches) - 1) * len(FIT_METRICS) >= len(numbers):
        for i, b in enumerate(benches):
            rest = benches[:i] + benches[i + 1:]
            xi, _, _, _ = _fit(rest, base, numbers, bounds, base_engine, base_cal)
            engine, cal = _candidate(base_engine, base_cal, dict(zip(numbers, xi)))
            m = build_summary(simulate(bench_scenario(b, base), engine=engine, calibration=cal))["metrics"]
            meas = measured_metrics(b)
            held[str(b.path)] = {k: (m[k] / meas[k] - 1) * 100 for k in FIT_METRICS}
    values = dict(zip(numbers, map(float, x)))
    engine, cal = _candidate(base_engine, base_cal, values)
    return Calibration(values, engine, cal, _errors(benches, before), _errors(benches, after), held, calls)


def write_calibration(result: Calibration, benches: list[BenchResult], base: Scenario, out: Path) -> Path:
    """The profile directory `simulate --profile DIR` uses (device.json, engine.toml, calibration.json)."""
    from profiles.device_model import save_device

    out.mkdir(parents=True, exist_ok=True)
    files = [str(b.path) for b in benches]
    held = [abs(v) for f in result.held_out_pct.values() for v in f.values()]
    fitted = [abs(v) for f in result.errors_after_pct.values() for v in f.values()]
    known = (f"held-out (leave one file out) median |error| {np.median(held):.1f}%, max {max(held):.1f}% on "
             f"{', '.join(FIT_METRICS)}" if held else
             f"fitted error median {np.median(fitted):.1f}%, max {max(fitted):.1f}% (one file: nothing held out)")
    identity = [b.identity for b in benches]
    record = {"format": "servesim-calibration/1", "created": time.strftime("%Y-%m-%d %H:%M:%S"),
              "bench_files": files, "identity": identity, "model": base.model, "hardware": base.hardware,
              "dtype": base.dtype, "tp": base.tp, "engine_base": result.engine.name, "fitted": result.values,
              "fit_metrics": list(FIT_METRICS), "error_before_pct": result.errors_before_pct,
              "error_after_pct": result.errors_after_pct, "held_out_error_pct": result.held_out_pct,
              "known_error": known, "evaluations": result.evaluations}
    prov = dict(result.calibration.provenance, kind="fit", calibrated_by=f"servesim calibrate on {len(files)} "
                f"benchmark file(s), {base.model} on {base.hardware}", known_error=known,
                source=f"{result.calibration.provenance.get('source', '')}; scaled x{result.values.get('compute_scale', 1):.3f}"
                       f" compute, x{result.values.get('memory_scale', 1):.3f} memory by servesim calibrate")
    cal = result.calibration
    save_device(type(cal)(cal.spec, cal.classes, cal.collectives, prov), out / "device.json")
    base_name = result.engine.name
    kept = {k: f"as {base_name}: {v}" for k, v in result.engine.sources.items()}
    refit = {k: f"fitted by servesim calibrate on {', '.join(files)}" for k in result.values if k not in DEVICE_NUMBERS}
    engine = dataclasses.replace(result.engine, name=f"{base_name}-calibrated", fit={}, sources=kept | refit,
                                 display_name=f"{result.engine.display_name}, calibrated on {len(files)} file(s)",
                                 notes=f"{base_name} with numbers refitted to {', '.join(files)} by servesim calibrate "
                                       f"({record['created']}); the base engine's notes: {result.engine.notes}")
    (out / "engine.toml").write_text(engine_toml(engine))
    (out / "calibration.json").write_text(json.dumps(record, indent=1, sort_keys=True, default=float) + "\n")
    return out


# ---- a simulated run as a benchmark file -------------------------------------------------------
def bench_json(result, *, request_rate: float, burstiness: float = 1.0, max_concurrency: int | None = None) -> dict:
    """A RunResult in `vllm bench serve --save-result` form (seconds, send times). The recorder
    keeps inter-token gaps aggregated, not per request: each request's decode time is spread
    evenly over its gaps (its TPOT and E2EL, and the mean ITL, are exact; ITL percentiles are not)."""
    rec = result.recorder
    done = np.flatnonzero(rec.status == FINISHED)
    first, finish, out = rec.first_token_s[done], rec.finish_s[done], rec.output_tokens[done]
    itls = [[float((f - t) / (n - 1))] * int(n - 1) if n > 1 else [] for t, f, n in zip(first, finish, out)]
    return {"backend": "vllm", "model_id": result.model.name, "date": time.strftime("%Y%m%d-%H%M%S"),
            "num_prompts": int(len(rec.status)), "request_rate": request_rate if math.isfinite(request_rate) else "inf",
            "burstiness": burstiness, "max_concurrency": max_concurrency,
            "duration": float(finish.max() - rec.arrival_s.min()) if len(done) else 0.0, "completed": int(len(done)),
            "input_lens": rec.prompt_tokens[done].tolist(), "output_lens": out.tolist(),
            "ttfts": (first - rec.arrival_s[done]).tolist(), "itls": itls,
            "start_times": rec.arrival_s[done].tolist(), "errors": [""] * len(done)}
