"""Reading saved results: a run's output directory, a summary/compare/plan JSON, or plain dicts.

Owns the on-disk side of reports: which files make a run (summary.json, requests.csv|parquet,
steps.csv|parquet, as `servesim simulate --out DIR` writes them) and how a run's tables become
the bounded digests the charts draw (digest.py; tables.py reads them a chunk at a time, only the
columns needed), so memory does not grow with the run.
Knows nothing of the simulator (imports none of it) and draws nothing.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reports.digest import (
    REQUEST_COLUMNS,
    STEP_COLUMNS,
    RequestDigest,
    StepDigest,
    digest_requests,
    digest_steps,
    run_edges,
)
from reports.tables import find_table, iter_chunks

REPORT_KINDS = ("run", "compare", "plan")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunData:
    """One run: its summary, and its per-request / per-step tables when they exist: in memory
    (`requests`, `steps`: dicts of numpy columns) or as files read a chunk at a time
    (`requests_path`, `steps_path`: CSV or Parquet)."""

    name: str
    summary: dict
    requests: dict[str, np.ndarray] | None = None
    steps: dict[str, np.ndarray] | None = None
    requests_path: Path | None = None
    steps_path: Path | None = None

    @property
    def has_requests(self) -> bool:
        return self.requests is not None or self.requests_path is not None

    @property
    def has_steps(self) -> bool:
        return self.steps is not None or self.steps_path is not None


def _chunks(table: dict | None, path: Path | None, wanted) -> Iterator[dict]:
    if table is not None:
        yield {k: v for k, v in table.items() if k in wanted}
    elif path is not None:
        yield from iter_chunks(path, wanted)


def _t_end(run: RunData) -> float:
    """The run's last moment: summary duration (last finish), else the tables' own maxima."""
    end = float(run.summary.get("metrics", {}).get("duration") or 0.0)
    if end > 0:
        return end
    for chunk in _chunks(run.requests, run.requests_path, ("finish_s",)):
        fin = np.asarray(chunk["finish_s"], dtype=np.float64)
        if np.isfinite(fin).any():
            end = max(end, float(np.nanmax(fin)))
    for chunk in _chunks(run.steps, run.steps_path, ("start_s", "duration_s")):
        if len(chunk["start_s"]):
            end = max(end, float(np.max(np.asarray(chunk["start_s"]) + np.asarray(chunk["duration_s"]))))
    return end


def run_edges_of(run: RunData) -> np.ndarray:
    m = run.summary.get("metrics", {})
    events = m.get("submitted") or m.get("completed")
    if events is None and run.requests is not None:
        events = len(run.requests["status"])
    return run_edges(run.summary, int(events or 0), _t_end(run))


def request_digest(run: RunData, edges: np.ndarray | None = None) -> RequestDigest | None:
    if not run.has_requests:
        return None
    edges = run_edges_of(run) if edges is None else edges
    return digest_requests(_chunks(run.requests, run.requests_path, REQUEST_COLUMNS), edges)


def step_digest(run: RunData, edges: np.ndarray | None = None) -> StepDigest | None:
    if not run.has_steps:
        return None
    edges = run_edges_of(run) if edges is None else edges
    digest = digest_steps(_chunks(run.steps, run.steps_path, STEP_COLUMNS), edges)
    return digest if digest.num_rows else None


RESULT_KINDS_HINT = "expected a servesim result: summary.json, compare.json or plan.json (a JSON object)"


def read_result_json(path: Path) -> dict:
    """A result file's JSON object; non-UTF-8 bytes, malformed JSON or anything but an object are a
    ValueError naming the file and what was expected."""
    try:
        doc = json.loads(Path(path).read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}); {RESULT_KINDS_HINT}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); {RESULT_KINDS_HINT}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: a JSON {type(doc).__name__}, not a servesim result; {RESULT_KINDS_HINT}")
    return doc


def _checked_kind(doc: dict, path: Path) -> str:
    try:
        return report_kind(doc)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def load_run_dir(path: Path, name: str | None = None) -> RunData:
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"{path} has no summary.json (expected a `servesim simulate --out` directory)")
    summary = read_result_json(summary_path)
    if _checked_kind(summary, summary_path) != "run":
        raise ValueError(f"{summary_path}: a {summary.get('kind')} result, not a run summary")
    return RunData(name=name or path.name, summary=summary, requests_path=find_table(path, "requests"),
                   steps_path=find_table(path, "steps"))


def report_kind(doc: dict) -> str:
    kind = doc.get("kind", "run")
    if kind not in REPORT_KINDS:
        raise ValueError(f"result kind {kind!r} is not one of {REPORT_KINDS}")
    if kind == "run" and "metrics" not in doc:
        raise ValueError("a run summary needs a 'metrics' section; " + RESULT_KINDS_HINT)
    return kind


def load_source(source, index: int = 0) -> RunData | dict:
    """A run directory, a JSON file or a dict -> RunData (runs) or the dict (compare / plan)."""
    if isinstance(source, RunData):
        return source
    if isinstance(source, dict):
        doc, name, parent = source, f"run {index + 1}", None
    else:
        path = Path(source)
        if path.is_dir():
            return load_run_dir(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such result: {path}")
        doc, name, parent = read_result_json(path), path.parent.name or path.stem, path.parent
    if _checked_kind(doc, Path(source) if parent is not None else name) != "run":
        return doc if parent is None else {**doc, "_source_dir": str(parent)}  # where its run_dirs are
    if parent is not None and (parent / "summary.json").is_file() and Path(source).name == "summary.json":
        return load_run_dir(parent)
    return RunData(name=name, summary=doc)


def section_of(summary: dict, dotted: str) -> dict:
    """summary["a"]["b"] for "a.b"; {} where any level is missing (sections are optional)."""
    node = summary
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return {}
    return node if isinstance(node, dict) else {}
