"""Validation of the scenario fields of parallelism beyond TP and of P/D disaggregation.

Owns the allowed values of pp, pp_microbatches, data_parallel_size, enable_expert_parallel,
num_prefill_instances, num_decode_instances, prefill_tp, decode_tp and kv_transfer_overlap; each
error names the field, its value and what is allowed (scenario.py calls this from __post_init__).
Checks that need the model (divisibility by layers, experts) live in setup.py.
"""
from __future__ import annotations

from simulator.errors import ServesimError

KV_TRANSFER_OVERLAP = ("async", "blocking")  # simulator/disagg/transfer.py


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
    if s.kv_transfer_overlap not in KV_TRANSFER_OVERLAP:
        raise ServesimError(f"kv_transfer_overlap={s.kv_transfer_overlap!r} is invalid; allowed: "
                            f"{', '.join(KV_TRANSFER_OVERLAP)}")
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
