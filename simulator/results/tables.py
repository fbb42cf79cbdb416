"""The per-request and per-step tables of a run, written in chunks (bounded memory at any size).

Owns the tables' columns and their on-disk forms (CSV, Parquet): `StepTableWriter` is a recorder
step sink that appends each block of steps as the run goes; `write_requests_table` writes the
request rows REQUEST_CHUNK at a time after the run; `write_chrome_trace` writes the run's first
steps (capped: Perfetto cannot open a multi-GB trace). Codes are written as names: `bound` is
compute/memory/overhead, `source` is the cost model's provenance (cost.SOURCE_NAMES), `replica`
an integer. files.py decides where and when these files are written.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from simulator.cost import BOUND_NAMES, SOURCE_NAMES
from simulator.engine import DEFAULT_HEAD_STEPS, FAILED, FINISHED, STEP_COLUMNS

REQUEST_COLUMNS = ("request_id", "replica", "status", "arrival_s", "prompt_tokens", "output_tokens",
                   "first_token_s", "finish_s", "ttft_ms", "e2el_ms", "tpot_ms", "num_preemptions",
                   "fail_reason")
STEP_INT_COLUMNS = frozenset({"replica", "num_prefill_tokens", "num_decode", "decode_context_sum", "num_logits",
                              "num_running", "kv_blocks_used", "kv_blocks_total", "decode_kv_read_sum",
                              "preemptions_total"})
STATUS_NAMES = {0: "pending", FINISHED: "finished", FAILED: "failed"}
REQUEST_CHUNK = 1 << 18  # request rows per written chunk (~40 MB of DataFrame)
PARQUET_ROW_GROUP = 1 << 17  # step rows per Parquet row group
CHROME_TRACE_MAX_STEPS = DEFAULT_HEAD_STEPS  # the Chrome trace holds the run's first this-many steps (the recorder keeps them)
OUT_FORMATS = ("auto", "csv", "parquet")
AUTO_PARQUET_REQUESTS = 100_000  # out_format "auto": parquet above this many requests (pyarrow present)


def resolve_out_format(out_format: str, num_requests: int) -> str:
    """'csv' or 'parquet' for a run of `num_requests`: "auto" picks parquet for large runs when
    pyarrow is installed (CSV of a 10M-request run's steps is tens of GB)."""
    if out_format != "auto":
        return out_format
    if num_requests <= AUTO_PARQUET_REQUESTS:
        return "csv"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return "csv"
    return "parquet"


def step_frame(block: dict):
    """A block of step rows (recorder columns, float64) as a DataFrame with typed, named columns."""
    import pandas as pd

    cols = {}
    for name in STEP_COLUMNS:
        col = np.asarray(block[name])
        if name == "bound":
            col = np.asarray(BOUND_NAMES, dtype=object)[col.astype(np.int64)]
        elif name == "source":
            col = np.asarray(SOURCE_NAMES, dtype=object)[col.astype(np.int64)]
        elif name in STEP_INT_COLUMNS:
            col = col.astype(np.int64)
        cols[name] = col
    return pd.DataFrame(cols, columns=list(STEP_COLUMNS))


def requests_frame(rec, lo: int = 0, hi: int | None = None):
    """Request rows [lo, hi) of a RunRecorder as a DataFrame (REQUEST_COLUMNS)."""
    import pandas as pd

    hi = len(rec.status) if hi is None else hi
    sl = slice(lo, hi)
    arrival, first, finish = rec.arrival_s[sl], rec.first_token_s[sl], rec.finish_s[sl]
    out = rec.output_tokens[sl].astype(np.int64)
    ttft, e2el = (first - arrival) * 1e3, (finish - arrival) * 1e3
    with np.errstate(invalid="ignore"):
        tpot = np.where(out > 1, (e2el - ttft) / np.maximum(out - 1, 1), np.nan)
    reasons = rec.fail_reason
    cols = {
        "request_id": np.arange(lo, hi, dtype=np.int64),
        "replica": rec.replica[sl].astype(np.int64),
        "status": np.asarray([STATUS_NAMES[0], STATUS_NAMES[FINISHED], STATUS_NAMES[FAILED]],
                             dtype=object)[rec.status[sl].astype(np.int64)],
        "arrival_s": arrival, "prompt_tokens": rec.prompt_tokens[sl].astype(np.int64), "output_tokens": out,
        "first_token_s": first, "finish_s": finish, "ttft_ms": ttft, "e2el_ms": e2el, "tpot_ms": tpot,
        "num_preemptions": rec.num_preemptions[sl].astype(np.int64),
        "fail_reason": [reasons.get(i, "") for i in range(lo, hi)] if reasons else [""] * (hi - lo),
    }
    return pd.DataFrame(cols, columns=list(REQUEST_COLUMNS))


class TableWriter:
    """Append DataFrames to one CSV or Parquet file (the schema of the first frame)."""

    def __init__(self, path: Path, out_format: str, run_id: str):
        self.path, self.out_format, self.run_id = Path(path), out_format, run_id
        self.rows = 0
        self._fh = None
        self._pq = None

    def write(self, df) -> None:
        if self.out_format == "csv":
            if self._fh is None:
                self._fh = open(self.path, "w", newline="", encoding="utf-8")
            df.to_csv(self._fh, header=self.rows == 0, index=False, na_rep="nan", lineterminator="\r\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            if self._pq is None:
                meta = dict(table.schema.metadata or {})
                meta[b"servesim_run_id"] = self.run_id.encode()
                self._pq = pq.ParquetWriter(self.path, table.schema.with_metadata(meta))
            self._pq.write_table(table.replace_schema_metadata(self._pq.schema.metadata),
                                 row_group_size=PARQUET_ROW_GROUP)
        self.rows += len(df)

    def close(self, empty_frame=None) -> None:
        """Finish the file; a table that got no rows is written with its header only."""
        if self.rows == 0 and empty_frame is not None and self._fh is None and self._pq is None:
            self.write(empty_frame)
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._pq is not None:
            self._pq.close()
            self._pq = None


class StepTableWriter:
    """A recorder step sink: every block of steps goes to `path` as the run goes; blocks are
    gathered to PARQUET_ROW_GROUP rows for Parquet so row groups are not tiny."""

    def __init__(self, path: Path, out_format: str, run_id: str):
        self.table = TableWriter(path, out_format, run_id)
        self._pending: list[dict] = []
        self._pending_rows = 0

    def __call__(self, block: dict) -> None:
        self._pending.append(block)
        self._pending_rows += len(block["duration_s"])
        if self.table.out_format == "csv" or self._pending_rows >= PARQUET_ROW_GROUP:
            self._drain()

    def _drain(self) -> None:
        if not self._pending:
            return
        block = {k: np.concatenate([b[k] for b in self._pending]) for k in STEP_COLUMNS}
        self._pending, self._pending_rows = [], 0
        self.table.write(step_frame(block))

    def close(self) -> None:
        self._drain()
        self.table.close(step_frame({k: np.zeros(0) for k in STEP_COLUMNS}))

    @property
    def path(self) -> Path:
        return self.table.path


def write_requests_table(rec, path: Path, out_format: str, run_id: str) -> None:
    """All request rows, REQUEST_CHUNK at a time."""
    writer = TableWriter(path, out_format, run_id)
    n = len(rec.status)
    for lo in range(0, n, REQUEST_CHUNK):
        writer.write(requests_frame(rec, lo, min(lo + REQUEST_CHUNK, n)))
    writer.close(requests_frame(rec, 0, 0))


def write_steps_table(rec, path: Path, out_format: str, run_id: str) -> None:
    """The whole step table of a run that kept it (rec.steps_kept) in one go."""
    writer = StepTableWriter(path, out_format, run_id)
    steps = rec.step_arrays()
    for lo in range(0, len(steps["duration_s"]), PARQUET_ROW_GROUP):
        writer({k: v[lo:lo + PARQUET_ROW_GROUP] for k, v in steps.items()})
    writer.close()


def chrome_trace(rec, run_id: str | None = None, max_steps: int | None = None) -> dict:
    """One complete event per engine step per replica (Perfetto / chrome://tracing), for the
    run's first `max_steps` steps (all of them in a shorter run); otherData states the cut."""
    max_steps = CHROME_TRACE_MAX_STEPS if max_steps is None else max_steps
    steps = rec.head_arrays()
    n = min(len(steps["start_s"]), max_steps)
    prefill, decode, replica = (steps[k][:n].astype(np.int64).tolist()
                                for k in ("num_prefill_tokens", "num_decode", "replica"))
    bound, used, running = (steps[k][:n].astype(np.int64).tolist() for k in ("bound", "kv_blocks_used", "num_running"))
    start, dur = (steps["start_s"][:n] * 1e6).tolist(), (steps["duration_s"][:n] * 1e6).tolist()
    events = [{"name": f"step p{prefill[i]} d{decode[i]}", "ph": "X", "pid": 0, "tid": replica[i],
               "ts": start[i], "dur": dur[i],
               "args": {"bound": BOUND_NAMES[bound[i]], "kv_blocks_used": used[i], "num_running": running[i]}}
              for i in range(n)]
    other = {"steps_in_run": rec.num_steps, "steps_in_trace": n}
    if n < rec.num_steps:
        other["cut"] = (f"the run's first {n} of {rec.num_steps} steps (up to t={steps['start_s'][n - 1]:.3f} s); "
                        f"the trace is capped at {max_steps} steps so Perfetto can open it: steps.* has them all")
    if run_id:
        other["run_id"] = run_id
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}


def write_chrome_trace(rec, path: Path, run_id: str | None = None) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(chrome_trace(rec, run_id), fh)
