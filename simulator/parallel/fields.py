"""Validation of the scenario fields of parallelism beyond TP and of P/D disaggregation.

Owns the allowed values of pp, pp_microbatches, data_parallel_size, enable_expert_parallel,
num_prefill_instances, num_decode_instances, prefill_tp, decode_tp and kv_transfer_overlap; each
error names the field, its value and what is allowed (scenario.py calls this from __post_init__).
Checks that need the model (divisibility by layers, experts) live in setup.py.
"""
from __future__ import annotations

from simulator.errors import ServesimError

KV_TRANSFER_OVERLAP = ("async", "blocking")  # simulator/disagg/transfer.py
MAX_ENGINE_INSTANCES = 512  # engine instances one run simulates (replicas x DP ranks, or P + D)
# the P/D disaggregation fields at their colocated values: replace(**COLOCATED) turns P/D off whole
COLOCATED = {"num_prefill_instances": None, "num_decode_instances": 1, "prefill_tp": None, "decode_tp": None,
             "kv_transfer_link": None, "kv_transfer_overlap": "async"}


def _int_at_least(s, name: str, low: int, optional: bool = False) -> None:
    v = getattr(s, name)
    if optional and v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ServesimError(f"{name}={v!r} is invalid; allowed: an integer >= {low}" + (" (or unset)" if optional else ""))


def check_parallel_fields(s) -> None:
    _int_at_least(s, "pp", 1)
    _int_at_least(s, "pp_microbatches", 1, optional=True)
    _int_at_least(s, "data_parallel_size", 1)
    _int_at_least(s, "num_prefill_instances", 1, optional=True)
    _int_at_least(s, "num_decode_instances", 1)
    _int_at_least(s, "prefill_tp", 1, optional=True)
    _int_at_least(s, "decode_tp", 1, optional=True)
    if not isinstance(s.enable_expert_parallel, bool):
        raise ServesimError(f"enable_expert_parallel={s.enable_expert_parallel!r} is invalid; allowed: true or false")
    if s.data_parallel_size > 1 and not s.enable_expert_parallel:
        raise ServesimError(f"data_parallel_size={s.data_parallel_size} is invalid without enable_expert_parallel; "
                            "allowed: 1 (independent copies of a model are --replicas)")
    overlap = str(s.kv_transfer_overlap).strip().lower() if isinstance(s.kv_transfer_overlap, str) else None
    if overlap not in KV_TRANSFER_OVERLAP:
        raise ServesimError(f"kv_transfer_overlap={s.kv_transfer_overlap!r} is invalid; allowed: "
                            f"{', '.join(KV_TRANSFER_OVERLAP)}")
    object.__setattr__(s, "kv_transfer_overlap", overlap)  # case-insensitive, as the other choices
    _check_unused(s)
    _check_sizes(s)
    if s.num_prefill_instances is not None:
        for name in ("pp", "data_parallel_size"):
            if getattr(s, name) != 1:
                raise ServesimError(f"{name}={getattr(s, name)} is invalid with num_prefill_instances (P/D "
                                    "disaggregation); allowed: 1 (instances are tp-parallel)")
        if s.replicas != 1 or s.closed_loop_users or s.samples_per_prompt > 1 or s.draft_model:
            raise ServesimError("num_prefill_instances (P/D disaggregation) is invalid with replicas > 1, "
                                "closed_loop_users, samples_per_prompt > 1 or draft_model; allowed: pool sizes "
                                "num_prefill_instances and num_decode_instances instead of replicas, open loop, "
                                "one sample, no speculation")
        if s.sharegpt_multi_turn:  # the disaggregated dispatcher does not hold a turn until the last one ends
            raise ServesimError("sharegpt_multi_turn=True is invalid with num_prefill_instances (P/D "
                                "disaggregation); allowed: false (each turn as its own request), or a colocated run")


def _check_unused(s) -> None:
    """Options of a feature that is off are refused, not silently ignored."""
    if s.pp_microbatches is not None and s.pp == 1:
        raise ServesimError(f"pp_microbatches={s.pp_microbatches} is invalid with pp=1; allowed: unset (micro-batches "
                            "split a pipelined step: set pp > 1)")
    if s.pp_microbatches is not None and s.pp_microbatches > s.max_num_seqs:
        raise ServesimError(f"pp_microbatches={s.pp_microbatches} is invalid; allowed: <= max_num_seqs="
                            f"{s.max_num_seqs} (a micro-batch holds at least one sequence)")
    if s.gpu_link is not None and s.pp == 1 and not s.enable_expert_parallel:
        raise ServesimError(f"gpu_link={s.gpu_link!r} is invalid with pp=1 and no enable_expert_parallel; allowed: "
                            "unset (the link carries pipeline sends and expert all-to-all only)")
    if s.num_prefill_instances is None:
        return
    if s.enable_expert_parallel:
        raise ServesimError("enable_expert_parallel=True is invalid with num_prefill_instances (P/D disaggregation); "
                            "allowed: false (instances are tp-parallel)")
    if s.scheduler == "static":
        raise ServesimError("scheduler='static' is invalid with num_prefill_instances (P/D disaggregation); "
                            "allowed: vllm, sarathi")


def _check_sizes(s) -> None:
    if s.num_prefill_instances is not None:
        n, what = s.num_prefill_instances + s.num_decode_instances, "num_prefill_instances + num_decode_instances"
    else:
        n, what = s.replicas * s.data_parallel_size, "replicas x data_parallel_size"
    if n > MAX_ENGINE_INSTANCES:
        raise ServesimError(f"{what}={n} is invalid; allowed: <= {MAX_ENGINE_INSTANCES} engine instances per run "
                            "(each is simulated; plan finds how many replicas a rate needs)")


def check_pd_options_used(s) -> None:
    """A run without P/D disaggregation refuses P/D options instead of ignoring them (simulate calls
    this; a plan --disaggregated base carries them for the splits it builds)."""
    if s.num_prefill_instances is not None:
        return
    for name, default in COLOCATED.items():
        if getattr(s, name) != default:
            raise ServesimError(f"{name}={getattr(s, name)!r} is invalid without num_prefill_instances; allowed: "
                                f"{default if default is not None else 'unset'} (it configures P/D disaggregation: "
                                "set num_prefill_instances, or plan --disaggregated)")
