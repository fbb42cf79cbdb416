"""Serving engines as data: the engine's own cost around the kernels, and its admission rule.

Owns the EngineSpec record (one TOML file per engine and version under profiles/data/engines/,
every number with the public measurement it came from), its loader, and EngineCostModel, the
CostModel wrapper that adds the engine's CPU time to each step:
    cpu_s = step_overhead + tp_overhead * (tp - 1)
            + running sequences * (per_seq + per_seq_tp * (tp - 1))
            + per_prefill_token * prefill tokens
            + per_layer * layers     (eager kernel launches: every step without CUDA graphs,
                                      steps carrying a prefill with decode-only graphs)
    step  = kernels + cpu_s                  (overlap = false: the GPU waits for the CPU)
    step  = max(kernels, cpu_s)              (overlap = true: the next step is scheduled while
                                              the GPU runs this one)
Per request, `request_overhead_ms` (tokenization, HTTP frontend, detokenization of a served run)
delays the request's arrival at the engine without occupying it (run.py); the admission policy
is "preempt" (vLLM: admit on the prompt's blocks, preempt on decode shortage) or "reserve"
(TensorRT-LLM GUARANTEED_NO_EVICT: admit only with blocks for prompt + max output, never
preempt). `kernels` marks an engine with no cost of its own; `ideal` keeps the pre-calibration
model (ideal roofline, or a shipped measured profile) as well.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from simulator.cost.step import BOUND_COMPUTE, BOUND_MEMORY, BOUND_OVERHEAD, CostModel, StepCost
from simulator.errors import ServesimError

ENGINE_DIR = Path(__file__).resolve().parents[2] / "profiles" / "data" / "engines"
ADMISSION = ("preempt", "reserve")


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSpec:
    name: str
    display_name: str
    version: str = ""
    step_overhead_ms: float = 0.0
    per_seq_us: float = 0.0
    per_prefill_token_us: float = 0.0
    per_layer_us: float = 0.0
    cuda_graphs: bool = True  # decode-only steps replay a captured graph (no per-layer launch cost)
    tp_overhead_ms: float = 0.0
    per_seq_tp_us: float = 0.0  # per running sequence and extra TP rank (broadcasting the step to workers)
    overlap: bool = False
    request_overhead_ms: float = 0.0  # served runs: frontend latency per request (not engine time)
    all_reduce_latency_us: float | None = None  # custom all-reduce: small-message latency replacing NCCL's
    attn_decode_speedup: float = 1.0  # the engine's decode-attention kernels vs the calibration's (FlashAttention)
    gqa_kv_shared: bool = True  # decode attention reads each KV head once per group (False: once per query head)
    admission: str = "preempt"
    device_model: str = "calibrated"  # "calibrated" | "ideal" (pre-calibration: roofline or shipped profile)
    sources: dict = field(default_factory=dict, compare=False)  # field name -> the measurement it came from
    notes: str = ""
    fit: dict = field(default_factory=dict, compare=False)  # [fit]: bounds of fitted numbers, points, errors
    origin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for name in ("step_overhead_ms", "per_seq_us", "per_prefill_token_us", "per_layer_us", "tp_overhead_ms",
                     "per_seq_tp_us", "request_overhead_ms"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0 and v < float("inf")):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if not (isinstance(self.attn_decode_speedup, (int, float)) and 0 < self.attn_decode_speedup <= 4):
            raise ValueError(f"attn_decode_speedup must be in (0, 4], got {self.attn_decode_speedup!r}")
        if self.all_reduce_latency_us is not None and not 0 <= self.all_reduce_latency_us < 1e4:
            raise ValueError(f"all_reduce_latency_us must be in [0, 10000), got {self.all_reduce_latency_us!r}")
        if self.admission not in ADMISSION:
            raise ValueError(f"admission={self.admission!r}; allowed: {', '.join(ADMISSION)}")
        if unknown := sorted(set(self.sources) - {f.name for f in fields(self)}):
            raise ValueError(f"[sources] names {unknown}, which are not engine fields")
        if self.device_model not in ("calibrated", "ideal"):
            raise ValueError(f"device_model={self.device_model!r}; allowed: calibrated, ideal")

    @property
    def free(self) -> bool:
        """No cost of its own: kernels only."""
        return not (self.step_overhead_ms or self.per_seq_us or self.per_prefill_token_us or self.per_layer_us
                    or self.tp_overhead_ms or self.per_seq_tp_us)

    def step_cpu_s(self, num_running: int, num_prefill_tokens: int, num_layers: int, tp: int) -> float:
        """The engine's own time for one step, in seconds (module docstring)."""
        eager = not self.cuda_graphs or num_prefill_tokens > 0
        return (self.step_overhead_ms * 1e-3 + self.tp_overhead_ms * 1e-3 * (tp - 1)
                + num_running * (self.per_seq_us + self.per_seq_tp_us * (tp - 1)) * 1e-6
                + self.per_prefill_token_us * 1e-6 * num_prefill_tokens
                + (self.per_layer_us * 1e-6 * num_layers if eager else 0.0))

    def describe(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("origin", "fit")}
        return d | {"sources": dict(self.sources), "file": self.origin}


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(round(v, 6) if isinstance(v, float) else v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def engine_toml(spec: EngineSpec) -> str:
    """The engine file for `spec`: numbers that differ from the defaults, then [sources] (notes, and
    per number the measurement it came from), then [fit] (what `servesim fit --engine` fitted)."""
    default = EngineSpec(name=spec.name, display_name=spec.display_name)
    skip = {"sources", "notes", "fit", "origin"}
    lines = [f"{f.name} = {_toml_value(getattr(spec, f.name))}" for f in fields(spec)
             if f.name not in skip and getattr(spec, f.name) is not None
             and (f.name in ("name", "display_name") or getattr(spec, f.name) != getattr(default, f.name))]
    lines += ["", "[sources]", f"notes = {_toml_value(spec.notes)}"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in spec.sources.items()]
    if spec.fit:
        lines += ["", "[fit]"] + [f"{k} = {_toml_value(v)}" for k, v in spec.fit.items()]
    return "\n".join(lines) + "\n"


def engine_names() -> list[str]:
    return sorted(p.stem for p in ENGINE_DIR.glob("*.toml"))


def _engine_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" and not path.is_file():
        raise ServesimError(f"engine file {path} not found")
    if path.suffix != ".toml":
        path = ENGINE_DIR / f"{str(name_or_path).lower()}.toml"
    if not path.is_file():
        raise ServesimError(f"unknown engine {str(name_or_path)!r}; known engines: {', '.join(engine_names())} "
                            f"(or a path to an engine .toml; copy {ENGINE_DIR / 'vllm.toml'} to start one)")
    return path


def _read_engine(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict, dict]:
    """(numbers, sources) of an engine file, with those of the engine it `inherits` underneath."""
    if path in seen:
        raise ServesimError(f"{path}: 'inherits' loops through {' -> '.join(str(p) for p in seen)}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ServesimError(f"{path}: not valid TOML: {exc}") from None
    sources = raw.pop("sources", {})
    parent = raw.pop("inherits", None)
    if parent is None:
        return raw, sources
    base_raw, base_sources = _read_engine(_engine_path(parent), seen + (path,))
    base_raw = {k: v for k, v in base_raw.items() if k not in ("name", "display_name", "version", "fit")}
    inherited = {k: f"as {parent}: {v}" for k, v in base_sources.items()
                 if k != "notes" and k in base_raw and k not in raw}
    return base_raw | raw, inherited | sources


def load_engine(name_or_path: str) -> EngineSpec:
    """A shipped engine (`vllm`, `trtllm`, ...) or a path to an engine TOML file. A file may name
    another engine in `inherits` and change only what differs (its sources then say so)."""
    path = _engine_path(name_or_path)
    raw, sources = _read_engine(path)
    fields_ = [f.name for f in fields(EngineSpec) if f.name not in ("sources", "notes", "fit", "origin")]
    if unknown := sorted(set(raw) - set(fields_) - {"fit"}):
        raise ServesimError(f"{path}: unknown field(s) {unknown}; allowed: {', '.join(fields_)}, "
                            "and the tables [sources] and [fit]")
    if missing := [k for k in ("name", "display_name") if k not in raw]:
        raise ServesimError(f"{path}: {' and '.join(missing)} missing (every engine file names itself)")
    try:
        fit = raw.pop("fit", {})
        notes = str(sources.pop("notes", ""))
        return EngineSpec(**raw, sources=dict(sources), notes=notes, origin=str(path), fit=fit)
    except (TypeError, ValueError) as exc:
        raise ServesimError(f"{path}: {exc}") from None


class EngineCostModel:
    """The engine's CPU time around the kernels of `inner`, per step (module docstring)."""

    def __init__(self, inner: CostModel, engine: EngineSpec, *, tp: int, num_layers: int):
        self.inner, self.engine, self.tp, self.num_layers = inner, engine, tp, num_layers
        # a measured profile that timed this engine's whole steps already holds its overhead
        self._measured = getattr(inner, "measured_overhead", False)
        self.num_running = 0  # set by the scheduler's step plan (running sequences this step)
        self._inner_step_cost = inner.step_cost
        self._passthrough = self._measured or engine.free
        # EngineSpec.step_cpu_s's terms for this tp and depth, precomputed (the hot path; the
        # same operations in the same order, so the same bits)
        self._cpu_fixed = engine.step_overhead_ms * 1e-3 + engine.tp_overhead_ms * 1e-3 * (tp - 1)
        self._cpu_layers = engine.per_layer_us * 1e-6 * num_layers
        self._per_seq_us = engine.per_seq_us + engine.per_seq_tp_us * (tp - 1)
        self._cpu_per_token = engine.per_prefill_token_us * 1e-6
        self._cuda_graphs, self._overlap = engine.cuda_graphs, engine.overlap

    def step_cost(self, shape) -> StepCost:
        c = self._inner_step_cost(shape)
        if self._passthrough:
            return c
        running = shape.num_decode + len(shape.prefill_chunks) or 1
        prefill = shape.num_prefill_tokens
        # = engine.step_cpu_s(running, prefill, num_layers, tp)
        cpu = (self._cpu_fixed + running * self._per_seq_us * 1e-6 + self._cpu_per_token * prefill
               + (self._cpu_layers if not self._cuda_graphs or prefill > 0 else 0.0))
        time_s = c.time_s
        exposed = (cpu - time_s if cpu > time_s else 0.0) if self._overlap else cpu
        overhead_s = c.overhead_s + exposed
        other = c.comm_s + overhead_s + c.evict_s
        compute_s, memory_s = c.compute_s, c.memory_s
        if compute_s >= memory_s:
            bound = BOUND_COMPUTE if compute_s >= other else BOUND_OVERHEAD
        else:
            bound = BOUND_MEMORY if memory_s >= other else BOUND_OVERHEAD
        return StepCost(time_s + exposed, compute_s, memory_s, c.comm_s, overhead_s, c.flops, c.bytes, bound,
                        c.source, c.evict_s)

    def describe(self) -> dict:
        d = dict(self.inner.describe())
        d["engine"] = self.engine.describe()
        return d

    def __getattr__(self, name):  # features that wrap a cost model reach the inner one's attributes
        return getattr(self.inner, name)
