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
from simulator.models import DTYPE_BYTES
from simulator.parallel import KV_TRANSFER_OVERLAP, check_parallel_fields
from simulator.speculative import PositionalAcceptance, parse_rates
from simulator.workload import ARRIVALS, TRACE_FORMATS, LengthDist

DEFAULT_NUM_REQUESTS = 1000  # synthetic workloads when num_requests is unset (a trace: all of it)
SCHEDULER_NAMES = ("static", "vllm", "sarathi")
ROUTER_NAMES = ("round_robin", "least_loaded")
PREEMPTION_MODES = ("recompute", "swap")
TRACE_ARRIVALS = ("trace", "rate")
FRONTENDS = ("server", "offline")
EXPERT_PLACEMENTS = ("all_gpu", "static", "lru")  # simulator/moe/placement.py
EXPERT_EXEC = ("fetch", "cpu", "fiddler", "auto")  # simulator/moe/cost.py
KV_POLICY_NAMES = ("dense", "h2o", "scissorhands", "topk", "block_topk")  # classes: kv/policies.py KV_POLICIES
KV_COMPACTIONS = ("inplace", "gather")
SPEC_GAMMA_POLICIES = ("fixed", "adaptive")  # simulator/speculative/setup.py
SPEC_ADVANCE_MODES = ("ragged", "min")
PREFIX_CACHING_POLICY_NAMES = ("vllm", "sglang")  # classes: engine/prefix_cache.py PREFIX_CACHING_POLICIES


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    # what is served, on what
    model: str = "llama-3-8b"
    hardware: str = "h100-sxm"
    dtype: str = "bf16"
    kv_cache_dtype: str | None = None  # vLLM --kv-cache-dtype: None = the model dtype; fp8 halves KV bytes
    allow_unknown_architecture: bool = False  # read an unsupported model_type the Llama way (the summary says so)
    tp: int = 1
    replicas: int = 1
    router: str = "round_robin"
    # parallelism beyond TP (simulator/parallel/) and P/D disaggregation (simulator/disagg/)
    pp: int = 1  # vLLM pipeline_parallel_size: stages of tp GPUs each
    pp_microbatches: int | None = None  # micro-batches a step is split into (None: pp)
    data_parallel_size: int = 1  # vLLM data_parallel_size: attention ranks per replica (needs enable_expert_parallel)
    enable_expert_parallel: bool = False  # vLLM: MoE experts sharded whole over tp x data_parallel_size GPUs
    gpu_link: str | None = None  # link for pipeline sends and expert all-to-all (None: the device's interconnect)
    num_prefill_instances: int | None = None  # P/D disaggregation: prefill instances (None: colocated)
    num_decode_instances: int = 1  # decode instances when disaggregated
    prefill_tp: int | None = None  # tp of a prefill instance (None: tp)
    decode_tp: int | None = None  # tp of a decode instance (None: tp)
    kv_transfer_link: str | None = None  # prefill -> decode KV link (None: the device's interconnect)
    kv_transfer_overlap: str = "async"  # async: decode steps go on during transfers; blocking: they wait
    # engine
    scheduler: str = "sarathi"
    max_num_seqs: int = 256
    max_num_batched_tokens: int | None = None  # None: sarathi -> chunk_size, vllm -> max(max_model_len, 2048)
    chunk_size: int = 512
    block_size: int = 16
    gpu_memory_utilization: float = 0.9
    preemption_mode: str = "recompute"
    swap_space_gib: float = 4.0
    # automatic prefix caching (engine/prefix_cache.py), vLLM --enable-prefix-caching; off: today's numbers
    enable_prefix_caching: bool = False
    prefix_caching_policy: str = "vllm"  # vllm (free-queue LRU) | sglang (free slots first, then LRU leaves)
    kv_offloading_size_gib: float = 0.0  # per replica, summed over its GPUs: host memory for evicted prefix blocks (vLLM --kv-offloading-size)
    max_model_len: int | None = None  # None: the model's max_position_embeddings
    # workload
    num_requests: int | None = None  # None: the whole trace, or DEFAULT_NUM_REQUESTS synthetic requests
    rate: float = 8.0  # requests/s; inf = all at t=0
    arrival: str = "poisson"
    burstiness: float = 1.0
    prompt_tokens: str = "lognormal:1024:0.8"
    output_tokens: str = "lognormal:256:0.8"
    trace: str | None = None
    trace_format: str | None = None
    trace_arrivals: str = "trace"  # "trace": the file's timestamps; "rate": lengths only, arrivals from rate/arrival
    trace_skip_failed: bool = False  # BurstGPT: skip rows with 0 output tokens (failed requests), counted in a warning
    closed_loop_users: int | None = None
    samples_per_prompt: int = 1  # Best-of-N: N samples per prompt share its KV blocks
    output_budget_tokens: int | None = None  # length budget (e.g. chain-of-thought): outputs capped
    shared_prefix_tokens: int = 0  # synthetic: a system prompt of this many tokens before every prompt
    shared_prefix_groups: int = 1  # synthetic: distinct shared prefixes (request i uses prefix i mod groups)
    sharegpt_multi_turn: bool = False  # ShareGPT trace: each turn's prompt is the conversation so far
    seed: int = 0
    # SLOs for request_goodput (vLLM bench serve --goodput)
    slo_ttft_ms: float | None = None
    slo_tpot_ms: float | None = None
    slo_e2el_ms: float | None = None
    # serving engine (profiles/data/engines/<name>.toml): its own cost per step and per request, its
    # admission policy; None: vllm on GPUs, hf on CPUs. "ideal": kernels only at the pre-calibration model
    engine: str | None = None
    frontend: str = "server"  # server: requests pass the engine's HTTP frontend (request_overhead_ms); offline: LLM API
    # roofline efficiencies (used by --profile none and for ops no calibration prices)
    eta_compute: float = 1.0
    eta_memory: float = 1.0
    step_overhead_ms: float = 0.0
    # money (None: the hardware catalog's dated price per GPU-hour)
    price_usd_per_hour: float | None = None
    # MoE expert offloading (simulator/moe/setup.py); with expert_placement None and uniform routing an
    # MoE model uses the plain expected-value cost (cost/ops.py expected_active_experts)
    expert_routing: str = "uniform"  # uniform | zipf:S | path to a popularity JSON
    expert_placement: str | None = None  # all_gpu | static | lru
    gpu_expert_slots: int | None = None  # experts per MoE layer on the GPU; None: as many as fit
    expert_exec: str | None = None  # non-resident expert: fetch | cpu | fiddler | auto; None: fetch for lru, else auto
    expert_cpu_threshold: int = 10  # fiddler: CPU when an expert has fewer tokens
    expert_prefetch_hit_rate: float = 0.0
    host: str = "xeon-8462y"  # host CPU (hardware/data/hosts/)
    host_link_sharing: int = 1  # replicas sharing one host link (contention)
    moe_kv_reserve_tokens: int | None = None  # KV kept on the GPU when sizing expert slots; None: max_num_batched_tokens
    # KV cache policy (kv/policies.py); accuracy is not predicted: the budget is the user's knob
    kv_policy: str = "dense"
    kv_budget: float | None = None  # tokens (>= 1) or fraction (< 1) of prompt+output per sequence
    kv_heavy_fraction: float = 0.5  # h2o: heavy-hitter share of the budget (rest: recent tokens)
    kv_drop: float = 0.4  # scissorhands m: fraction of the budget (< 1) or tokens
    kv_history_window: int = 400  # scissorhands w
    kv_protect_recent: int = 10  # scissorhands r
    kv_compaction: str = "inplace"  # evicted slots overwritten in place, or gather copy (frees blocks)
    kv_select_block: int = 16  # block_topk: tokens per selectable block
    # speculative decoding (simulator/speculative/setup.py); off while draft_model is None
    draft_model: str | None = None
    draft_hardware: str | None = None  # None: the draft shares the target's GPUs
    num_speculative_tokens: int = 4  # gamma (the largest gamma with spec_gamma_policy = adaptive)
    spec_gamma_policy: str = "fixed"
    acceptance_rate: float | None = None  # i.i.d. per-token acceptance alpha (0.8 when no model is named)
    acceptance_position_rates: str | None = None  # "0.9,0.8,0.7": per-position conditional rates
    acceptance_histogram: str | None = None  # file of accepted-length counts (overrides the rates)
    spec_advance: str = "ragged"  # ragged: per-sequence accepted counts; min: the batch's minimum
    spec_realign_overhead: float = 0.0  # padded-batch realignment, fraction of iteration time
    # measured profile: a table dir, table.csv or fit .json; None = a shipped one for this device, "none" = roofline
    profile: str | None = None
    profile_mismatch_ok: bool = False

    def __post_init__(self) -> None:
        _check_types(self)
        _at_least(self, 0, "seed")
        _at_least(self, 1, "tp", "replicas", "max_num_seqs", "chunk_size", "block_size", "samples_per_prompt")
        _at_least(self, 1, "max_num_batched_tokens", "max_model_len", "closed_loop_users", "output_budget_tokens",
                  "num_requests", optional=True)
        if self.draft_model and (self.kv_policy != "dense" or self.samples_per_prompt > 1):
            _bad(self, "draft_model", "speculative decoding with kv_policy='dense' and samples_per_prompt=1")
        if self.samples_per_prompt > 1 and self.kv_policy != "dense":
            _bad(self, "samples_per_prompt", "1 with a KV policy other than dense (shared prompt blocks are not evicted)")
        if self.closed_loop_users and self.samples_per_prompt > 1:
            _bad(self, "samples_per_prompt", "1 with closed_loop_users (Best-of-N runs open loop)")
        _one_of(self, "scheduler", SCHEDULER_NAMES)
        _one_of(self, "router", ROUTER_NAMES)
        _one_of(self, "preemption_mode", PREEMPTION_MODES)
        _one_of(self, "arrival", ARRIVALS)
        _one_of(self, "trace_arrivals", TRACE_ARRIVALS)
        _one_of(self, "dtype", tuple(DTYPE_BYTES))
        if self.kv_cache_dtype is not None:
            _one_of(self, "kv_cache_dtype", tuple(DTYPE_BYTES))
        _one_of(self, "frontend", FRONTENDS)
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
        if self.price_usd_per_hour is not None and not (0 <= self.price_usd_per_hour < math.inf):
            _bad(self, "price_usd_per_hour", "USD per GPU-hour >= 0, or unset for the catalog price")
        for name in ("slo_ttft_ms", "slo_tpot_ms", "slo_e2el_ms"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                _bad(self, name, "> 0 milliseconds")
        _at_least(self, 1, "host_link_sharing")
        _at_least(self, 0, "expert_cpu_threshold")
        _at_least(self, 0, "gpu_expert_slots", optional=True)
        _at_least(self, 1, "moe_kv_reserve_tokens", optional=True)
        if self.expert_placement is not None:
            _one_of(self, "expert_placement", EXPERT_PLACEMENTS)
        if self.expert_exec is not None:
            _one_of(self, "expert_exec", EXPERT_EXEC)
        if not 0 <= self.expert_prefetch_hit_rate <= 1:
            _bad(self, "expert_prefetch_hit_rate", "in [0, 1]")
        LengthDist.parse(self.prompt_tokens, field="prompt_tokens")
        LengthDist.parse(self.output_tokens, field="output_tokens")
        self._check_kv()
        self._check_prefix_caching()
        check_parallel_fields(self)

    def _check_prefix_caching(self) -> None:
        _at_least(self, 0, "shared_prefix_tokens")
        _at_least(self, 1, "shared_prefix_groups")
        _one_of(self, "prefix_caching_policy", PREFIX_CACHING_POLICY_NAMES)
        if self.shared_prefix_tokens and self.trace:
            _bad(self, "shared_prefix_tokens", "0 with a trace (a trace carries its own prompts and prefixes)")
        if not 0 <= self.kv_offloading_size_gib < math.inf:
            _bad(self, "kv_offloading_size_gib", "GiB of host memory >= 0")
        if self.kv_offloading_size_gib and not self.enable_prefix_caching:
            _bad(self, "kv_offloading_size_gib", "0 unless enable_prefix_caching (it holds evicted prefix blocks)")
        # options of a feature that is off are refused, not silently ignored
        if self.prefix_caching_policy != "vllm" and not self.enable_prefix_caching:
            _bad(self, "prefix_caching_policy", "vllm (the default) unless enable_prefix_caching")
        if self.shared_prefix_groups != 1 and not self.shared_prefix_tokens:
            _bad(self, "shared_prefix_groups", "1 (the default) unless shared_prefix_tokens > 0")
        if self.sharegpt_multi_turn and not self.trace:
            _bad(self, "sharegpt_multi_turn", "false without a ShareGPT trace")
        if self.trace_arrivals != "trace" and not self.trace:
            _bad(self, "trace_arrivals", "trace (the default) without a trace: synthetic arrivals come from rate")
        if not self.enable_prefix_caching:
            return
        if self.scheduler == "static":
            _bad(self, "scheduler", "vllm or sarathi with enable_prefix_caching")
        if self.kv_policy != "dense":
            _bad(self, "kv_policy", "dense with enable_prefix_caching (a compressed prompt is not cacheable)")
        if self.samples_per_prompt > 1:
            _bad(self, "samples_per_prompt", "1 with enable_prefix_caching")

    def _check_kv(self) -> None:
        _one_of(self, "kv_policy", KV_POLICY_NAMES)
        _one_of(self, "kv_compaction", KV_COMPACTIONS)
        _at_least(self, 1, "kv_history_window", "kv_select_block")
        _at_least(self, 0, "kv_protect_recent")
        b = self.kv_budget
        if self.kv_policy != "dense" and b is None:
            _bad(self, "kv_budget", f"a budget for kv_policy={self.kv_policy!r}: tokens (integer >= 1) or "
                 "a fraction in (0, 1) of prompt+output")
        if b is not None and not (0 < b < 1 or (b >= 1 and b == int(b))):
            _bad(self, "kv_budget", "tokens (integer >= 1) or a fraction in (0, 1) of prompt+output")
        if not 0 <= self.kv_heavy_fraction <= 1:
            _bad(self, "kv_heavy_fraction", "in [0, 1]")
        if not (0 < self.kv_drop < 1 or (self.kv_drop >= 1 and self.kv_drop == int(self.kv_drop))):
            _bad(self, "kv_drop", "a fraction in (0, 1) of the budget or tokens (integer >= 1)")
        _at_least(self, 1, "num_speculative_tokens")
        _one_of(self, "spec_gamma_policy", SPEC_GAMMA_POLICIES)
        _one_of(self, "spec_advance", SPEC_ADVANCE_MODES)
        if self.acceptance_rate is not None and not 0 <= self.acceptance_rate <= 1:
            _bad(self, "acceptance_rate", "a probability in [0, 1]")
        named = [f for f in ("acceptance_rate", "acceptance_position_rates", "acceptance_histogram")
                 if getattr(self, f) is not None]
        if len(named) > 1:
            raise ServesimError(f"{' and '.join(f'{f}={getattr(self, f)!r}' for f in named)} are both set; "
                                "allowed: one acceptance model (acceptance_rate, acceptance_position_rates "
                                "or acceptance_histogram)")
        if not self.spec_realign_overhead >= 0:
            _bad(self, "spec_realign_overhead", ">= 0 (fraction of iteration time)")
        if self.acceptance_position_rates is not None:
            PositionalAcceptance(parse_rates(self.acceptance_position_rates))

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def replace(self, **changes) -> "Scenario":
        return dataclasses.replace(self, **changes)


def _bad(s: Scenario, name: str, allowed: str) -> None:
    raise ServesimError(f"{name}={getattr(s, name)!r} is invalid; allowed: {allowed}")


INFINITE_OK = ("rate",)  # rate = inf: every request at t=0
# what a string field holds, for its type error (default: a non-empty string, a name or a path)
_LENGTHS = "a length string: N, uniform:LO:HI, normal:MEAN:STD, lognormal:MEAN:SIGMA or zipf:A:MAX (e.g. \"128\")"
_STRING_HINTS = {
    "prompt_tokens": _LENGTHS, "output_tokens": _LENGTHS,
    "acceptance_position_rates": "a string of comma-separated probabilities (e.g. \"0.9,0.8,0.7\"; a TOML list "
                                 "of numbers in a scenario file)",
    "expert_routing": "a string: uniform, zipf:S or the path of a popularity JSON",
    "trace_format": "a string, one of " + ", ".join(TRACE_FORMATS),
    "kv_transfer_overlap": "a string, one of " + ", ".join(KV_TRANSFER_OVERLAP),
    **{name: "a string, one of " + ", ".join(choices) for name, choices in (
        ("scheduler", SCHEDULER_NAMES), ("router", ROUTER_NAMES), ("preemption_mode", PREEMPTION_MODES),
        ("arrival", ARRIVALS), ("trace_arrivals", TRACE_ARRIVALS), ("dtype", tuple(DTYPE_BYTES)),
        ("kv_cache_dtype", tuple(DTYPE_BYTES)), ("frontend", FRONTENDS), ("expert_placement", EXPERT_PLACEMENTS),
        ("expert_exec", EXPERT_EXEC), ("prefix_caching_policy", PREFIX_CACHING_POLICY_NAMES),
        ("kv_policy", KV_POLICY_NAMES), ("kv_compaction", KV_COMPACTIONS), ("spec_gamma_policy", SPEC_GAMMA_POLICIES),
        ("spec_advance", SPEC_ADVANCE_MODES))},
}


def _check_types(s: Scenario) -> None:
    """Every field against its declared type (TOML, CLI and --vary values alike): integers are not
    bools or floats, numbers are finite (rate may be inf), strings are strings."""
    for name, kind in _FIELD_TYPES.items():
        v = getattr(s, name)
        optional = "None" in kind
        if v is None and optional:
            continue
        base = kind.split("|")[0].strip()
        if base == "bool" and not isinstance(v, bool):
            _bad(s, name, "true or false")
        elif base == "int" and (isinstance(v, bool) or not isinstance(v, int)):
            _bad(s, name, "an integer" + (" (or unset)" if optional else ""))
        elif base == "float":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                _bad(s, name, "a number" + (" (or unset)" if optional else ""))
            if math.isnan(v) or (math.isinf(v) and name not in INFINITE_OK):
                _bad(s, name, "a finite number" + (" (or inf)" if name in INFINITE_OK else ""))
        elif base == "str" and (not isinstance(v, str) or not v.strip()):
            hint = _STRING_HINTS.get(name, "a non-empty string (a name or a path)")
            _bad(s, name, hint + (" (or unset)" if optional else ""))


def _at_least(s: Scenario, low: int, *names: str, optional: bool = False) -> None:
    for name in names:
        v = getattr(s, name)
        if optional and v is None:
            continue
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            _bad(s, name, f"an integer >= {low}")


def _one_of(s: Scenario, name: str, allowed: tuple[str, ...]) -> None:
    """The field is one of `allowed`; a name differing only in case (`vLLM`, `BF16`) is accepted and
    stored as the allowed spelling, as model and device names are matched case-insensitively."""
    value = getattr(s, name)
    if value in allowed:
        return
    if isinstance(value, str):
        match = [a for a in allowed if a.lower() == value.strip().lower()]
        if len(match) == 1:
            object.__setattr__(s, name, match[0])
            return
    _bad(s, name, ", ".join(allowed))


SCENARIO_KEYS = tuple(f.name for f in fields(Scenario))
_FIELD_TYPES = {f.name: str(f.type) for f in fields(Scenario)}
_NONE_WORDS = ("none", "null", "default")


def parse_value(key: str, text: str, *, where: str):
    """A field's value from text (`--vary`, a dataset column): int, float, bool or None by the
    field's type, else the text; `where` names the input in the error."""
    kind = _FIELD_TYPES[key]
    text = text.strip()
    if "None" in kind and text.lower() in _NONE_WORDS:
        return None
    base = kind.split("|")[0].strip()
    try:
        if base == "int":
            return int(text)
        if base == "float":
            return float(text)
        if base == "bool":
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
    except ValueError:
        raise ServesimError(f"{where}: {text!r} is not a valid {kind}") from None
    return text


def scenario_from_dict(raw: dict, *, origin: str = "scenario") -> Scenario:
    unknown = sorted(set(raw) - set(SCENARIO_KEYS))
    if unknown:
        raise ServesimError(
            f"{origin}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(SCENARIO_KEYS)}"
        )
    values = dict(raw)
    if isinstance(values.get("rate"), str):
        values["rate"] = _parse_rate(values["rate"], origin)
    if isinstance(values.get("rate"), bool):
        raise ServesimError(f"{origin}: rate={values['rate']!r} is invalid; allowed: requests/s > 0, or inf")
    for key in ("prompt_tokens", "output_tokens"):
        if key in values:
            values[key] = str(values[key])
    if isinstance(values.get("acceptance_position_rates"), list):  # TOML list -> "0.9,0.8"
        values["acceptance_position_rates"] = ",".join(str(r) for r in values["acceptance_position_rates"])
    try:
        return Scenario(**values)
    except TypeError as exc:
        raise ServesimError(f"{origin}: {exc}") from None
    except ServesimError as exc:
        raise ServesimError(f"{origin}: {exc}") from None


def _parse_rate(text: str, origin: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ServesimError(f"{origin}: rate={text!r} is not a number (or 'inf')") from None


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    return scenario_from_dict(scenario_file_keys(path), origin=str(path))


def scenario_file_keys(path: str | Path) -> dict:
    """The keys a scenario file sets, as written (TOML values; load_scenario checks them). Raises
    ServesimError for a missing file, invalid TOML or text that is not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise ServesimError(f"scenario file {str(path)!r} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ServesimError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ServesimError(f"{path}: not UTF-8 text (byte {exc.start}); a scenario is a UTF-8 TOML file") from None
