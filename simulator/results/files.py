"""Result files: summary.json, the per-request table, the per-step table and the Chrome/Perfetto
step trace, written to one output directory.

Owns the on-disk formats that reports/ and users read; the summary itself is summary.py's.
Nothing lost, nothing mixed: every file is written under a temporary name in its own directory
and moved into place with os.replace (a failed write leaves the previous file, never a truncated
one), and a run's files are written together into a fresh sibling directory that replaces the
output directory as a unit, so a reused directory never holds files of two runs. All files of a
run carry the same `run_id` (summary.json's top-level key; trace.json's otherData; parquet
schema metadata).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import numpy as np

from simulator.cost import BOUND_NAMES
from simulator.engine import FAILED, FINISHED
from simulator.errors import ServesimError
from simulator.results.summary import summary_json
from simulator.run import RunResult

REQUEST_COLUMNS = ("request_id", "replica", "status", "arrival_s", "prompt_tokens", "output_tokens",
                   "first_token_s", "finish_s", "ttft_ms", "e2el_ms", "tpot_ms", "num_preemptions",
                   "fail_reason")
OUT_FORMATS = ("csv", "parquet")
PARQUET_HINT = "pip install 'servesim[parquet]'"
# every name write_outputs can produce: what a swap may remove from a reused directory
SERVESIM_FILES = frozenset({"summary.json", "requests.csv", "steps.csv", "trace.json",
                            "requests.parquet", "steps.parquet"})


def new_run_id() -> str:
    return uuid.uuid4().hex


# ---- destination checks (before a run starts) ----

def _nearest_existing(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_out_dir(path: str | Path, flag: str = "--out") -> Path:
    """DIR is a directory or can be created as one, and its parent is writable (the run's files are
    staged in a sibling directory); a one-line ServesimError naming the path otherwise."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ServesimError(f"{flag} {p}: exists and is not a directory")
    anchor = _nearest_existing(p.absolute().parent)
    if not anchor.is_dir():
        raise ServesimError(f"{flag} {p}: {anchor} is not a directory")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise ServesimError(f"{flag} {p}: directory {anchor} is not writable")
    return p


