"""Result files: summary.json, the per-request table, the per-step table and the Chrome/Perfetto
step trace, written to one output directory.

Owns the on-disk formats that reports/ and users read; the summary itself is summary.py's.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from simulator.cost import BOUND_NAMES
from simulator.engine import FAILED, FINISHED
from simulator.results.summary import summary_json
from simulator.run import RunResult

REQUEST_COLUMNS = ("request_id", "replica", "status", "arrival_s", "prompt_tokens", "output_tokens",
                   "first_token_s", "finish_s", "ttft_ms", "e2el_ms", "tpot_ms", "num_preemptions",
                   "fail_reason")


def request_rows(result: RunResult):
    rec = result.recorder
    status_name = {0: "pending", FINISHED: "finished", FAILED: "failed"}
    ttft = (rec.first_token_s - rec.arrival_s) * 1e3
    e2el = (rec.finish_s - rec.arrival_s) * 1e3
    out = rec.output_tokens
    tpot = np.where(out > 1, (e2el - ttft) / np.maximum(out - 1, 1), np.nan)
    for i in range(len(rec.status)):
        yield (i, int(rec.replica[i]), status_name[int(rec.status[i])], float(rec.arrival_s[i]),
               int(rec.prompt_tokens[i]), int(out[i]), float(rec.first_token_s[i]), float(rec.finish_s[i]),
               float(ttft[i]), float(e2el[i]), float(tpot[i]), int(rec.num_preemptions[i]),
               rec.fail_reason.get(i, ""))


def write_requests_csv(result: RunResult, path: Path) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(REQUEST_COLUMNS)
        w.writerows(request_rows(result))


def write_chrome_trace(result: RunResult, path: Path) -> None:
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
    path.write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ms"}))


def write_outputs(result: RunResult, summary: dict, out_dir: Path, *, trace: bool) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "summary.json", out_dir / "requests.csv", out_dir / "steps.csv"]
    written[0].write_text(summary_json(summary) + "\n")
    write_requests_csv(result, written[1])
    steps = result.recorder.step_arrays()
    with open(written[2], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(steps.keys())
        w.writerows(zip(*(col.tolist() for col in steps.values())))
    if trace:
        written.append(out_dir / "trace.json")
        write_chrome_trace(result, written[-1])
    return written
