"""Calibration: profile tables -> per-kernel time predictors with a measured error.

Owns the fitted roofline per kernel op, t = t0 + max(FLOPs/F_eff, bytes/B_eff) (formulas.md,
"Roofline step time": eta_c*F_peak = F_eff, eta_m*BW = B_eff, t0 = fixed per-call overhead),
fitted by minimising the mean absolute log error over the op's rows; the interpolation grids
(profiles/interp.py) used inside the measured shapes; the saved-fit JSON; and the error report
(median / p90 absolute percentage error per op and overall). Knows nothing of the simulator.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from profiles.interp import Grid, build_grids, grid_key
from profiles.table import ProfileRow, read_json
from profiles.work import kernel_work

FIT_FORMAT = "servesim-fit/1"
SOURCE_PROFILE, SOURCE_FIT, SOURCE_TRANSFER, SOURCE_ROOFLINE = "profile", "fit", "transfer", "roofline"
TRUST = {SOURCE_PROFILE: 3, SOURCE_FIT: 2, SOURCE_TRANSFER: 1, SOURCE_ROOFLINE: 0}  # least trusted wins


@dataclass(frozen=True, slots=True, kw_only=True)
class OpFit:
    """Fitted roofline of one kernel op: achieved FLOP/s, bytes/s and per-call overhead."""

    flops_per_s: float
    bytes_per_s: float
    overhead_s: float
    num_rows: int
    train_median_ape: float

    def predict_s(self, flops: float, nbytes: float) -> float:
        return self.overhead_s + max(flops / self.flops_per_s, nbytes / self.bytes_per_s)


def _work_arrays(rows: list[ProfileRow]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    work = np.array([kernel_work(r.op, r.shape, r.dtype) for r in rows], dtype=float)
    return work[:, 0], work[:, 1], np.array([r.time_s for r in rows])


def _search(f, b, t, log_fe, log_be, t0s) -> tuple[float, tuple[float, float, float]]:
    """Best (loss, (F_eff, B_eff, t0)) over the grid; loss = mean |log(pred / measured)|."""
    fe, be = np.exp(log_fe)[:, None, None], np.exp(log_be)[None, :, None]
    best = (math.inf, (0.0, 0.0, 0.0))
    tf, tb = f / fe, b / be  # (F, 1, N) and (1, B, N)
    roof = np.maximum(tf, tb)
    log_t = np.log(t)
    for t0 in t0s:
        if t0 == 0 and not np.all(roof > 0):  # ops with no device work (overheads) need t0 > 0
            continue
        loss = np.abs(np.log(roof + t0) - log_t).mean(axis=-1)
        i, j = np.unravel_index(int(np.argmin(loss)), loss.shape)
        if loss[i, j] < best[0]:
            best = (float(loss[i, j]), (float(fe[i, 0, 0]), float(be[0, j, 0]), float(t0)))
    return best


def fit_op(rows: list[ProfileRow]) -> OpFit:
    """Grid search, then local refinement, over (F_eff, B_eff, t0) in log space."""
    f, b, t = _work_arrays(rows)
    log_fe = math.log(max(float(np.max(f / t)), 1.0)) + np.linspace(-1.0, 3.0, 41) * math.log(10)
    log_be = math.log(max(float(np.max(b / t)), 1.0)) + np.linspace(-1.0, 3.0, 41) * math.log(10)
    t0s = np.concatenate([[0.0], float(np.min(t)) * np.logspace(-4.0, 0.0, 33)])
    _, best = _search(f, b, t, log_fe, log_be, t0s)
    for _ in range(2):
        step_f, step_b = (log_fe[1] - log_fe[0]) * 2, (log_be[1] - log_be[0]) * 2
        log_fe = math.log(best[0]) + np.linspace(-step_f, step_f, 21)
        log_be = math.log(best[1]) + np.linspace(-step_b, step_b, 21)
        if best[2] > 0:
            t0s = np.concatenate([[0.0], best[2] * np.exp(np.linspace(-0.6, 0.6, 21))])
        _, best = _search(f, b, t, log_fe, log_be, t0s)
    fit = OpFit(flops_per_s=best[0], bytes_per_s=best[1], overhead_s=best[2], num_rows=len(rows),
                train_median_ape=0.0)
    pred = np.array([fit.predict_s(x, y) for x, y in zip(f, b)])
    ape = float(np.median(np.abs(pred / t - 1.0)) * 100)
    return OpFit(flops_per_s=fit.flops_per_s, bytes_per_s=fit.bytes_per_s, overhead_s=fit.overhead_s,
                 num_rows=len(rows), train_median_ape=ape)


class FittedProfile:
    """Per-op predictors: interpolate inside a measured grid, else the op's fitted roofline."""

    def __init__(self, ops: dict[str, OpFit], grids: dict[tuple, Grid], provenance: dict):
        self.ops, self.grids, self.provenance = ops, grids, provenance
        self.device = provenance.get("device")
        self.dtype = provenance.get("dtype")

    @classmethod
    def from_rows(cls, rows: list[ProfileRow], provenance: dict) -> "FittedProfile":
        by_op: dict[str, list[ProfileRow]] = {}
        for r in rows:
            by_op.setdefault(r.op, []).append(r)
        ops = {op: fit_op(rs) for op, rs in sorted(by_op.items())}
        return cls(ops, build_grids(rows), provenance)

    def predict(self, op: str, shape: dict[str, int], dtype: str) -> tuple[float, str] | None:
        """(seconds, source) for one call, or None when this op was never measured."""
        grid = self.grids.get(grid_key(op, shape, dtype))
        if grid is not None:
            t = grid.interpolate(shape)
            if t is not None:
                return t, SOURCE_PROFILE
        fit = self.ops.get(op)
        if fit is None:
            return None
        flops, nbytes = kernel_work(op, shape, dtype)
        return fit.predict_s(flops, nbytes), SOURCE_FIT

    def predict_clamped(self, op: str, shape: dict[str, int], dtype: str) -> tuple[float, str] | None:
        """predict() with the shape's axes clipped into the op's measured grid: flat beyond its
        ends (source "fit" when clipped). For the engine overheads, whose fitted roofline is a
        bare constant that would ignore the measured trend."""
        grid = self.grids.get(grid_key(op, shape, dtype))
        if grid is None:
            return self.predict(op, shape, dtype)
        clipped = dict(shape)
        for axis, vals in zip(grid.axes, grid.values):
            clipped[axis] = int(min(max(shape.get(axis, 0), vals[0]), vals[-1]))
        t = grid.interpolate(clipped)
        if t is None:
            return self.predict(op, shape, dtype)
        return t, SOURCE_PROFILE if clipped == dict(shape) else SOURCE_FIT

    def to_json(self, *, include_grids: bool = True) -> dict:
        return {
            "format": FIT_FORMAT,
            "provenance": self.provenance,
            "ops": {op: {"flops_per_s": f.flops_per_s, "bytes_per_s": f.bytes_per_s,
                         "overhead_s": f.overhead_s, "num_rows": f.num_rows,
                         "train_median_ape_pct": f.train_median_ape} for op, f in self.ops.items()},
            "grids": [g.to_json() for g in self.grids.values()] if include_grids else [],
        }

    @classmethod
    def from_json(cls, raw: dict, *, origin: str = "fit") -> "FittedProfile":
        if raw.get("format") != FIT_FORMAT:
            raise ValueError(f"{origin}: not a servesim fit (format {raw.get('format')!r}, expected {FIT_FORMAT!r})")
        ops = {op: OpFit(flops_per_s=v["flops_per_s"], bytes_per_s=v["bytes_per_s"], overhead_s=v["overhead_s"],
                         num_rows=v["num_rows"], train_median_ape=v["train_median_ape_pct"])
               for op, v in raw["ops"].items()}
        grids = [Grid.from_json(g) for g in raw.get("grids", [])]
        return cls(ops, {g.key: g for g in grids}, raw.get("provenance", {}))


