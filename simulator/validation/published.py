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


REGIMES = ("batch1_decode", "batched_decode", "prefill", "serving", "energy")
REQUIRED = ("id", "split", "regime", "model", "gpu", "num_gpus", "tp", "engine", "dtype", "mode", "metric", "measured",
            "source")


def _field(raw: dict, name: str, kind, where: str, *, minimum: float | None = None, required: bool = True):
    """One cell as `kind` (int or float), with its name, value and what is allowed in the error."""
    text = (raw.get(name) or "").strip()
    if not text:
        if required:
            raise ServesimError(f"{where}: {name} is empty; a number is required")
        return None
    try:
        v = float(text) if kind is float else int(float(text))
        if kind is int and float(text) != int(float(text)):
            raise ValueError
    except ValueError:
        raise ServesimError(f"{where}: {name} is {text!r}, not {'a whole number' if kind is int else 'a number'}") from None
    if not math.isfinite(v) and not (name == "rate" and math.isinf(v) and v > 0):
        raise ServesimError(f"{where}: {name} is {text!r}; a finite number is required")
    if minimum is not None and not v >= minimum:
        bound = "> 0" if 0 < minimum < 1e-100 else f">= {minimum:g}"
        raise ServesimError(f"{where}: {name} is {text!r}; it must be {bound}")
    return v


def _one_of(value: str, allowed, name: str, where: str) -> str:
    if value not in allowed:
        raise ServesimError(f"{where}: {name} {value!r} unknown; allowed: {', '.join(allowed)}")
    return value


def _point(raw: dict, where: str) -> Point:
    from hardware import device_names
    from simulator.cost import engine_names
    from simulator.models import DTYPE_BYTES, model_names

    if missing := [k for k in REQUIRED if k not in raw]:
        raise ServesimError(f"{where}: column(s) {missing} missing")
    split = _one_of(raw["split"], SPLITS, "split", where)
    if split == "excluded":
        return Point(id=raw["id"], split="excluded", regime=raw["regime"], model=raw["model"], gpu=raw["gpu"],
                     num_gpus=0, tp=0, engine=raw["engine"], dtype=raw["dtype"], mode="", metric=raw["metric"],
                     measured=math.nan, unit=raw.get("unit", ""), source=raw["source"], notes=raw.get("notes", ""))
    if not raw["source"].strip():
        raise ServesimError(f"{where}: source is empty; every point needs the exact source it was read from")
    for name, allowed in (("regime", REGIMES), ("mode", MODES), ("metric", tuple(METRICS)), ("dtype", tuple(DTYPE_BYTES)),
                          ("gpu", tuple(device_names())), ("engine", tuple(engine_names()))):
        _one_of(raw[name], allowed, name, where)
    if raw["model"] not in model_names():
        raise ServesimError(f"{where}: model {raw['model']!r} is not a catalog model; known: {', '.join(model_names())}")
    num_gpus, tp = _field(raw, "num_gpus", int, where, minimum=1), _field(raw, "tp", int, where, minimum=1)
    if num_gpus % tp:
        raise ServesimError(f"{where}: num_gpus={num_gpus} is not a multiple of tp={tp}")
    mode = raw["mode"]
    batch = _field(raw, "batch", int, where, minimum=1, required=mode in ("static", "concurrency"))
    rate = _field(raw, "rate", float, where, minimum=0, required=False)
    if mode == "rate" and not (rate and rate > 0):
        raise ServesimError(f"{where}: rate is {raw.get('rate')!r}; mode 'rate' needs requests/s > 0 (or inf)")
    return Point(
        id=raw["id"], split=split, regime=raw["regime"], model=raw["model"], gpu=raw["gpu"], num_gpus=num_gpus, tp=tp,
        engine=raw["engine"], dtype=raw["dtype"], mode=mode, metric=raw["metric"],
        measured=_field(raw, "measured", float, where, minimum=1e-300), unit=raw.get("unit", ""), source=raw["source"],
        batch=batch, rate=rate, num_requests=_field(raw, "num_requests", int, where, minimum=1, required=False),
        input_tokens=_field(raw, "input_tokens", int, where, minimum=1),
        output_tokens=_field(raw, "output_tokens", int, where, minimum=1),
        scenario=_scenario_keys(raw.get("scenario", ""), where=where), pair=raw.get("pair", ""),
        notes=raw.get("notes", ""))


def read_points(path: str | Path = DATA) -> list[Point]:
    """Every row, excluded ones included (they carry the reason in `notes`). Raises ServesimError
    naming the file, the line, the field, its value and what is allowed for any bad cell."""
    path = Path(path)
    if not path.is_file():
        raise ServesimError(f"{path}: published points file not found (the shipped one is {DATA})")
    out, seen = [], set()
    with open(path, newline="", encoding="utf-8") as fh:
        for line, raw in enumerate(csv.DictReader(fh), start=2):
            where = f"{path}:{line}"
            p = _point(raw, where)
            if p.split != "excluded":
                try:
                    scenario_for(p)  # every setting the row implies must be a valid Scenario
                except ServesimError as exc:
                    raise ServesimError(f"{where}: {str(exc).removeprefix(f'published point {p.id}: ')}") from None
            if p.id in seen:
                raise ServesimError(f"{where}: id {p.id!r} appears twice")
            seen.add(p.id)
            out.append(p)
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
