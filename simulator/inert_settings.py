"""Settings a run never reads: which scenario fields do nothing in which scenarios, and why.

Owns INERT_RULES (fields, when they do nothing, why, what would make them count) and the two run
facts they share with the engine set-up (never_preempts, swap_space_used). The CLI refuses a typed
flag, a `--vary` key or a `--scenario` file key that `inert_reason` names (cli/inert_flags.py
refuse_inert_flags) rather than run with it silently ignored.
"""
from __future__ import annotations

import math
from functools import lru_cache

from simulator.errors import ServesimError
from simulator.moe import moe_requested
from simulator.scenario import Scenario

SPECULATIVE_FIELDS = ("draft_hardware", "num_speculative_tokens", "spec_gamma_policy", "acceptance_rate",
                      "acceptance_position_rates", "acceptance_histogram", "spec_advance", "spec_realign_overhead")
MOE_OFFLOAD_FIELDS = ("gpu_expert_slots", "expert_exec", "expert_cpu_threshold", "expert_prefetch_hit_rate",
                      "host_link_sharing", "moe_kv_reserve_tokens")


def never_preempts(s: Scenario) -> bool:
    """Whether the run can never preempt: the static scheduler, or an engine that admits a request only
    when its whole sequence fits (admission "reserve": TensorRT-LLM's GUARANTEED_NO_EVICT). A bad
    engine name is left to the run, which reports it."""
    if s.scheduler == "static":
        return True
    # the defaults (vllm; kernels on a CPU) preempt
    return s.engine is not None and _engine_admission(s.engine) == "reserve"


@lru_cache(maxsize=16)
def _engine_admission(engine: str) -> str | None:
    """An engine file's admission, read once per process (every engine instance and every rule asks)."""
    from simulator.cost import load_engine

    try:
        return load_engine(engine).admission
    except ServesimError:
        return None


def swap_space_used(s: Scenario) -> bool:
    """Whether the run allocates the swap space: swap preemption, in a run that can preempt."""
    return s.preemption_mode == "swap" and not never_preempts(s)


# (fields, when they do nothing, why, what would make them count); the first rule that applies is reported
INERT_RULES = (
    (("trace_format", "trace_arrivals", "trace_skip_failed", "sharegpt_multi_turn"), lambda s: not s.trace,
     "no trace is replayed (the workload is synthetic)", "a trace"),
    (("rate", "arrival", "burstiness"), lambda s: bool(s.closed_loop_users),
     "closed_loop_users sends each user's next request when its last one ends", "closed_loop_users unset"),
    (("rate", "arrival", "burstiness"), lambda s: bool(s.trace) and s.trace_arrivals == "trace",
     "with trace_arrivals='trace' the trace sets the arrivals (its timestamps; every request at t=0 in a file "
     "without them, e.g. ShareGPT)", "trace_arrivals='rate'"),
    (("arrival", "burstiness"), lambda s: math.isinf(s.rate), "rate=inf sends every request at t=0", "a finite rate"),
    (("burstiness",), lambda s: s.arrival != "gamma", "only gamma arrivals have a burstiness", "arrival='gamma'"),
    (("prompt_tokens", "output_tokens"), lambda s: bool(s.trace), "the trace gives every request's lengths",
     "no trace"),
    (("chunk_size",), lambda s: s.scheduler != "sarathi", "only the sarathi scheduler (chunked prefill) cuts "
     "prompts into chunks", "scheduler='sarathi'"),
    (("router",), lambda s: s.replicas * s.data_parallel_size == 1 and s.num_prefill_instances is None,
     "a single engine instance has nothing to route", "replicas > 1"),
    (SPECULATIVE_FIELDS, lambda s: not s.draft_model, "speculative decoding is off without draft_model",
     "a draft_model"),
    (("preemption_mode",), never_preempts, "the static scheduler and an engine with admission 'reserve' (trtllm) "
     "never preempt", "the vllm or sarathi scheduler on an engine that preempts (vllm, sglang, ...)"),
    (("swap_space_gib",), lambda s: not swap_space_used(s), "only swap preemption uses the swap space",
     "preemption_mode='swap' with the vllm or sarathi scheduler on an engine that preempts (vllm, sglang, ...)"),
    (("kv_budget",), lambda s: s.kv_policy == "dense", "the dense KV policy keeps every token",
     "a kv_policy other than dense"),
    (("kv_compaction",), lambda s: s.kv_policy not in ("h2o", "scissorhands"), "only h2o and scissorhands evict "
     "tokens whose slots are compacted", "kv_policy='h2o' or 'scissorhands'"),
    (("kv_heavy_fraction",), lambda s: s.kv_policy != "h2o", "only h2o reads it", "kv_policy='h2o'"),
    (("kv_drop", "kv_history_window", "kv_protect_recent"), lambda s: s.kv_policy != "scissorhands",
     "only scissorhands reads it", "kv_policy='scissorhands'"),
    (("kv_select_block",), lambda s: s.kv_policy != "block_topk", "only block_topk selects blocks",
     "kv_policy='block_topk'"),
    (MOE_OFFLOAD_FIELDS, lambda s: not moe_requested(s), "MoE expert offloading is off",
     "an expert_placement or a non-uniform expert_routing"),
    (("host",), lambda s: not (moe_requested(s) or swap_space_used(s) or s.kv_offloading_size_gib),
     "only MoE expert offloading, swap preemption and the KV offload tier use the host CPU and its memory",
     "one of them on"),
)


def inert_reason(s: Scenario, name: str) -> tuple[str, str] | None:
    """(why it does nothing, what would make it count) when the scenario `s` never reads the field
    `name` (e.g. rate with a trace replayed on its own timestamps), else None. Callers refuse a
    setting the user gave explicitly rather than run with it silently ignored."""
    for fields_, applies, why, needs in INERT_RULES:
        if name in fields_ and applies(s):
            return why, needs
    return None
