"""Fitting an engine's own cost to declared measurements (the method behind profiles/data/engines/*.toml).

Owns the fit: given an engine file, the names of the EngineSpec numbers to fit with their allowed
ranges, and the published points declared for calibration (split "calibration", engine = this
engine), find the numbers that minimise the squared log error of the simulated metrics
(scipy.optimize.least_squares, bounded trust region; each residual = ln(predicted / measured), so
throughput, latency and energy points weigh alike). Every other point of the engine stays held
out: its error is reported apart by fidelity.py. The result names the points it used, their error
before and after, and the engine file to write (`servesim fit --engine-fit`). fit_box is the bounded least-squares step
the bench calibration (bench.py) shares.
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
    if not points:
        raise ServesimError(f"engine {base.name!r}: no calibration points (split 'calibration', engine {base.name!r})")
    names = list(bounds)
    known = {f.name for f in dataclasses.fields(EngineSpec)}
    if unknown := [n for n in names if n not in known]:
        raise ServesimError(f"engine fields {unknown} unknown; fields: {sorted(known)}")
    if len(points) < len(names):
        raise ServesimError(f"{len(points)} calibration points cannot determine {len(names)} numbers {names}")
    measured = np.array([p.measured for p in points])

    def engine_at(x) -> EngineSpec:
        return dataclasses.replace(base, **{n: float(v) for n, v in zip(names, x)})

    def residuals(x) -> np.ndarray:
        pred = predict(points, engine_at(x))
        if not np.all(np.isfinite(pred) & (pred > 0)):
            raise ServesimError(f"engine fit: a calibration point gave no prediction at {engine_at(x).describe()}")
        return np.log(pred / measured)

    start = [float(getattr(base, n) or 0.0) for n in names]
    x, before, after, calls = fit_box(residuals, [bounds[n] for n in names], start)
    return EngineFit(engine_at(x), tuple(p.id for p in points), tuple((math.exp(r) - 1) * 100 for r in before),
                     tuple((math.exp(r) - 1) * 100 for r in after), calls)


def fit_box(residuals, bounds: list[tuple[float, float]], start: list[float], *, max_evaluations: int = 20):
    """Bounded least squares on log-error residuals: (x, residuals at start, residuals at x,
    evaluations). Each number is searched in [0, 1] scaled to its range, starting off the bounds
    (finite-difference steps of 2% of the range see both sides); scipy's trust region reflective."""
    from scipy.optimize import least_squares

    lo = np.array([b[0] for b in bounds], dtype=float)
    hi = np.array([b[1] for b in bounds], dtype=float)
    span = np.maximum(hi - lo, 1e-12)
    calls = [0]

    def scaled(u):
        calls[0] += 1
        return residuals(lo + np.asarray(u) * (hi - lo))

    start = np.clip(np.asarray(start, dtype=float), lo, hi)
    before = scaled((start - lo) / span)
    u0 = np.clip((start - lo) / span, 0.1, 0.9)
    sol = least_squares(scaled, u0, bounds=(0.0, 1.0), diff_step=0.04, max_nfev=max_evaluations, xtol=1e-8,
                        ftol=1e-10)
    return lo + sol.x * (hi - lo), before, sol.fun, calls[0]
