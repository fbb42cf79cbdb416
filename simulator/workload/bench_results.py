"""A measured serving benchmark read back: `vllm bench serve --save-result` JSON and SGLang
`bench_serving --output-file` JSONL (with --output-details), as requests to replay.

Owns parsing and validating those files (one clear ServesimError naming the file and the field)
into a BenchResult: per request the prompt and output lengths, TTFT and inter-token latencies
(seconds, as both tools store them), the send time where the file has it ("start_times", newer
vLLM), the error text; and the run's settings (request rate, burstiness, max concurrency, number
of prompts), identity (backend, model id, date, tool version where the file says) and the tool's
own aggregate metrics. Failed requests (an error text, or no output) are kept apart, counted, and
not replayed. Does not compute metrics (validation/bench.py) or simulate anything.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulator.errors import ServesimError
from simulator.workload.requests import RequestArrays

BENCH_KEYS = ("input_lens", "output_lens", "ttfts", "itls")
AGGREGATES = ("duration", "completed", "request_throughput", "output_throughput", "total_token_throughput",
              "mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "median_tpot_ms", "p99_tpot_ms",
              "mean_itl_ms", "median_itl_ms", "p99_itl_ms", "mean_e2el_ms", "median_e2el_ms", "p99_e2el_ms")


@dataclass(frozen=True)
class BenchResult:
    path: Path
    tool: str  # "vllm bench serve" | "sglang bench_serving"
    input_lens: np.ndarray  # int64, every request in file order
    output_lens: np.ndarray  # int64
    ttfts_s: np.ndarray  # float64, NaN where the request failed
    itls_s: list[np.ndarray]  # per request, seconds between consecutive tokens
    errors: list[str]
    start_times_s: np.ndarray | None  # send times relative to the first, when the file has them
    request_rate: float  # req/s, inf = all at once
    burstiness: float
    max_concurrency: int | None
    identity: dict = field(default_factory=dict)  # backend, model_id, tokenizer_id, date, version
    reported: dict = field(default_factory=dict)  # the tool's own aggregates (vLLM names)

    @property
    def ok(self) -> np.ndarray:
        """Requests that finished: no error text and at least one output token."""
        return np.array([not e for e in self.errors]) & (self.output_lens >= 1) & np.isfinite(self.ttfts_s)

    @property
    def num_failed(self) -> int:
        return int((~self.ok).sum())

    def requests(self) -> RequestArrays:
        """The finished requests to replay: their lengths, in send order; arrivals at their send
        times when the file has them, else all at 0 (the caller draws arrivals from the rate)."""
        ok = self.ok
        if self.start_times_s is not None:
            order = np.argsort(self.start_times_s[ok], kind="stable")
            arrival = self.start_times_s[ok][order]
            arrival = arrival - arrival[0] if len(arrival) else arrival
        else:
            order = np.arange(int(ok.sum()))
            arrival = np.zeros(int(ok.sum()))
        return RequestArrays.from_columns(arrival, self.input_lens[ok][order], self.output_lens[ok][order])


def _fail(path: Path, what: str) -> ServesimError:
    return ServesimError(f"{path}: {what} (expected the result JSON of `vllm bench serve --save-result`, or "
                         "SGLang `bench_serving --output-file` JSONL written with --output-details)")


def _records(path: Path) -> tuple[dict, str]:
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text), "vllm bench serve"
    except json.JSONDecodeError as first:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) > 1:  # SGLang appends one JSON object per run: take the last one with details
            for i in range(len(lines) - 1, -1, -1):
                try:
                    rec = json.loads(lines[i])
                except json.JSONDecodeError as exc:
                    raise _fail(path, f"line {i + 1} is not JSON ({exc.msg})") from None
                if isinstance(rec, dict) and all(k in rec for k in BENCH_KEYS):
                    return rec, "sglang bench_serving"
        raise _fail(path, f"not JSON ({first.msg} at line {first.lineno})") from None


def _number(path: Path, key: str, v, *, allow_inf: bool = False) -> float:
    if isinstance(v, str) and allow_inf and v.strip().lower() in ("inf", "infinity"):
        return math.inf
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise _fail(path, f"{key} is {v!r}, not a number")
    return float(v)


def read_bench_result(path: str | Path) -> BenchResult:
    """Parse one benchmark result file (module docstring). Raises ServesimError naming the file
    and the field for a missing file, non-JSON text, a missing per-request list, lists of
    different lengths, or a value that is not a number."""
    path = Path(path)
    if not path.is_file():
        raise ServesimError(f"{path}: benchmark result file not found")
    raw, tool = _records(path)
    if not isinstance(raw, dict):
        raise _fail(path, f"the top level is a {type(raw).__name__}, not an object")
    if missing := [k for k in BENCH_KEYS if k not in raw]:
        raise _fail(path, f"no per-request {', '.join(missing)}")
    n = len(raw["input_lens"])
    if n == 0:
        raise _fail(path, "no requests")
    for k in BENCH_KEYS[1:] + (("errors",) if "errors" in raw else ()) + (("start_times",) if "start_times" in raw else ()):
        if not isinstance(raw[k], list) or len(raw[k]) != n:
            got = len(raw[k]) if isinstance(raw[k], list) else type(raw[k]).__name__
            raise _fail(path, f"{k} has {got} entries, input_lens has {n}")
    inputs = np.array([_number(path, f"input_lens[{i}]", v) for i, v in enumerate(raw["input_lens"])], dtype=np.int64)
    outputs = np.array([_number(path, f"output_lens[{i}]", v) for i, v in enumerate(raw["output_lens"])], dtype=np.int64)
    errors = [str(e or "") for e in raw.get("errors", [""] * n)]
    ttfts = np.array([math.nan if (v is None or errors[i]) else _number(path, f"ttfts[{i}]", v)
                      for i, v in enumerate(raw["ttfts"])], dtype=np.float64)
    itls = []
    for i, row in enumerate(raw["itls"]):
        if not isinstance(row, list):
            raise _fail(path, f"itls[{i}] is {type(row).__name__}, not a list of seconds")
        itls.append(np.array([_number(path, f"itls[{i}]", v) for v in row], dtype=np.float64))
    starts = None
    if "start_times" in raw:
        starts = np.array([_number(path, f"start_times[{i}]", v) for i, v in enumerate(raw["start_times"])])
        starts = starts - starts.min()
    rate = _number(path, "request_rate", raw.get("request_rate", math.inf), allow_inf=True)
    burst = _number(path, "burstiness", raw.get("burstiness", 1.0) or 1.0)
    conc = raw.get("max_concurrency")
    identity = {k: raw[k] for k in ("backend", "model_id", "tokenizer_id", "date", "version", "vllm_version",
                                    "sglang_version", "dataset_name", "num_prompts") if raw.get(k) is not None}
    reported = {k: float(raw[k]) for k in AGGREGATES if isinstance(raw.get(k), (int, float)) and not isinstance(raw[k], bool)}
    return BenchResult(path, tool, inputs, outputs, ttfts, itls, errors, starts, rate, burst,
                       int(conc) if isinstance(conc, (int, float)) and conc else None, identity, reported)
