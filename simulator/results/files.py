"""Result files: summary.json, the per-request table, the per-step table and the Chrome/Perfetto
step trace, written to one output directory.

Owns the on-disk formats that reports/ and users read; the summary itself is summary.py's.
Nothing lost, nothing mixed: every file is written under a temporary name in its own directory
and moved into place with os.replace (a failed write leaves the previous file, never a truncated
one), and a run's files are written together into a fresh sibling directory that replaces the
output directory as a unit, so a reused directory never holds files of two runs. All files of a
run carry the same `run_id` (summary.json's top-level key; trace.json's otherData; parquet
schema metadata). The step table streams into the staged directory while the run goes
(OutputStage), so no run keeps its steps in memory to write them. The tables' columns and formats
are tables.py's.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from simulator.errors import ServesimError
from simulator.results.summary import summary_json
from simulator.results.tables import (
    OUT_FORMATS,
    StepTableWriter,
    resolve_out_format,
    write_chrome_trace,
    write_requests_table,
    write_steps_table,
)
from simulator.run import RunResult

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


# ---- one run's directory ----

class OutputStage:
    """A run's files staged in a fresh sibling directory of `out_dir` from before the run starts:
    `steps_sink` streams the step table into it as the run goes (pass it to simulate's
    step_sinks); `commit` writes the rest and swaps the directory in as a unit; `abort` removes it.
    out_format: "csv", "parquet" or "auto" (tables.resolve_out_format)."""

    def __init__(self, out_dir: str | Path, *, num_requests: int, trace: bool = False, out_format: str = "auto",
                 run_id: str | None = None):
        if out_format not in OUT_FORMATS:
            raise ServesimError(f"out_format={out_format!r} is invalid; allowed: {', '.join(OUT_FORMATS)}")
        self.out_format = resolve_out_format(out_format, num_requests)
        if self.out_format == "parquet":
            require_parquet()
        self.out_dir = check_out_dir(Path(out_dir))
        self.trace, self.run_id = trace, run_id or new_run_id()
        parent = self.out_dir.absolute().parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.dir = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.absolute().name}.", suffix=".tmp", dir=parent))
        except OSError as exc:
            raise ServesimError(f"--out {out_dir}: cannot write in {parent} ({exc.strerror or exc}); allowed: a "
                                "directory in a writable location") from None
        self.steps_sink = StepTableWriter(self.dir / f"steps.{self.out_format}", self.out_format, self.run_id)
        self._streamed = False

    def sinks(self) -> tuple:
        """The step sinks to pass to simulate (the step table streams into the stage)."""
        self._streamed = True
        return (self.steps_sink,)

    def commit(self, result: RunResult, summary: dict) -> list[Path]:
        """Write summary, requests table and trace, then swap the stage in for out_dir."""
        try:
            names = ["summary.json"]
            (self.dir / "summary.json").write_text(summary_json({**summary, "run_id": self.run_id}) + "\n")
            rec, fmt = result.recorder, self.out_format
            write_requests_table(rec, self.dir / f"requests.{fmt}", fmt, self.run_id)
            if not self._streamed:  # steps come from the recorder (a run that kept them all)
                self.steps_sink.table.close()
                if not rec.steps_kept:
                    raise ServesimError(f"the run has {rec.num_steps} steps, more than the recorder keeps: stream "
                                        "them with simulate(..., step_sinks=OutputStage.sinks())")
                write_steps_table(rec, self.dir / f"steps.{fmt}", fmt, self.run_id)
            else:
                self.steps_sink.close()
            names += [f"requests.{fmt}", f"steps.{fmt}"]
            if self.trace:
                names.append("trace.json")
                write_chrome_trace(rec, self.dir / "trace.json", self.run_id)
            for name in names:
                os.chmod(self.dir / name, 0o666 & ~_umask())
            os.chmod(self.dir, 0o777 & ~_umask())  # mkdtemp makes it 0700
            _swap_in(self.dir, self.out_dir)
        except BaseException:
            self.abort()
            raise
        return [self.out_dir / name for name in names]

    def abort(self) -> None:
        self.steps_sink.table.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def write_outputs(result: RunResult, summary: dict, out_dir: Path, *, trace: bool, out_format: str = "csv",
                  run_id: str | None = None) -> list[Path]:
    """Write a finished run's files into a fresh sibling of `out_dir`, then swap it in as a unit
    (the steps from the recorder: a run that kept them all; stream longer runs with OutputStage).
    Returns the paths as they are under `out_dir`."""
    stage = OutputStage(out_dir, num_requests=len(result.recorder.status), trace=trace, out_format=out_format,
                        run_id=run_id)
    return stage.commit(result, summary)


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
