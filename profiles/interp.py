"""Interpolation inside a measured grid: one Grid per (op, dtype, fixed shape columns).

Owns the multilinear interpolation of median times over an op's axes (num_tokens for GEMMs and
elementwise ops; (chunk, context) for prefill attention; (batch, context) for decode attention).
Duplicate measurements of one point are merged by their median. A query outside the measured
range, or whose surrounding corners were not all measured, returns None (the caller falls back
to the fitted roofline and reports the shape as extrapolated).
"""
from __future__ import annotations

import itertools

import numpy as np

from profiles.table import SHAPE_COLUMNS, ProfileRow
from profiles.work import axes_of


def grid_key(op: str, shape: dict[str, int], dtype: str) -> tuple:
    axes = axes_of(op)
    return (op, dtype) + tuple(shape.get(c, 0) for c in SHAPE_COLUMNS if c not in axes)


class Grid:
    def __init__(self, key: tuple, axes: tuple[str, ...], values: list[np.ndarray], times_s: np.ndarray):
        self.key, self.axes, self.values, self.times_s = key, axes, values, times_s

    @classmethod
    def from_points(cls, key: tuple, axes: tuple[str, ...], points: dict[tuple, list[float]]) -> "Grid":
        values = [np.array(sorted({p[i] for p in points}), dtype=float) for i in range(len(axes))]
        times = np.full([len(v) for v in values], np.nan)
        for p, ts in points.items():
            idx = tuple(int(np.searchsorted(values[i], p[i])) for i in range(len(axes)))
            times[idx] = float(np.median(ts))
        return cls(key, axes, values, times)

    def interpolate(self, shape: dict[str, int]) -> float | None:
        lo_idx, weights = [], []
        for axis, vals in zip(self.axes, self.values):
            x = float(shape.get(axis, 0))
            if x < vals[0] or x > vals[-1]:
                return None
            j = int(np.searchsorted(vals, x, side="right")) - 1
            j = min(j, len(vals) - 2) if len(vals) > 1 else 0
            if len(vals) == 1:
                lo_idx.append(0)
                weights.append(0.0)
                continue
            lo_idx.append(j)
            weights.append((x - vals[j]) / (vals[j + 1] - vals[j]))
        total = 0.0
        for corner in itertools.product((0, 1), repeat=len(self.axes)):
            w = 1.0
            idx = []
            for c, j, frac in zip(corner, lo_idx, weights):
                w *= frac if c else 1.0 - frac
                idx.append(j + c if c else j)
            if w == 0.0:
                continue
            t = self.times_s[tuple(idx)]
            if np.isnan(t):
                return None
            total += w * t
        return total

    def to_json(self) -> dict:
        return {"key": list(self.key), "axes": list(self.axes), "values": [v.tolist() for v in self.values],
                "times_s": np.where(np.isnan(self.times_s), -1.0, self.times_s).tolist()}

    @classmethod
    def from_json(cls, raw: dict) -> "Grid":
        times = np.array(raw["times_s"], dtype=float)
        times[times < 0] = np.nan
        return cls(tuple(raw["key"]), tuple(raw["axes"]), [np.array(v, dtype=float) for v in raw["values"]], times)


def build_grids(rows: list[ProfileRow]) -> dict[tuple, Grid]:
    groups: dict[tuple, dict[tuple, list[float]]] = {}
    for r in rows:
        axes = axes_of(r.op)
        key = grid_key(r.op, r.shape, r.dtype)
        point = tuple(r.shape.get(a, 0) for a in axes)
        groups.setdefault(key, {}).setdefault(point, []).append(r.time_s)
    return {key: Grid.from_points(key, axes_of(key[0]), pts) for key, pts in groups.items()}
