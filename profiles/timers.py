"""Timing loops: wall clock on CPU, CUDA events on GPU, and the statistics recorded per shape.

Owns warm-up, repeat counts (a fixed minimum, then more while a time budget allows), calling the
kernel with a rotating buffer index so repeats do not re-read a warm cache, and the summary
(median, p10, p90, mean, std in microseconds). Clocks and the CUDA namespace are injected so the
logic is testable without a GPU; torch is never imported here.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True, slots=True, kw_only=True)
class TimingPlan:
    warmup: int = 3
    min_repeats: int = 5
    max_repeats: int = 50
    budget_s: float = 0.5  # stop adding repeats past min_repeats once this much time was spent

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.min_repeats < 1 or self.max_repeats < self.min_repeats:
            raise ValueError(f"need warmup >= 0 and 1 <= min_repeats <= max_repeats, got {self}")
        if self.budget_s <= 0:
            raise ValueError(f"budget_s must be > 0, got {self.budget_s!r}")


QUICK_PLAN = TimingPlan(warmup=2, min_repeats=3, max_repeats=15, budget_s=0.15)
FULL_PLAN = TimingPlan(warmup=5, min_repeats=10, max_repeats=100, budget_s=1.0)


def time_calls_cpu(fn: Callable[[int], object], plan: TimingPlan,
                   clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Seconds per call of fn(i), each call timed on its own with `clock`."""
    for i in range(plan.warmup):
        fn(i)
    times: list[float] = []
    spent = 0.0
    i = plan.warmup
    while len(times) < plan.max_repeats and (len(times) < plan.min_repeats or spent < plan.budget_s):
        t0 = clock()
        fn(i)
        dt = clock() - t0
        times.append(dt)
        spent += dt
        i += 1
    return times


def time_calls_cuda(fn: Callable[[int], object], plan: TimingPlan, cuda) -> list[float]:
    """Seconds per call from CUDA events recorded around each call (`cuda` is torch.cuda).

    The events of one call are read after a synchronize, so host time between calls is not
    counted; the loop stops on the same budget as the CPU timer, summed from event times."""
    for i in range(plan.warmup):
        fn(i)
    cuda.synchronize()
    times: list[float] = []
    spent = 0.0
    i = plan.warmup
    while len(times) < plan.max_repeats and (len(times) < plan.min_repeats or spent < plan.budget_s):
        batch = max(plan.min_repeats - len(times), 1)
        events = []
        for _ in range(batch):
            start, end = cuda.Event(enable_timing=True), cuda.Event(enable_timing=True)
            start.record()
            fn(i)
            end.record()
            events.append((start, end))
            i += 1
        cuda.synchronize()
        for start, end in events:
            dt = start.elapsed_time(end) * 1e-3  # elapsed_time is in milliseconds
            times.append(dt)
            spent += dt
    return times[: plan.max_repeats]


def summarise_times(times_s: list[float]) -> dict[str, float]:
    """The table's time columns (microseconds) from per-call seconds."""
    if not times_s:
        raise ValueError("no timings to summarise")
    us = np.asarray(times_s, dtype=float) * 1e6
    if not np.all(np.isfinite(us)) or np.any(us < 0):
        raise ValueError(f"timings must be finite and >= 0, got {us.tolist()}")
    return {
        "time_median_us": float(np.median(us)),
        "time_p10_us": float(np.percentile(us, 10)),
        "time_p90_us": float(np.percentile(us, 90)),
        "time_mean_us": float(us.mean()),
        "time_std_us": float(us.std()),
    }
