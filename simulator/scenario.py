"""The scenario: everything one simulated run depends on, as one frozen record.

Owns the Scenario fields (vLLM's names where the concept is the same), their validation, the
TOML loader (unknown keys are errors that list the valid ones) and the name -> class tables of
pluggable components. What-if = dataclasses.replace(scenario, field=value).
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from simulator.errors import ServesimError
from simulator.model_spec import DTYPE_BYTES
from simulator.workload import ARRIVALS, LengthDist

SCHEDULER_NAMES = ("static", "vllm", "sarathi")
ROUTER_NAMES = ("round_robin", "least_loaded")
PREEMPTION_MODES = ("recompute", "swap")
TRACE_ARRIVALS = ("trace", "rate")


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    # what is served, on what
    model: str = "llama-3-8b"
    hardware: str = "h100-sxm"
    dtype: str = "bf16"
    tp: int = 1
    replicas: int = 1
    router: str = "round_robin"
    # engine
    scheduler: str = "sarathi"
    max_num_seqs: int = 256
    max_num_batched_tokens: int | None = None  # None: sarathi -> chunk_size, vllm -> max(max_model_len, 2048)
    chunk_size: int = 512
    block_size: int = 16
    gpu_memory_utilization: float = 0.9
    preemption_mode: str = "recompute"
    swap_space_gib: float = 4.0
    max_model_len: int | None = None  # None: the model's max_position_embeddings
    # workload
    num_requests: int = 1000
    rate: float = 8.0  # requests/s; inf = all at t=0
    arrival: str = "poisson"
    burstiness: float = 1.0
    prompt_tokens: str = "lognormal:1024:0.8"
    output_tokens: str = "lognormal:256:0.8"
    trace: str | None = None
    trace_format: str | None = None
    trace_arrivals: str = "trace"  # "trace": the file's timestamps; "rate": lengths only, arrivals from rate/arrival
    closed_loop_users: int | None = None
    seed: int = 0
    # SLOs for request_goodput (vLLM bench serve --goodput)
    slo_ttft_ms: float | None = None
    slo_tpot_ms: float | None = None
    slo_e2el_ms: float | None = None
    # cost model (roofline efficiencies; the ideal roofline by default)
    eta_compute: float = 1.0
    eta_memory: float = 1.0
    step_overhead_ms: float = 0.0
    # measured profile: a table dir, table.csv or fit .json; None = a shipped one for this device, "none" = roofline
    profile: str | None = None
    profile_mismatch_ok: bool = False

    def __post_init__(self) -> None:
        _at_least(self, 1, "tp", "replicas", "max_num_seqs", "chunk_size", "block_size", "num_requests")
        _at_least(self, 1, "max_num_batched_tokens", "max_model_len", "closed_loop_users", optional=True)
        _one_of(self, "scheduler", SCHEDULER_NAMES)
        _one_of(self, "router", ROUTER_NAMES)
        _one_of(self, "preemption_mode", PREEMPTION_MODES)
        _one_of(self, "arrival", ARRIVALS)
        _one_of(self, "trace_arrivals", TRACE_ARRIVALS)
        _one_of(self, "dtype", tuple(DTYPE_BYTES))
        if not 0 < self.gpu_memory_utilization <= 1:
            _bad(self, "gpu_memory_utilization", "a number in (0, 1]")
        if not (self.rate > 0 and not math.isnan(self.rate)):
            _bad(self, "rate", "requests/s > 0, or inf for all requests at t=0")
        if not self.burstiness > 0:
            _bad(self, "burstiness", "> 0 (1 = Poisson)")
        if self.swap_space_gib < 0:
            _bad(self, "swap_space_gib", ">= 0")
        if not (0 < self.eta_compute <= 1) or not (0 < self.eta_memory <= 1):
            _bad(self, "eta_compute" if not 0 < self.eta_compute <= 1 else "eta_memory", "in (0, 1]")
        if not isinstance(self.profile_mismatch_ok, bool):
            _bad(self, "profile_mismatch_ok", "true or false")
        if self.step_overhead_ms < 0:
            _bad(self, "step_overhead_ms", ">= 0")
        for name in ("slo_ttft_ms", "slo_tpot_ms", "slo_e2el_ms"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                _bad(self, name, "> 0 milliseconds")
        LengthDist.parse(self.prompt_tokens, field="prompt_tokens")
        LengthDist.parse(self.output_tokens, field="output_tokens")

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def replace(self, **changes) -> "Scenario":
        return dataclasses.replace(self, **changes)


def _bad(s: Scenario, name: str, allowed: str) -> None:
    raise ServesimError(f"{name}={getattr(s, name)!r} is invalid; allowed: {allowed}")


def _at_least(s: Scenario, low: int, *names: str, optional: bool = False) -> None:
    for name in names:
        v = getattr(s, name)
        if optional and v is None:
            continue
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            _bad(s, name, f"an integer >= {low}")


def _one_of(s: Scenario, name: str, allowed: tuple[str, ...]) -> None:
    if getattr(s, name) not in allowed:
        _bad(s, name, ", ".join(allowed))


SCENARIO_KEYS = tuple(f.name for f in fields(Scenario))


def scenario_from_dict(raw: dict, *, origin: str = "scenario") -> Scenario:
    unknown = sorted(set(raw) - set(SCENARIO_KEYS))
    if unknown:
        raise ServesimError(
            f"{origin}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(SCENARIO_KEYS)}"
        )
    values = dict(raw)
    if isinstance(values.get("rate"), str):
        values["rate"] = _parse_rate(values["rate"], origin)
    for key in ("prompt_tokens", "output_tokens"):
        if key in values:
            values[key] = str(values[key])
    try:
        return Scenario(**values)
    except TypeError as exc:
        raise ServesimError(f"{origin}: {exc}") from None


def _parse_rate(text: str, origin: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ServesimError(f"{origin}: rate={text!r} is not a number (or 'inf')") from None


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    if not path.is_file():
        raise ServesimError(f"scenario file {str(path)!r} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ServesimError(f"{path}: not valid TOML: {exc}") from None
    return scenario_from_dict(raw, origin=str(path))
