"""Inter-token gaps of a run: exact while small, a mergeable quantile sketch once large.

Owns ITL storage. Each record is (gap_s, count): `count` tokens arrived `gap_s` after their
sequence's previous token (a decode step adds one record per distinct previous-token time). Up to
`exact_limit` records are kept as they are, so small runs get vLLM's exact percentiles; past it,
the records are folded into a DDSketch (the `ddsketch` library, Masson, Rim & Lee, VLDB 2019) with
relative accuracy RELATIVE_ACCURACY, and every later record follows in blocks: memory stays
constant however many gaps a run emits. Count, mean and standard deviation stay exact (Chan et
al.'s pairwise merge of count, mean and M2 per block); quantiles from the sketch are within
RELATIVE_ACCURACY of the exact value (DDSketch's guarantee for the quantile at the same rank).
"""
from __future__ import annotations

import math
from array import array

import numpy as np

RELATIVE_ACCURACY = 0.01
DEFAULT_EXACT_LIMIT = 1 << 20  # records kept exactly (16 MB) before the sketch takes over


class GapLog:
    RELATIVE_ACCURACY = RELATIVE_ACCURACY

    def __init__(self, exact_limit: int | None = None):
        self.exact_limit = DEFAULT_EXACT_LIMIT if exact_limit is None else exact_limit
        self.gap_s = array("d")  # the records not yet folded (all of them while exact)
        self.count = array("q")
        self.sketch = None  # ddsketch.DDSketch once the exact limit is passed
        self._mapping = None
        self.total = 0  # folded tokens
        self.mean = 0.0  # of the folded gaps, weighted by count
        self.m2 = 0.0  # sum of count x (gap - mean)^2
        self.min = math.inf
        self.max = -math.inf

    @property
    def exact(self) -> bool:
        return self.sketch is None

    def add(self, gap_s: float, count: int) -> None:
        self.gap_s.append(gap_s)
        self.count.append(count)

    def maybe_fold(self) -> None:
        """Fold the buffered records into the sketch once they pass the exact limit (the engine
        calls this once per step, not per record)."""
        if len(self.gap_s) > self.exact_limit:
            self.fold()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(gap_s, count) of the buffered records (all of them while exact)."""
        g = np.frombuffer(self.gap_s, dtype=np.float64) if len(self.gap_s) else np.zeros(0)
        c = np.frombuffer(self.count, dtype=np.int64) if len(self.count) else np.zeros(0, np.int64)
        return g, c

    def fold(self) -> None:
        """Move the buffered records into the sketch and the exact moments."""
        from ddsketch import DDSketch
        from ddsketch.mapping import LogarithmicMapping

        if self.sketch is None:
            self._mapping = LogarithmicMapping(RELATIVE_ACCURACY)
            self.sketch = DDSketch(RELATIVE_ACCURACY)
        g, c = self.arrays()
        if len(g):
            self._fold_moments(g, c)
            self._fold_sketch(g, c)
        self.gap_s, self.count = array("d"), array("q")

    def _fold_moments(self, g: np.ndarray, c: np.ndarray) -> None:
        n = int(c.sum())
        if n == 0:
            return
        w = c.astype(np.float64)
        mean = float(np.dot(g, w) / n)
        m2 = float(np.dot((g - mean) ** 2, w))
        total = self.total + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.total * n / total
        self.mean += delta * n / total
        self.total = total
        self.min = min(self.min, float(g[c > 0].min())) if (c > 0).any() else self.min
        self.max = max(self.max, float(g[c > 0].max())) if (c > 0).any() else self.max

    def _fold_sketch(self, g: np.ndarray, c: np.ndarray) -> None:
        """One sketch insertion per occupied bucket: keys computed for the whole block at once
        (the mapping's key = ceil(log_gamma(value)); a value on a bucket edge may land in the
        neighbouring bucket, whose representative is equally within the relative accuracy)."""
        mapping, sketch = self._mapping, self.sketch
        tiny = g <= mapping.min_possible
        if tiny.any():
            sketch.add(0.0, float(c[tiny].sum()))
        g, c = g[~tiny], c[~tiny]
        if not len(g):
            return
        keys = np.ceil(np.log2(g) / math.log2(mapping.gamma)).astype(np.int64)
        uniq, inverse = np.unique(keys, return_inverse=True)
        weights = np.bincount(inverse, weights=c.astype(np.float64))
        for k, w in zip(uniq.tolist(), weights.tolist()):
            if w > 0:
                sketch.add(mapping.value(k), w)

    def quantiles_s(self, qs) -> list[float]:
        """Sketch quantiles (seconds) at percentiles `qs` (0-100); call after fold()."""
        return [float(self.sketch.get_quantile_value(q / 100.0)) for q in qs]

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.total) if self.total else float("nan")
