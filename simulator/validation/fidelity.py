"""Fidelity against published measurements: simulate every point, compare, summarise.

Owns the comparison behind `servesim validate --published` and benchmarks/fidelity.py: each
included point's setting simulated once (points sharing a setting share the run), its error
(predicted / measured - 1) and speed ratio (predicted speed / measured speed, > 1 = optimistic),
the cost model and engine each prediction used, summaries by device, by regime and by split
(calibration vs held out), and measured vs predicted ratios of the same workload on two devices
(points sharing a `pair` tag). Points are never dropped: excluded ones are counted with reasons.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simulator.errors import ServesimError
from simulator.results import build_summary
from simulator.run import simulate
from simulator.validation.published import Point, faster_is_higher, metric_value, scenario_for


@dataclass(frozen=True, slots=True)
class Outcome:
    point: Point
    predicted: float
    cost_model: str
    error: str = ""  # why the simulation failed (a point the simulator refused)

    @property
    def error_pct(self) -> float:
        return (self.predicted / self.point.measured - 1) * 100 if self.ok else math.nan

    @property
    def speed_ratio(self) -> float:
        r = self.predicted / self.point.measured
        return r if faster_is_higher(self.point.metric) else 1 / r

    @property
    def ok(self) -> bool:
        return not self.error and math.isfinite(self.predicted) and self.predicted > 0


def _cost_model_name(summary: dict) -> str:
    cm = summary["provenance"]["cost_model"]
    engine = (summary["provenance"].get("engine") or {}).get("name", "none")
    return f"{cm.get('source', cm.get('kind'))} + engine {engine}"


def evaluate(points: list[Point], *, engine: str | None = None, progress=None) -> list[Outcome]:
    """Every included point predicted; one simulation per distinct setting."""
    runs: dict[tuple, tuple[dict | None, str]] = {}
    out = []
    todo = [p for p in points if p.split != "excluded"]
    for i, p in enumerate(todo):
        key = (scenario_for(p, engine=engine), p.num_gpus)
        if key not in runs:
            try:
                summary = build_summary(simulate(key[0]))
                runs[key] = (summary, "")
            except (ServesimError, ValueError) as exc:
                runs[key] = (None, str(exc))
        summary, err = runs[key]
        if summary is None:
            out.append(Outcome(p, math.nan, "", err))
        else:
            out.append(Outcome(p, metric_value(p, summary), _cost_model_name(summary)))
        if progress:
            progress(i + 1, len(todo))
    return out


def _stats(outcomes: list[Outcome]) -> dict:
    errs = np.array([abs(o.error_pct) for o in outcomes if o.ok])
    speed = np.array([o.speed_ratio for o in outcomes if o.ok])
    if not len(errs):
        return {"points": len(outcomes), "simulated": 0}
    return {"points": len(outcomes), "simulated": int(len(errs)), "median_abs_error_pct": float(np.median(errs)),
            "p90_abs_error_pct": float(np.percentile(errs, 90)), "max_abs_error_pct": float(errs.max()),
            "within_10_pct": int((errs <= 10).sum()), "beyond_25_pct": int((errs > 25).sum()),
            "median_speed_ratio": float(np.median(speed))}


def cross_device_ratios(outcomes: list[Outcome]) -> list[dict]:
    """Same workload (shared pair tag and metric) on two devices: measured vs predicted ratio."""
    groups: dict[tuple, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        if o.ok and o.point.pair:
            groups[(o.point.pair, o.point.metric)].append(o)
    out = []
    for (pair, metric), group in sorted(groups.items()):
        by_gpu = {o.point.gpu: o for o in group}
        gpus = sorted(by_gpu)
        for a_i, a in enumerate(gpus):
            for b in gpus[a_i + 1:]:
                oa, ob = by_gpu[a], by_gpu[b]
                sign = 1 if faster_is_higher(metric) else -1
                measured = (ob.point.measured / oa.point.measured) ** sign
                predicted = (ob.predicted / oa.predicted) ** sign
                out.append({"pair": pair, "metric": metric, "devices": f"{b} / {a}", "measured_speedup": measured,
                            "predicted_speedup": predicted, "error_pct": (predicted / measured - 1) * 100,
                            "split": "holdout" if {oa.point.split, ob.point.split} == {"holdout"} else "calibration"})
    return out


@lru_cache(maxsize=None)
def _architecture(model: str) -> str:
    """A catalog model's architecture class (each config read once per process)."""
    from simulator.models import load_model

    return load_model(model).architecture_class


