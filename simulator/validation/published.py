"""Published measurements, simulated: the dataset behind `servesim validate --published`.

Owns the point format (simulator/validation/data/published.csv: one row per published metric,
with its source) and turning a point into the Scenario that reproduces its setting:
- static: `batch` requests in one padded batch (gptSessionBenchmark, gpt-fast, lmdeploy static);
- offline: every request at t = 0, continuous batching (trtllm-bench throughput,
  benchmark_throughput / benchmark_latency), `batch` = max_num_seqs when the source sets it;
- rate: Poisson arrivals at `rate` req/s (served benchmarks);
- concurrency: `batch` concurrent users (a steady batch, ML.ENERGY's max_num_seqs runs).
`scenario` holds extra Scenario keys ("key=value;..."). Splits: "calibration" points were used to
fit something (named in the note); "holdout" points never were; "excluded" ones could not be
simulated as published (the reason is in the row) and are listed, never silently dropped.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from simulator.errors import ServesimError
from simulator.scenario import SCENARIO_KEYS, Scenario, parse_value, scenario_from_dict

DATA = Path(__file__).parent / "data" / "published.csv"
MODES = ("static", "offline", "rate", "concurrency")
SPLITS = ("calibration", "holdout", "excluded")
# metric -> (summary path, scale to the published unit, higher is faster)
METRICS = {
    "output_tok_per_s": (("metrics", "output_throughput"), 1.0, True),
    "output_tok_per_s_per_gpu": (("metrics", "output_throughput"), "per_gpu", True),
    "total_tok_per_s": (("metrics", "total_token_throughput"), 1.0, True),
    "request_throughput": (("metrics", "request_throughput"), 1.0, True),
    "ttft_mean_ms": (("metrics", "mean_ttft_ms"), 1.0, False),
    "ttft_median_ms": (("metrics", "median_ttft_ms"), 1.0, False),
    "tpot_mean_ms": (("metrics", "mean_tpot_ms"), 1.0, False),
    "itl_mean_ms": (("metrics", "mean_itl_ms"), 1.0, False),
    "itl_median_ms": (("metrics", "median_itl_ms"), 1.0, False),
    "batch_latency_s": (("metrics", "duration"), 1.0, False),
    "j_per_output_token": (("energy", "j_per_output_token"), 1.0, False),
}


@dataclass(frozen=True, slots=True)
class Point:
    id: str
    split: str
    regime: str
    model: str
    gpu: str
    num_gpus: int
    tp: int
    engine: str
    dtype: str
    mode: str
    metric: str
    measured: float
    unit: str
    source: str
    batch: int | None = None
    rate: float | None = None
    num_requests: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    scenario: dict = field(default_factory=dict)
    pair: str = ""
    notes: str = ""

    @property
    def replicas(self) -> int:
        return max(self.num_gpus // self.tp, 1)


def _scenario_keys(text: str, *, where: str) -> dict:
    out = {}
    for kv in filter(None, (s.strip() for s in text.split(";"))):
        key, _, value = kv.partition("=")
        if key not in SCENARIO_KEYS:
            raise ServesimError(f"{where}: scenario key {key!r} unknown; valid keys: {', '.join(SCENARIO_KEYS)}")
        out[key] = parse_value(key, value, where=f"{where}: scenario {key}")
    return out


def _int(text: str) -> int | None:
    return int(float(text)) if text.strip() else None


def read_points(path: str | Path = DATA) -> list[Point]:
    """Every row, excluded ones included (they carry the reason in `notes`)."""
    path = Path(path)
    out = []
    with open(path, newline="") as fh:
        for line, raw in enumerate(csv.DictReader(fh), start=2):
            try:
                if raw["split"] == "excluded":
                    out.append(Point(id=raw["id"], split="excluded", regime=raw["regime"], model=raw["model"],
                                     gpu=raw["gpu"], num_gpus=0, tp=0, engine=raw["engine"], dtype=raw["dtype"], mode="",
                                     metric=raw["metric"], measured=math.nan, unit=raw["unit"], source=raw["source"],
                                     notes=raw["notes"]))
                    continue
                extra = _scenario_keys(raw["scenario"], where=f"{path}:{line}")
                out.append(Point(
                    id=raw["id"], split=raw["split"], regime=raw["regime"], model=raw["model"], gpu=raw["gpu"],
                    num_gpus=int(raw["num_gpus"]), tp=int(raw["tp"]), engine=raw["engine"], dtype=raw["dtype"],
                    mode=raw["mode"], metric=raw["metric"], measured=float(raw["measured"]), unit=raw["unit"],
                    source=raw["source"], batch=_int(raw["batch"]), rate=float(raw["rate"]) if raw["rate"] else None,
                    num_requests=_int(raw["num_requests"]), input_tokens=_int(raw["input_tokens"]),
                    output_tokens=_int(raw["output_tokens"]), scenario=extra, pair=raw["pair"], notes=raw["notes"]))
            except (KeyError, ValueError) as exc:
                raise ServesimError(f"{path}:{line}: {exc}") from None
            p = out[-1]
            if p.split not in SPLITS or (p.split != "excluded" and (p.mode not in MODES or p.metric not in METRICS)):
                raise ServesimError(f"{path}:{line}: split {p.split!r} / mode {p.mode!r} / metric {p.metric!r} "
                                    f"not understood; allowed splits {SPLITS}, modes {MODES}, metrics {sorted(METRICS)}")
    return out


def scenario_for(p: Point, *, engine: str | None = None) -> Scenario:
    """The Scenario that reproduces point `p`'s setting (module docstring)."""
    n = p.num_requests or p.batch or 1
    base = {"model": p.model, "hardware": p.gpu, "dtype": p.dtype, "tp": p.tp, "replicas": p.replicas,
            "engine": engine or p.engine, "num_requests": n, "prompt_tokens": str(p.input_tokens),
            "output_tokens": str(p.output_tokens), "rate": math.inf, "seed": 0,
            "max_model_len": max(p.input_tokens + p.output_tokens, 1), "router": "least_loaded"}
    if p.mode == "static":
        base |= {"scheduler": "static", "max_num_seqs": p.batch}
    elif p.mode == "offline":
        base |= {"max_num_seqs": p.batch or 2048}
    elif p.mode == "rate":
        base |= {"rate": p.rate if p.rate is not None else math.inf}
    elif p.mode == "concurrency":
        base |= {"closed_loop_users": p.batch * p.replicas, "max_num_seqs": p.batch}
    return scenario_from_dict(base | p.scenario, origin=f"published point {p.id}")


def metric_value(p: Point, summary: dict) -> float:
    path, scale, _ = METRICS[p.metric]
    v = summary
    for key in path:
        v = v.get(key, math.nan) if isinstance(v, dict) else math.nan
    if v is None:
        return math.nan
    return v / p.num_gpus if scale == "per_gpu" else v * scale


def faster_is_higher(metric: str) -> bool:
    return METRICS[metric][2]