def check_out_file(path: str | Path, flag: str = "--report") -> Path:
    """FILE's directory exists and is writable, and FILE is not a directory."""
    p = Path(path)
    if p.is_dir():
        raise ServesimError(f"{flag} {p}: is a directory")
    parent = p.absolute().parent
    if not parent.is_dir():
        raise ServesimError(f"{flag} {p}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ServesimError(f"{flag} {p}: directory {parent} is not writable")
    return p


def require_parquet() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ServesimError(f"--out-format parquet needs the pyarrow package: {PARQUET_HINT}") from None


# ---- atomic single files ----

@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; on success it replaces `path` (os.replace), on failure
    it is removed and `path` is left as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.absolute().parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- tables ----

def requests_frame(result: RunResult):
    import pandas as pd

    rec = result.recorder
    status_name = {0: "pending", FINISHED: "finished", FAILED: "failed"}
    ttft = (rec.first_token_s - rec.arrival_s) * 1e3
    e2el = (rec.finish_s - rec.arrival_s) * 1e3
    out = np.asarray(rec.output_tokens)
    n = len(rec.status)
    tpot = np.where(out > 1, (e2el - ttft) / np.maximum(out - 1, 1), np.nan)
    cols = {
        "request_id": np.arange(n, dtype=np.int64),
        "replica": np.asarray(rec.replica, dtype=np.int64),
        "status": [status_name[int(s)] for s in rec.status],
        "arrival_s": np.asarray(rec.arrival_s, dtype=np.float64),
        "prompt_tokens": np.asarray(rec.prompt_tokens, dtype=np.int64),
        "output_tokens": out.astype(np.int64),
        "first_token_s": np.asarray(rec.first_token_s, dtype=np.float64),
        "finish_s": np.asarray(rec.finish_s, dtype=np.float64),
        "ttft_ms": np.asarray(ttft, dtype=np.float64),
        "e2el_ms": np.asarray(e2el, dtype=np.float64),
        "tpot_ms": np.asarray(tpot, dtype=np.float64),
        "num_preemptions": np.asarray(rec.num_preemptions, dtype=np.int64),
        "fail_reason": [rec.fail_reason.get(i, "") for i in range(n)],
    }
    return pd.DataFrame(cols, columns=list(REQUEST_COLUMNS))


def steps_frame(result: RunResult):
    import pandas as pd

    steps = result.recorder.step_arrays()
    return pd.DataFrame({k: np.asarray(v) for k, v in steps.items()}, columns=list(steps.keys()))


def _write_csv(df, path: Path) -> None:
    df.to_csv(path, index=False, na_rep="nan", lineterminator="\r\n")  # csv.writer's dialect, as before


def _write_parquet(df, path: Path, run_id: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"servesim_run_id"] = run_id.encode()
    pq.write_table(table.replace_schema_metadata(meta), path)


def write_requests_csv(result: RunResult, path: Path) -> None:
    with atomic_path(path) as tmp:
        _write_csv(requests_frame(result), tmp)


def write_chrome_trace(result: RunResult, path: Path, run_id: str | None = None) -> None:
    """One complete event per engine step per replica (Perfetto / chrome://tracing)."""
    steps = result.recorder.step_arrays()
    events = []
    for i in range(len(steps["start_s"])):
        events.append({
            "name": f"step p{int(steps['num_prefill_tokens'][i])} d{int(steps['num_decode'][i])}",
            "ph": "X", "pid": 0, "tid": int(steps["replica"][i]),
            "ts": steps["start_s"][i] * 1e6, "dur": steps["duration_s"][i] * 1e6,
            "args": {"bound": BOUND_NAMES[int(steps["bound"][i])],
                     "kv_blocks_used": int(steps["kv_blocks_used"][i]),
                     "num_running": int(steps["num_running"][i])},
        })
    doc = {"traceEvents": events, "displayTimeUnit": "ms"}
    if run_id:
        doc["otherData"] = {"run_id": run_id}
    atomic_write_text(path, json.dumps(doc))


# ---- one run's directory ----

def write_outputs(result: RunResult, summary: dict, out_dir: Path, *, trace: bool, out_format: str = "csv",
                  run_id: str | None = None) -> list[Path]:
    """Write the run's files into a fresh sibling of `out_dir`, then swap it in as a unit.
    Returns the paths as they are under `out_dir`."""
    if out_format not in OUT_FORMATS:
        raise ServesimError(f"out_format={out_format!r} is invalid; allowed: {', '.join(OUT_FORMATS)}")
    if out_format == "parquet":
        require_parquet()
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    run_id = run_id or new_run_id()
    parent = out_dir.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.absolute().name}.", suffix=".tmp", dir=parent))
    try:
        names = _write_run_files(result, summary, stage, trace=trace, out_format=out_format, run_id=run_id)
        os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes it 0700
        _swap_in(stage, out_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return [out_dir / name for name in names]


def _write_run_files(result, summary: dict, d: Path, *, trace: bool, out_format: str, run_id: str) -> list[str]:
    names = ["summary.json"]
    (d / "summary.json").write_text(summary_json({**summary, "run_id": run_id}) + "\n")
    req, steps = requests_frame(result), steps_frame(result)
    if out_format == "csv":
        names += ["requests.csv", "steps.csv"]
        _write_csv(req, d / "requests.csv")
        _write_csv(steps, d / "steps.csv")
    else:
        names += ["requests.parquet", "steps.parquet"]
        _write_parquet(req, d / "requests.parquet", run_id)
        _write_parquet(steps, d / "steps.parquet", run_id)
    if trace:
        names.append("trace.json")
        write_chrome_trace(result, d / "trace.json", run_id)
    for name in names:
        os.chmod(d / name, 0o666 & ~_umask())
    return names


def _swap_in(stage: Path, out_dir: Path) -> None:
    """Put the complete `stage` directory in place of `out_dir`. A directory that holds only
    servesim files (or nothing) is replaced whole; one that also holds other files keeps them:
    the new files replace the old one by one (os.replace), then old servesim files the new run
    did not write are removed."""
    if not out_dir.exists():
        os.replace(stage, out_dir)
        return
    old = {p.name for p in out_dir.iterdir()}
    if old <= SERVESIM_FILES and not out_dir.is_symlink():
        backup = Path(tempfile.mkdtemp(prefix=f".{out_dir.absolute().name}.old.", suffix=".tmp",
                                       dir=out_dir.absolute().parent))
        backup.rmdir()
        os.replace(out_dir, backup)
        try:
            os.replace(stage, out_dir)
        except BaseException:
            os.replace(backup, out_dir)
            raise
        shutil.rmtree(backup, ignore_errors=True)
        return
    new = {p.name for p in stage.iterdir()}
    for name in sorted(new):
        os.replace(stage / name, out_dir / name)
    for name in sorted((old & SERVESIM_FILES) - new):
        (out_dir / name).unlink(missing_ok=True)
    stage.rmdir()


# ---- one-document commands (plan, compare) ----

def check_destinations(out: str | Path | None = None, report: str | Path | None = None) -> None:
    """--out DIR and --report FILE can be written; checked before any work starts."""
    if out:
        check_out_dir(out)
    if report:
        check_out_file(report)


def write_document(text: str, name: str, *, out: str | Path | None = None, report: str | Path | None = None,
                   render=None) -> list[Path]:
    """out/name (text) and the report (render([doc], path)), each written under a temporary name and
    moved into place whole."""
    written = []
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        written.append(atomic_write_text(Path(out) / name, text + "\n"))
    if report:
        with atomic_path(report) as tmp:
            render([json.loads(text)], tmp)
        written.append(Path(report))
    return written
