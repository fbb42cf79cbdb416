"""Test-time scaling sweeps behind `servesim tts` (model x samples x length budget -> cost per
question): the sweep's points, the user's accuracy table and the cost frontier.

The per-question figures of one run are results/tts.py's. Accuracy is never predicted:
it comes only from a user's table (CSV: model,samples,budget,accuracy).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import ServesimError


@dataclass(frozen=True, slots=True)
class TtsPoint:
    model: str
    samples: int
    budget: int
    eflops_per_question: float
    usd_per_question: float
    joules_per_question: float
    p50_time_to_last_sample_ms: float
    accuracy: float | None


def load_accuracy(path: str | Path) -> dict[tuple[str, int, int], float]:
    """User accuracy table: CSV with header model,samples,budget,accuracy (accuracy in [0, 1])."""
    path = Path(path)
    if not path.is_file():
        raise ServesimError(f"accuracy table {str(path)!r} does not exist")
    out = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"model", "samples", "budget", "accuracy"} - set(reader.fieldnames or ())
        if missing:
            raise ServesimError(f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                                "required: model,samples,budget,accuracy")
        for line, row in enumerate(reader, start=2):
            try:
                key = (row["model"].strip().lower(), int(row["samples"]), int(row["budget"]))
                acc = float(row["accuracy"])
            except ValueError:
                raise ServesimError(f"{path}, line {line}: samples and budget must be integers, "
                                    "accuracy a number") from None
            if not 0 <= acc <= 1:
                raise ServesimError(f"{path}, line {line}: accuracy={acc} must be in [0, 1]")
            out[key] = acc
    return out


def frontier(points: list[TtsPoint]) -> list[int]:
    """Indices on the cost frontier: no other point is cheaper (eFLOPs per question) and at
    least as good (higher accuracy when known, else shorter time to the last sample)."""
    def better(a: TtsPoint, b: TtsPoint) -> bool:
        if a.accuracy is not None and b.accuracy is not None:
            return a.accuracy >= b.accuracy
        return a.p50_time_to_last_sample_ms <= b.p50_time_to_last_sample_ms

    keep = []
    for i, p in enumerate(points):
        dominated = any(q.eflops_per_question < p.eflops_per_question and better(q, p)
                        for j, q in enumerate(points) if j != i)
        if not dominated:
            keep.append(i)
    return sorted(keep, key=lambda i: points[i].eflops_per_question)