def report(points: list[Point], outcomes: list[Outcome]) -> dict:
    """Summaries: overall, held out, by split; by device, regime, engine and architecture class over
    held-out points only (device, engine, architecture: speed metrics, the energy points have their own regime line)."""
    ok = [o for o in outcomes if o.ok]
    by = defaultdict(list)
    for o in ok:
        by[("split", o.point.split)].append(o)
        if o.point.split != "holdout":
            continue
        by[("regime", o.point.regime)].append(o)
        if o.point.regime != "energy":
            by[("device", o.point.gpu)].append(o)
            by[("engine", o.point.engine)].append(o)
            by[("architecture", _architecture(o.point.model))].append(o)
    pairs = cross_device_ratios(outcomes)
    pair_err = np.array([abs(p["error_pct"]) for p in pairs]) if pairs else np.zeros(0)
    excluded = [p for p in points if p.split == "excluded"]
    return {
        "overall": _stats(ok),
        "holdout": _stats([o for o in ok if o.point.split == "holdout"]),
        "by": {f"{k}={v}": _stats(os) for (k, v), os in sorted(by.items())},
        "cross_device": pairs,
        "cross_device_summary": ({"pairs": len(pairs), "median_abs_error_pct": float(np.median(pair_err)),
                                  "max_abs_error_pct": float(pair_err.max()), "within_10_pct": int((pair_err <= 10).sum())}
                                 if len(pair_err) else {"pairs": 0}),
        "failed": [{"id": o.point.id, "error": o.error} for o in outcomes if not o.ok],
        "excluded": {"points": len(excluded), "reasons": dict(Counter(p.notes.split(" (")[0] for p in excluded))},
        "points": [{"id": o.point.id, "split": o.point.split, "regime": o.point.regime, "device": o.point.gpu,
                    "model": o.point.model, "engine": o.point.engine, "metric": o.point.metric,
                    "measured": o.point.measured, "predicted": o.predicted, "error_pct": o.error_pct,
                    "speed_ratio": o.speed_ratio if o.ok else math.nan, "cost_model": o.cost_model,
                    "source": o.point.source} for o in outcomes],
    }


SPEED_REGIMES_EXCLUDED = ("energy",)


def fidelity_inputs_digest() -> str:
    """sha256 over what the published comparison depends on (dataset, engine files, device
    calibrations, power models): profiles/data/fidelity.json records it, a test checks it."""
    import hashlib
    from pathlib import Path

    from simulator.validation.published import DATA

    root = Path(__file__).resolve().parents[2] / "profiles" / "data"
    files = [DATA, *sorted(root.glob("engines/*.toml")), *sorted(root.glob("*/device.json")),
             *sorted(root.glob("*/power.json"))]
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(root.parent.parent).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def known_errors(outcomes: list[Outcome]) -> dict:
    """Held-out speed errors per device, per engine and per kind of device calibration: what
    every prediction quotes as its known error (simulator/cost/known_error.py)."""
    from hardware import load_device
    from simulator.cost import device_kernels

    held = [o for o in outcomes if o.ok and o.point.split == "holdout" and o.point.regime not in SPEED_REGIMES_EXCLUDED]

    def stats(os: list[Outcome]) -> dict:
        e = np.array([abs(o.error_pct) for o in os])
        return {"points": len(os), "median_abs_error_pct": round(float(np.median(e)), 2),
                "p90_abs_error_pct": round(float(np.percentile(e, 90)), 2),
                "median_speed_ratio": round(float(np.median([o.speed_ratio for o in os])), 3)}

    groups: dict[str, dict[str, list]] = {"device": defaultdict(list), "engine": defaultdict(list),
                                          "calibration_kind": defaultdict(list), "architecture": defaultdict(list)}
    for o in held:
        groups["device"][o.point.gpu].append(o)
        groups["architecture"][_architecture(o.point.model)].append(o)
        groups["engine"][o.point.engine].append(o)
        kernels = device_kernels(load_device(o.point.gpu))
        groups["calibration_kind"][kernels.kind if kernels else "none"].append(o)
    out = {k: {name: stats(os) for name, os in sorted(g.items())} for k, g in groups.items()}
    energy = [o for o in outcomes if o.ok and o.point.split == "holdout" and o.point.regime == "energy"]
    out["energy"] = stats(energy) if energy else {}
    out["all"] = stats(held) if held else {}
    out["inputs_sha256"] = fidelity_inputs_digest()
    out["generated_by"] = "python benchmarks/fidelity.py --write"
    return out
