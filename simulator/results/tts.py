"""Test-time scaling figures of one run: per-question results of Best-of-N and length-budgeted runs.

Owns the question-level view (a question = one prompt and its N samples, rows fanned out
consecutively by RequestArrays.fan_out): completion, time to the last sample, and eFLOPs, joules
and dollars per question from the summary's cost sections. The sweep over models, samples and
budgets is studies/tts.py's.
"""
from __future__ import annotations

import math

import numpy as np

from simulator.engine import FINISHED
from simulator.results.metrics import weighted_percentiles


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
