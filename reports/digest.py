"""What a run's charts need from its per-request and per-step tables, in memory bounded by the chart
size, not by the run: latency CDF points, per-time-bin sums/means/maxima and a fixed-size step sample.

Owns the reduction. Tables arrive as chunks (dicts of numpy columns: one chunk for arrays already
in memory, a stream of them from tables.py for files), so a 10M-request run is read once, a chunk
at a time, and never held whole. The time bins are fixed before the first chunk (from the run's
duration), so every bin is an exact sum. Latency CDFs keep every value up to EXACT_MAX values per
latency (each point drawn is then a real sample at its exact ECDF height, series.ecdf_points);
past that they switch to a log-spaced histogram of LOG_BINS_PER_DECADE bins per decade, and each of
the <= ~1000 points drawn sits within one bin (0.6%) of the true quantile. Draws nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reports.series import MAX_CDF_POINTS, MAX_SCATTER_POINTS, binned_max, binned_sum, ecdf_points, time_edges

LATENCY_KEYS = ("ttft_ms", "tpot_ms", "e2el_ms")
EXACT_MAX = 1_000_000
LOG_BINS_PER_DECADE = 400
LOG_RANGE_MS = (1e-4, 1e10)  # 0.1 microsecond .. 115 days; values outside are clamped into the end bins
BOUND_CODES = {"compute": 0, "memory": 1, "overhead": 2}
STEP_SUMS = ("duration_s", "num_logits", "num_prefill_tokens", "compute_s", "memory_s", "comm_s", "overhead_s",
             "flops", "bytes")
REQUEST_COLUMNS = ("status", "finish_s", "num_preemptions") + LATENCY_KEYS
STEP_COLUMNS = ("start_s", "duration_s", "num_logits", "num_prefill_tokens", "num_decode", "num_running",
                "kv_blocks_used", "kv_blocks_total", "bound", "flops", "bytes", "compute_s", "memory_s",
                "comm_s", "overhead_s", "preemptions_total")


class LatencySketch:
    """Values of one latency: exact up to EXACT_MAX of them, then a log-spaced histogram."""

    def __init__(self, exact_max: int = EXACT_MAX):
        self.exact_max, self.parts, self.count, self.hist = exact_max, [], 0, None
        lo, hi = np.log10(LOG_RANGE_MS[0]), np.log10(LOG_RANGE_MS[1])
        self.edges = np.logspace(lo, hi, int(round((hi - lo) * LOG_BINS_PER_DECADE)) + 1)
        self.lo = self.hi = None

    def add(self, values: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if not len(v):
            return
        self.lo = float(v.min()) if self.lo is None else min(self.lo, float(v.min()))
        self.hi = float(v.max()) if self.hi is None else max(self.hi, float(v.max()))
        self.count += len(v)
        if self.hist is None and self.count <= self.exact_max:
            self.parts.append(v)
            return
        if self.hist is None:
            self.hist = np.zeros(len(self.edges) - 1, dtype=np.int64)
            for p in self.parts:
                self._bin(p)
            self.parts = []
        self._bin(v)

    def _bin(self, v: np.ndarray) -> None:
        idx = np.clip(np.searchsorted(self.edges, v, side="right") - 1, 0, len(self.hist) - 1)
        self.hist += np.bincount(idx, minlength=len(self.hist))

    @property
    def exact(self) -> bool:
        return self.hist is None

    def points(self, max_points: int = MAX_CDF_POINTS) -> tuple[np.ndarray, np.ndarray]:
        """(latency values, ECDF heights in (0, 1]) with at most ~max_points points."""
        if self.hist is None:
            return ecdf_points(np.concatenate(self.parts) if self.parts else np.zeros(0), max_points)
        body = np.linspace(0, 1, max_points * 3 // 4)
        q = np.unique(np.concatenate([body, np.linspace(0.99, 1, max_points // 4)]))
        q = q[q > 0]
        cum = np.cumsum(self.hist) / self.count
        idx = np.searchsorted(cum, q - 1e-12, side="left").clip(0, len(self.hist) - 1)
        prev = np.where(idx > 0, cum[idx - 1], 0.0)
        frac = np.where(cum[idx] > prev, (q - prev) / np.where(cum[idx] > prev, cum[idx] - prev, 1), 1.0)
        lo, hi = np.log10(self.edges[idx]), np.log10(self.edges[idx + 1])
        x = np.clip(10 ** (lo + frac.clip(0, 1) * (hi - lo)), self.lo, self.hi)
        x[-1] = self.hi
        return x, q


@dataclass
class RequestDigest:
    """Latency CDFs of finished requests, finished requests and preemptions per time bin."""

    edges: np.ndarray
    sketches: dict = field(default_factory=lambda: {k: LatencySketch() for k in LATENCY_KEYS})
    finished: np.ndarray | None = None
    preemptions: np.ndarray | None = None
    num_rows: int = 0

    def __post_init__(self):
        self.finished = np.zeros(len(self.edges) - 1)
        self.preemptions = np.zeros(len(self.edges) - 1)

    def add(self, chunk: dict) -> None:
        n = len(chunk["status"])
        self.num_rows += n
        ok = np.asarray(chunk["status"]).astype(str) == "finished"
        for k, sketch in self.sketches.items():
            if k in chunk:
                sketch.add(np.asarray(chunk[k], dtype=np.float64)[ok])
        fin = np.asarray(chunk["finish_s"], dtype=np.float64)
        self.finished += binned_sum(fin[ok], np.ones(int(ok.sum())), self.edges)
        if "num_preemptions" in chunk:
            has = np.isfinite(fin)
            self.preemptions += binned_sum(fin[has], np.asarray(chunk["num_preemptions"], dtype=np.float64)[has],
                                        self.edges)

    def cdf(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        return self.sketches[key].points()

    @property
    def exact(self) -> bool:
        return all(s.exact for s in self.sketches.values())


@dataclass
class StepDigest:
    """Per-bin sums, time-weighted means and maxima of the step records, a fixed-size step sample
    for the roofline, and whole-run sums."""

    edges: np.ndarray
    num_rows: int = 0
    sums: dict = field(default_factory=dict)
    weighted: dict = field(default_factory=dict)  # sum of x * duration per bin
    maxima: dict = field(default_factory=dict)
    totals: dict = field(default_factory=dict)
    preemptions_total: np.ndarray | None = None  # cumulative count at each bin's end (NaN: no step)
    sample: dict = field(default_factory=dict)
    _keys: np.ndarray | None = None
    _rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def add(self, chunk: dict) -> None:
        c = {k: (_bound_codes(v) if k == "bound" else np.asarray(v, dtype=np.float64)) for k, v in chunk.items()}
        n = len(c["start_s"])
        if not n:
            return
        self.num_rows += n
        t, d, end = c["start_s"], c["duration_s"], c["start_s"] + c["duration_s"]
        nb = len(self.edges) - 1
        for k in STEP_SUMS:
            if k in c:
                by = end if k in ("num_logits", "num_prefill_tokens") else t  # tokens count when the step ends
                self.sums[k] = self.sums.get(k, np.zeros(nb)) + binned_sum(by, c[k], self.edges)
                self.totals[k] = self.totals.get(k, 0.0) + float(c[k].sum())
        usage = c["kv_blocks_used"] / np.maximum(c["kv_blocks_total"], 1) * 100
        for k, x in (("num_running", c["num_running"]), ("num_decode", c["num_decode"]), ("kv_usage_pct", usage)):
            self.weighted[k] = self.weighted.get(k, np.zeros(nb)) + binned_sum(t, x * d, self.edges)
            self.maxima[k] = np.fmax(self.maxima.get(k, np.full(nb, np.nan)), binned_max(t, x, self.edges))
        if "preemptions_total" in c:
            self.preemptions_total = np.fmax(self.preemptions_total if self.preemptions_total is not None
                                             else np.full(nb, np.nan), binned_max(end, c["preemptions_total"],
                                                                                   self.edges))
        self._sample(c)

    def _sample(self, c: dict) -> None:
        """Keep the MAX_SCATTER_POINTS steps with the smallest seeded random keys (a uniform sample)."""
        ok = (c["bytes"] > 0) & (c["duration_s"] > 0)
        keys = self._rng.random(len(ok))[ok]
        cols = {k: c[k][ok] for k in ("flops", "bytes", "duration_s", "bound")}
        if self._keys is not None:
            keys = np.concatenate([self._keys, keys])
            cols = {k: np.concatenate([self.sample[k], v]) for k, v in cols.items()}
        self.totals["sampleable"] = self.totals.get("sampleable", 0) + int(ok.sum())
        if len(keys) > MAX_SCATTER_POINTS:
            keep = np.argpartition(keys, MAX_SCATTER_POINTS)[:MAX_SCATTER_POINTS]
            keys, cols = keys[keep], {k: v[keep] for k, v in cols.items()}
        self._keys, self.sample = keys, cols

    def mean(self, key: str) -> np.ndarray:
        w = self.sums.get("duration_s", np.zeros(len(self.edges) - 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(w > 0, self.weighted[key] / np.where(w > 0, w, 1), np.nan)


def run_edges(summary: dict, num_events: int | None = None, t_end: float | None = None) -> np.ndarray:
    """Time bins over [0, run end]: the end is the summary's duration (last finish) unless given."""
    m = summary.get("metrics", {})
    end = t_end if t_end is not None else float(m.get("duration") or 0.0)
    events = num_events if num_events is not None else int(m.get("submitted") or m.get("completed") or 0)
    return time_edges(end, events)


def digest_requests(chunks, edges: np.ndarray) -> RequestDigest:
    out = RequestDigest(edges)
    for chunk in chunks:
        out.add(chunk)
    return out


def digest_steps(chunks, edges: np.ndarray) -> StepDigest:
    out = StepDigest(edges)
    for chunk in chunks:
        out.add(chunk)
    return out


def _bound_codes(v) -> np.ndarray:
    """steps' `bound`: names ("compute", "memory", "overhead") or the older float codes 0/1/2."""
    a = np.asarray(v)
    if a.dtype.kind in "fiu":
        return a.astype(np.float64)
    names, inverse = np.unique(a.astype(str), return_inverse=True)
    return np.array([BOUND_CODES.get(x, np.nan) for x in names], dtype=np.float64)[inverse.ravel()]
