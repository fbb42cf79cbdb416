"""Test-time scaling: per-question results of Best-of-N and length-budgeted runs, and the sweep
behind `servesim tts` (model x samples x length budget -> cost per question).

Owns the question-level view (a question = one prompt and its N samples, rows fanned out
consecutively by RequestArrays.fan_out) and the sweep's frontier. Accuracy is never predicted:
it comes only from a user's table (CSV: model,samples,budget,accuracy).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.errors import ServesimError
from simulator.metrics import weighted_percentiles
from simulator.recorder import FINISHED


def tts_section(result, summary: dict) -> dict | None:
    """Per-question figures; None for plain runs (one sample, no budget)."""
    s = result.scenario
    if s.samples_per_prompt == 1 and not s.output_budget_tokens:
        return None
    rec, n = result.recorder, s.samples_per_prompt
    questions = len(rec.status) // n
    status = rec.status.reshape(questions, n)
    done = np.all(status == FINISHED, axis=1)
    last_ms = (rec.finish_s.reshape(questions, n).max(axis=1) - rec.arrival_s[::n]) * 1e3
    first_ms = (rec.first_token_s[::n] - rec.arrival_s[::n]) * 1e3
    out = {"samples_per_prompt": n, "output_budget_tokens": s.output_budget_tokens, "questions": questions,
           "questions_completed": int(done.sum())}
    if done.any():
        ok = last_ms[done]
        p50, p90, p99 = weighted_percentiles(ok, np.ones(len(ok), dtype=np.int64), (50, 90, 99))
        out.update({"mean_time_to_last_sample_ms": float(ok.mean()), "median_time_to_last_sample_ms": p50,
                    "p90_time_to_last_sample_ms": p90, "p99_time_to_last_sample_ms": p99,
                    "mean_time_to_first_token_ms": float(first_ms[done].mean())})
    per_q = max(questions, 1)
    kin = summary.get("kinetics", {}).get("paper_intensity", {})
    out["eflops_per_question"] = kin.get("eflops_total", math.nan) / per_q
    out["joules_per_question"] = summary.get("energy", {}).get("total_j", math.nan) / per_q
    out["usd_per_question"] = summary.get("price", {}).get("usd_total", math.nan) / per_q
    out["output_tokens_per_question"] = float(rec.output_tokens[(rec.status == FINISHED)].sum()) / per_q
    return out


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
