"""What a run records as it goes: per-request times, per-step records, inter-token gaps.

Owns compact storage whose size does not grow with the run's steps or tokens: per-request
figures in typed numpy arrays (float64 times, int32 lengths and counts, 35 bytes a request);
per-step rows gathered FLUSH_ROWS at a time into a numpy block that is folded into running
totals (step_totals.StepTotals), handed to any step sinks (a streamed steps table), kept whole
only while the run has at most `keep_steps` steps, and kept for its first `head_steps` rows (the
capped Chrome trace); inter-token gaps in a GapLog (exact, then a DDSketch). Does not summarise
or write files (results/).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from simulator.engine.gap_log import GapLog
from simulator.engine.step_totals import StepTotals

PENDING, FINISHED, FAILED = 0, 1, 2
FLUSH_ROWS = 8192
DEFAULT_KEEP_STEPS = 1 << 18  # whole step table kept in memory up to this many steps (44 MB)
DEFAULT_HEAD_STEPS = 200_000  # first steps kept for the Chrome trace
STEP_COLUMNS = (
    "replica", "start_s", "duration_s", "num_prefill_tokens", "num_decode", "decode_context_sum",
    "num_logits", "num_running",
    "kv_blocks_used", "kv_blocks_total", "bound", "flops", "bytes", "compute_s", "memory_s",
    "comm_s", "overhead_s", "source", "decode_kv_read_sum", "evict_s", "preemptions_total",
)
StepSink = Callable[[dict], None]


class StepsNotKept(RuntimeError):
    """The run had more steps than the recorder keeps whole (use totals, the head or a sink)."""


class RunRecorder:
    def __init__(self, arrival_s: np.ndarray, prompt_tokens: np.ndarray, output_tokens: np.ndarray, *,
                 copy_arrivals: bool = True, totals: StepTotals | None = None, sinks: tuple[StepSink, ...] = (),
                 keep_steps: int | None = None, head_steps: int | None = None, itl_exact_limit: int | None = None):
        """copy_arrivals: copy arrival_s (a closed loop rewrites it); totals: the running step totals
        (e.g. with a power model); sinks: called with every block of step rows, in order; keep_steps,
        head_steps, itl_exact_limit: default DEFAULT_KEEP_STEPS, DEFAULT_HEAD_STEPS, gap_log's
        DEFAULT_EXACT_LIMIT (read when the recorder is made)."""
        n = len(arrival_s)
        self.arrival_s = (np.array if copy_arrivals else np.asarray)(arrival_s, dtype=np.float64)
        self.prompt_tokens = np.asarray(prompt_tokens, dtype=np.int32)
        self.output_tokens = np.asarray(output_tokens, dtype=np.int32)
        self.first_token_s = np.full(n, np.nan)
        self.finish_s = np.full(n, np.nan)
        self.num_preemptions = np.zeros(n, dtype=np.int32)
        self.replica = np.full(n, -1, dtype=np.int32)
        self.status = np.zeros(n, dtype=np.int8)
        self.num_done = 0  # finished or failed so far
        self.fail_reason: dict[int, str] = {}
        self.preemptions_total = 0  # running count, recorded with every step (its time)
        self.gaps = GapLog(itl_exact_limit)
        self.itl = self.gaps.add  # itl(gap_s, count): `count` tokens each arrived `gap_s` after the previous
        self.totals = totals if totals is not None else StepTotals()
        self.sinks = tuple(sinks)
        self.keep_steps = DEFAULT_KEEP_STEPS if keep_steps is None else keep_steps
        self.head_steps = DEFAULT_HEAD_STEPS if head_steps is None else head_steps
        self.num_steps = 0
        self._rows: list[tuple] = []  # recent steps, flushed every FLUSH_ROWS
        self._blocks: list[np.ndarray] | None = []  # all steps while num_steps <= keep_steps
        self._head: list[np.ndarray] = []  # the first head_steps steps
        self._head_rows = 0
        self.on_finish = None  # optional callback(req, time_s) for closed-loop workloads

    def first_token(self, req: int, time_s: float) -> None:
        self.first_token_s[req] = time_s

    def finish(self, req: int, time_s: float) -> None:
        self.finish_s[req] = time_s
        self.status[req] = FINISHED
        self.num_done += 1
        if self.on_finish is not None:
            self.on_finish(req, time_s)

    def fail(self, req: int, time_s: float, reason: str) -> None:
        self.finish_s[req] = time_s
        self.status[req] = FAILED
        self.fail_reason[req] = reason
        self.num_done += 1
        if self.on_finish is not None:
            self.on_finish(req, time_s)

    def preempt(self, req: int) -> None:
        self.num_preemptions[req] += 1
        self.preemptions_total += 1

    @property
    def itl_s(self):
        """Inter-token gaps (s) not folded into the sketch: all of them while gaps.exact."""
        return self.gaps.gap_s

    @property
    def itl_count(self):
        return self.gaps.count

    def step(self, values: tuple) -> None:
        """One engine step; `values` in STEP_COLUMNS order (numbers)."""
        rows = self._rows
        rows.append(values)
        if len(rows) >= FLUSH_ROWS:
            self._flush()
            self.gaps.maybe_fold()

    def _flush(self) -> None:
        if not self._rows:
            return
        table = np.array(self._rows, dtype=np.float64)
        self._rows = []
        self.num_steps += len(table)
        block = _columns(table)
        self.totals.add(block)
        for sink in self.sinks:
            sink(block)
        if self._head_rows < self.head_steps:
            take = table[:self.head_steps - self._head_rows]
            self._head.append(take)
            self._head_rows += len(take)
        if self._blocks is not None:
            if self.num_steps <= self.keep_steps:
                self._blocks.append(table)
            else:
                self._blocks = None

    def close(self) -> None:
        """End of run: flush the last rows (sinks see every step) and fold leftover gaps if sketching."""
        self._flush()
        if not self.gaps.exact:
            self.gaps.fold()

    @property
    def steps_kept(self) -> bool:
        """The whole step table is in memory (step_arrays() works)."""
        self._flush()
        return self._blocks is not None

    def step_arrays(self) -> dict[str, np.ndarray]:
        """Per-step columns (float64) in the order steps were recorded. Raises StepsNotKept for a
        run longer than keep_steps steps (its totals, head and sinks have the steps)."""
        self._flush()
        if self._blocks is None:
            raise StepsNotKept(f"the run has {self.num_steps} steps, more than the {self.keep_steps} kept whole")
        table = np.concatenate(self._blocks) if self._blocks else np.zeros((0, len(STEP_COLUMNS)))
        if len(self._blocks) > 1:
            self._blocks = [table]
        return _columns(table)

    def head_arrays(self) -> dict[str, np.ndarray]:
        """The first min(num_steps, head_steps) steps' columns."""
        self._flush()
        table = np.concatenate(self._head) if self._head else np.zeros((0, len(STEP_COLUMNS)))
        if len(self._head) > 1:
            self._head = [table]
        return _columns(table)


def _columns(table: np.ndarray) -> dict[str, np.ndarray]:
    return {name: table[:, i] for i, name in enumerate(STEP_COLUMNS)}
