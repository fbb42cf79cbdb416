"""Downsampling for plots: empirical CDF points, time bins and deterministic subsets.

Owns how many points a figure gets, so a 100k-request run stays a light page. Every point
drawn is exact (a real sample at its exact ECDF height, or an exact per-bin sum / time-weighted
mean); only their number is reduced. Tables never use these (they show the summary's numbers).
"""
from __future__ import annotations

import numpy as np

MAX_CDF_POINTS = 600
MAX_TIME_BINS = 300
MIN_TIME_BINS = 20
EVENTS_PER_BIN = 10
MAX_SCATTER_POINTS = 1500


def ecdf_points(values: np.ndarray, max_points: int = MAX_CDF_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(sorted sample values, ECDF heights (i+1)/n) with at most ~max_points points.

    Above max_points: ranks evenly spaced over the whole range plus the top 1% of ranks evenly
    spaced again (tails matter for p99), always keeping the minimum and maximum.
    """
    v = np.sort(np.asarray(values, dtype=np.float64)[np.isfinite(values)])
    n = len(v)
    if n == 0:
        return v, v
    if n <= max_points:
        idx = np.arange(n)
    else:
        body = np.linspace(0, n - 1, max_points * 3 // 4)
        tail = np.linspace(int(n * 0.99), n - 1, max_points // 4)
        idx = np.unique(np.concatenate([body, tail]).round().astype(np.int64))
    return v[idx], (idx + 1) / n


def time_edges(t_end_s: float, num_events: int, max_bins: int = MAX_TIME_BINS,
               events_per_bin: int = EVENTS_PER_BIN) -> np.ndarray:
    """Bin edges over [0, t_end_s]: about `events_per_bin` events (e.g. requests) per bin so
    rates are not mostly noise, at least MIN_TIME_BINS bins and at most max_bins."""
    num_bins = int(min(max_bins, max(MIN_TIME_BINS, num_events // events_per_bin)))
    return np.linspace(0.0, max(t_end_s, 1e-9), num_bins + 1)


def _bin_index(t: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(edges) - 2)


def binned_sum(t: np.ndarray, weights: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Sum of `weights` of the events at times `t` in each bin."""
    return np.bincount(_bin_index(t, edges), weights=weights, minlength=len(edges) - 1)


def binned_rate(t: np.ndarray, weights: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Per-bin sum divided by the bin width: events (or tokens) per second."""
    return binned_sum(t, weights, edges) / np.diff(edges)


def binned_mean(t: np.ndarray, x: np.ndarray, duration_s: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Time-weighted mean of x over the steps starting in each bin (NaN where no step starts)."""
    w = binned_sum(t, duration_s, edges)
    s = binned_sum(t, x * duration_s, edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(w > 0, s / np.where(w > 0, w, 1), np.nan)


def binned_max(t: np.ndarray, x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    out = np.full(len(edges) - 1, np.nan)
    if len(t):
        idx = _bin_index(t, edges)
        out_max = np.full(len(edges) - 1, -np.inf)
        np.maximum.at(out_max, idx, x)
        out = np.where(np.isfinite(out_max), out_max, np.nan)
    return out


def bin_centers(edges: np.ndarray) -> np.ndarray:
    return (edges[:-1] + edges[1:]) / 2


def subset_indices(n: int, max_points: int = MAX_SCATTER_POINTS, seed: int = 0) -> np.ndarray:
    """All indices, or a sorted uniform random subset of max_points (seeded: same page each time)."""
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_points, replace=False))


def step_points(t: np.ndarray, y: np.ndarray, max_points: int = MAX_CDF_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """A monotone step series (e.g. a cumulative count) cut to at most ~max_points exact points."""
    n = len(t)
    if n <= max_points:
        return t, y
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
    return t[idx], y[idx]