def save_fit(fit: FittedProfile, path: Path, *, include_grids: bool = True) -> None:
    path.write_text(json.dumps(fit.to_json(include_grids=include_grids), indent=1, sort_keys=True) + "\n")


def load_fit(path: str | Path) -> FittedProfile:
    return FittedProfile.from_json(read_json(path), origin=str(path))


def evaluate(fit: FittedProfile, rows: list[ProfileRow]) -> dict:
    """Median and p90 absolute percentage error per op and overall on `rows`, with sources."""
    per_op: dict[str, list[float]] = {}
    sources: dict[str, dict[str, int]] = {}
    for r in rows:
        got = fit.predict(r.op, r.shape, r.dtype)
        src = SOURCE_ROOFLINE if got is None else got[1]
        sources.setdefault(r.op, {}).setdefault(src, 0)
        sources[r.op][src] += 1
        if got is not None:
            per_op.setdefault(r.op, []).append(abs(got[0] / r.time_s - 1.0) * 100)
    report = {op: _stats(v) | {"sources": sources[op]} for op, v in sorted(per_op.items())}
    missing = sorted(set(sources) - set(per_op))
    everything = [e for v in per_op.values() for e in v]
    return {"per_op": report, "overall": _stats(everything), "unpredicted_ops": missing}


def _stats(errors: list[float]) -> dict:
    a = np.asarray(errors, dtype=float)
    if not len(a):
        return {"num_rows": 0, "median_ape_pct": math.nan, "p90_ape_pct": math.nan}
    return {"num_rows": int(len(a)), "median_ape_pct": float(np.median(a)),
            "p90_ape_pct": float(np.percentile(a, 90))}
