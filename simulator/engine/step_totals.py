"""Running totals over a run's engine steps, folded block by block as the run goes.

Owns the step reductions every summary figure needs (counts, column sums and maxima, time-weighted
sums, per-replica busy time, time by bound, decode-only sums, energy of the steps), so a run of any
length summarises in constant memory: the recorder folds each block of step rows in here and may
then drop it. Integer-valued columns sum in int64 (exact); float columns sum per block with numpy's
pairwise sum and across blocks in float64, so a total can differ from one np.sum over the whole
column in the last bits only. Does not define figures (results/metrics.py) or price steps (cost/).
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

INT_COLUMNS = ("replica", "num_prefill_tokens", "num_decode", "decode_context_sum", "num_logits", "num_running",
               "kv_blocks_used", "kv_blocks_total", "bound", "source", "decode_kv_read_sum", "preemptions_total")


class StepTotals:
    """Reductions over step columns (dicts of equal-length arrays, recorder.STEP_COLUMNS names).

    `power_w`: optional block -> per-GPU watts per step (accounting.energy.step_power_w bound to a
    device and power model); with it, `busy_gpu_j` sums watts x duration (J per GPU, all replicas).
    """

    def __init__(self, power_w: Callable[[Mapping[str, np.ndarray]], np.ndarray] | None = None):
        self.power_w = power_w
        self.num_steps = 0
        self.sums: dict[str, float | int] = {}
        self.maxima: dict[str, float] = {}
        self.busy_s = 0.0  # sum of step durations
        self.weighted: dict[str, float] = {}  # column -> sum(column x duration)
        self.usage_dur = 0.0  # sum(kv usage x duration), usage = used / max(total, 1)
        self.max_usage = 0.0
        self.max_batch = 0  # num_decode + (prefill tokens > 0)
        self.end_s = 0.0  # latest step end
        self.steps_by_bound = np.zeros(3, dtype=np.int64)
        self.time_by_bound = np.zeros(3)
        self.decode_only = {"flops": 0.0, "bytes": 0.0}  # steps without prefill tokens
        self.replica_busy_s = np.zeros(0)
        self.busy_gpu_j = 0.0
        self.num_measured_power = 0

    @classmethod
    def of(cls, steps: Mapping[str, np.ndarray], power_w=None) -> "StepTotals":
        """Totals of a whole step table at once (tests, measured tables, small runs)."""
        t = cls(power_w)
        t.add(steps)
        return t

    def add(self, block: Mapping[str, np.ndarray]) -> None:
        """Fold one block of step rows."""
        dur = np.asarray(block["duration_s"], dtype=np.float64)
        n = len(dur)
        if n == 0:
            return
        self.num_steps += n
        for name, col in block.items():
            col = np.asarray(col)
            if name in INT_COLUMNS:
                s = int(col.astype(np.int64).sum())
            else:
                s = float(col.sum())
            self.sums[name] = self.sums.get(name, 0) + s
            m = float(col.max())
            self.maxima[name] = m if name not in self.maxima else max(self.maxima[name], m)
        self.busy_s += float(dur.sum())
        for name in ("num_running", "num_decode"):
            if name in block:
                self.weighted[name] = self.weighted.get(name, 0.0) + float(np.dot(block[name], dur))
        if "kv_blocks_used" in block:
            usage = np.asarray(block["kv_blocks_used"]) / np.maximum(block["kv_blocks_total"], 1)
            self.usage_dur += float(np.dot(usage, dur))
            self.max_usage = max(self.max_usage, float(usage.max()))
        prefill = np.asarray(block.get("num_prefill_tokens", np.zeros(n)))
        if "num_decode" in block:
            self.max_batch = max(self.max_batch, int((np.asarray(block["num_decode"]) + (prefill > 0)).max()))
        if "start_s" in block:
            self.end_s = max(self.end_s, float(np.max(np.asarray(block["start_s"]) + dur)))
        if "bound" in block:
            bound = np.asarray(block["bound"]).astype(np.int64)
            self.steps_by_bound += np.bincount(bound, minlength=3)[:3]
            self.time_by_bound += np.bincount(bound, weights=dur, minlength=3)[:3]
        decode = prefill == 0
        for name in ("flops", "bytes"):
            if name in block:
                self.decode_only[name] += float(np.asarray(block[name])[decode].sum())
        if "replica" in block:
            busy = np.bincount(np.asarray(block["replica"]).astype(np.int64), weights=dur)
            if len(busy) > len(self.replica_busy_s):
                busy[:len(self.replica_busy_s)] += self.replica_busy_s
                self.replica_busy_s = busy
            else:
                self.replica_busy_s[:len(busy)] += busy
        if self.power_w is not None:
            watts = self.power_w(block)
            self.busy_gpu_j += float(np.dot(watts, dur))
            measured = block.get("power_w")
            if measured is not None:
                self.num_measured_power += int(np.isfinite(measured).sum())

    def sum(self, name: str) -> float | int:
        """Sum of a column over all steps (0 for a column never recorded)."""
        return self.sums.get(name, 0)

    def max(self, name: str) -> float:
        return self.maxima.get(name, 0.0)

    def has(self, name: str) -> bool:
        return name in self.sums
