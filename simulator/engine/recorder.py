"""What a run records as it goes: per-request times, per-step records, inter-token gaps.

Owns compact append-only storage (numpy arrays per request, per-step rows flushed to numpy
blocks, weighted inter-token-latency samples). Does not summarise or write files (results/).
"""
from __future__ import annotations

from array import array

import numpy as np

PENDING, FINISHED, FAILED = 0, 1, 2
FLUSH_ROWS = 8192
STEP_COLUMNS = (
    "replica", "start_s", "duration_s", "num_prefill_tokens", "num_decode", "decode_context_sum",
    "num_logits", "num_running",
    "kv_blocks_used", "kv_blocks_total", "bound", "flops", "bytes", "compute_s", "memory_s",
    "comm_s", "overhead_s", "source", "decode_kv_read_sum", "evict_s", "preemptions_total",
)


class RunRecorder:
    def __init__(self, arrival_s: np.ndarray, prompt_tokens: np.ndarray, output_tokens: np.ndarray):
        n = len(arrival_s)
        self.arrival_s = np.array(arrival_s, dtype=np.float64)  # copied: closed loop rewrites it
        self.prompt_tokens = prompt_tokens
        self.output_tokens = output_tokens
        self.first_token_s = np.full(n, np.nan)
        self.finish_s = np.full(n, np.nan)
        self.num_preemptions = np.zeros(n, dtype=np.int64)
        self.replica = np.full(n, -1, dtype=np.int64)
        self.status = np.zeros(n, dtype=np.int8)
        self.fail_reason: dict[int, str] = {}
        self.preemptions_total = 0  # running count, recorded with every step (its time)
        self.itl_s = array("d")
        self.itl_count = array("q")
        self._rows: list[tuple] = []  # recent steps, flushed to numpy blocks every FLUSH_ROWS
        self._blocks: list[np.ndarray] = []
        self.on_finish = None  # optional callback(req, time_s) for closed-loop workloads

    def first_token(self, req: int, time_s: float) -> None:
        self.first_token_s[req] = time_s

    def finish(self, req: int, time_s: float) -> None:
        self.finish_s[req] = time_s
        self.status[req] = FINISHED
        if self.on_finish is not None:
            self.on_finish(req, time_s)

    def fail(self, req: int, time_s: float, reason: str) -> None:
        self.finish_s[req] = time_s
        self.status[req] = FAILED
        self.fail_reason[req] = reason
        if self.on_finish is not None:
            self.on_finish(req, time_s)

    def preempt(self, req: int) -> None:
        self.num_preemptions[req] += 1
        self.preemptions_total += 1

    def itl(self, gap_s: float, count: int) -> None:
        """`count` tokens each arrived `gap_s` after their sequence's previous token."""
        self.itl_s.append(gap_s)
        self.itl_count.append(count)

    def step(self, values: tuple) -> None:
        """One engine step; `values` in STEP_COLUMNS order (numbers)."""
        rows = self._rows
        rows.append(values)
        if len(rows) >= FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._blocks.append(np.array(self._rows, dtype=np.float64))
            self._rows = []

    def step_arrays(self) -> dict[str, np.ndarray]:
        """Per-step columns (float64) in the order steps were recorded."""
        self._flush()
        table = np.concatenate(self._blocks) if self._blocks else np.zeros((0, len(STEP_COLUMNS)))
        if len(self._blocks) > 1:
            self._blocks = [table]
        return {name: table[:, i] for i, name in enumerate(STEP_COLUMNS)}
