"""Fitting an engine's own cost to declared measurements (the method behind profiles/data/engines/*.toml).

Owns the fit: given an engine file, the names of the EngineSpec numbers to fit with their allowed
ranges, and the published points declared for calibration (split "calibration", engine = this
engine), find the numbers that minimise the squared log error of the simulated metrics
(scipy.optimize.least_squares, bounded trust region; each residual = ln(predicted / measured), so
throughput, latency and energy points weigh alike). Every other point of the engine stays held
out: its error is reported apart by fidelity.py. The result names the points it used, their error
before and after, and the engine file to write (`servesim fit --engine`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from simulator.cost import EngineSpec
from simulator.errors import ServesimError
from simulator.results import build_summary
from simulator.run import simulate
from simulator.validation.published import Point, metric_value, scenario_for


@dataclass(frozen=True, slots=True)
class EngineFit:
    engine: EngineSpec  # the fitted engine
    points: tuple[str, ...]  # ids of the calibration points
    errors_before_pct: tuple[float, ...]
    errors_after_pct: tuple[float, ...]
    evaluations: int

    def describe(self) -> dict:
        names = [n for n in self.points]
        return {"points": names, "error_before_pct": [round(e, 2) for e in self.errors_before_pct],
                "error_after_pct": [round(e, 2) for e in self.errors_after_pct], "evaluations": self.evaluations}


def calibration_points(points: list[Point], engine: str) -> list[Point]:
    return [p for p in points if p.split == "calibration" and p.engine == engine]


def predict(points: list[Point], engine: EngineSpec) -> np.ndarray:
    """Each point's metric simulated with `engine` (points sharing a setting share the run)."""
    runs: dict = {}
    out = []
    for p in points:
        s = scenario_for(p)
        if s not in runs:
            runs[s] = build_summary(simulate(s, engine=engine))
        out.append(metric_value(p, runs[s]))
    return np.array(out, dtype=float)


def fit_engine(base: EngineSpec, bounds: dict[str, tuple[float, float]], points: list[Point]) -> EngineFit:
    """`base` with the numbers named in `bounds` fitted to `points` (module docstring).

    Raises ServesimError when there are no points, fewer points than numbers, an unknown field,
    or a point the simulator cannot run.
    """
    from scipy.optimize import least_squares

    if not points:
        raise ServesimError(f"engine {base.name!r}: no calibration points (split 'calibration', engine {base.name!r})")
    names = list(bounds)
    known = {f.name for f in dataclasses.fields(EngineSpec)}
    if unknown := [n for n in names if n not in known]:
        raise ServesimError(f"engine fields {unknown} unknown; fields: {sorted(known)}")
    if len(points) < len(names):
        raise ServesimError(f"{len(points)} calibration points cannot determine {len(names)} numbers {names}")
    measured = np.array([p.measured for p in points])
    lo = np.array([bounds[n][0] for n in names], dtype=float)
    hi = np.array([bounds[n][1] for n in names], dtype=float)
    calls = [0]

    def engine_at(u) -> EngineSpec:  # u in [0, 1]^n: each number scaled to its range
        return dataclasses.replace(base, **{n: float(v) for n, v in zip(names, lo + np.asarray(u) * (hi - lo))})

    def residuals(u) -> np.ndarray:
        calls[0] += 1
        pred = predict(points, engine_at(u))
        if not np.all(np.isfinite(pred) & (pred > 0)):
            raise ServesimError(f"engine fit: a calibration point gave no prediction at {engine_at(u).describe()}")
        return np.log(pred / measured)

    start = np.array([float(getattr(base, n) or 0.0) for n in names])
    u0 = np.clip((start - lo) / np.maximum(hi - lo, 1e-12), 0.1, 0.9)  # off the bounds: finite steps see both sides
    before = residuals((np.clip(start, lo, hi) - lo) / np.maximum(hi - lo, 1e-12))
    sol = least_squares(residuals, u0, bounds=(0.0, 1.0), diff_step=0.02, max_nfev=60)
    fitted = engine_at(sol.x)
    return EngineFit(fitted, tuple(p.id for p in points), tuple((math.exp(r) - 1) * 100 for r in before),
                     tuple((math.exp(r) - 1) * 100 for r in sol.fun), calls[0])
