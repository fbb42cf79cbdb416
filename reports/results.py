"""Reading saved results: a run's output directory, a summary/compare/plan JSON, or plain dicts.

Owns the on-disk side of reports: which files make a run (summary.json, requests.csv,
steps.csv, as `servesim simulate --out DIR` writes them) and how they become numpy columns.
Knows nothing of the simulator (imports none of it) and draws nothing.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REQUEST_FLOAT_COLUMNS = ("arrival_s", "first_token_s", "finish_s", "ttft_ms", "e2el_ms", "tpot_ms")
REQUEST_INT_COLUMNS = ("request_id", "replica", "prompt_tokens", "output_tokens", "num_preemptions")
REPORT_KINDS = ("run", "compare", "plan")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunData:
    """One run: its summary, and its per-request / per-step columns when the files exist."""

    name: str
    summary: dict
    requests: dict[str, np.ndarray] | None = None
    steps: dict[str, np.ndarray] | None = None


def read_requests_csv(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    cols = list(zip(*rows)) if rows else [()] * len(header)
    out: dict[str, np.ndarray] = {}
    for name, col in zip(header, cols):
        if name in REQUEST_FLOAT_COLUMNS:
            out[name] = np.array([float(v) if v else np.nan for v in col], dtype=np.float64)
        elif name in REQUEST_INT_COLUMNS:
            out[name] = np.array(col, dtype=np.int64)
        else:
            out[name] = np.array(col, dtype=object)
    return out


def read_steps_csv(path: Path) -> dict[str, np.ndarray]:
    """All step columns are numbers (steps.csv is written from float arrays)."""
    with open(path) as fh:
        header = fh.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    if data.shape[0] == 0:
        data = np.zeros((0, len(header)))
    return {name: data[:, i] for i, name in enumerate(header)}


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
    req, steps = path / "requests.csv", path / "steps.csv"
    return RunData(
        name=name or path.name,
        summary=summary,
        requests=read_requests_csv(req) if req.is_file() else None,
        steps=read_steps_csv(steps) if steps.is_file() else None,
    )


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
        return doc
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
