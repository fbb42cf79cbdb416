"""Engine overhead per step: a measured whole forward minus what the profiled kernels price for it.

A real engine spends time its kernels, timed one by one, do not show: Python and dispatch between
ops, allocator page faults on fresh activations, small ops slowed by the caches the big GEMMs
just flushed. Owns turning timed whole steps (profiles/hf_engine.py rows "engine_decode" and
"engine_prefill") into profile rows the cost model adds to every step: "step_overhead"
(num_tokens = decode batch) and "prefill_overhead" (num_tokens = prefill tokens), each the
measured forward minus the kernel-only price that ProfiledCostModel gives the same BatchShape,
so the two can never disagree about which kernels a step runs. A negative residual (noise) is
kept at ~0 and reported in the metadata.
"""
from __future__ import annotations

from profiles.fit import FittedProfile
from profiles.table import ProfileRow, make_shape
from simulator.cost.shape import BatchShape

ENGINE_OPS = ("engine_decode", "engine_prefill")
MIN_OVERHEAD_US = 1e-3  # table times must be > 0


def engine_step_shape(row: ProfileRow) -> BatchShape:
    """The BatchShape the static scheduler builds for this timed forward."""
    s = row.shape
    b = s["batch_size"]
    if row.op == "engine_decode":  # every sequence attends over its cache plus the new token
        return BatchShape(num_decode=b, decode_context_sum=b * (s["context_tokens"] + 1), num_logits=b)
    if row.op == "engine_prefill":
        return BatchShape(prefill_chunks=((s["chunk_tokens"], 0),) * b, num_logits=b)
    raise ValueError(f"not an engine step row: {row.op!r}")


def overhead_rows(kernel_rows: list[ProfileRow], engine_rows: list[ProfileRow], *, model, device, dtype: str,
                  tp: int = 1) -> tuple[list[ProfileRow], list[dict]]:
    """(overhead rows, one record per engine step: forward, kernels and overhead in µs)."""
    from simulator.cost.profiled import ProfiledCostModel
    from simulator.cost.roofline import RooflineCostModel

    fit = FittedProfile.from_rows(kernel_rows, {"device": device.name, "dtype": dtype})
    kernels_only = ProfiledCostModel(RooflineCostModel(model, device, dtype=dtype, tp=tp), fit,
                                     profile_name="kernels", profile_dtype=dtype)
    rows, records = [], []
    for r in engine_rows:
        shape = engine_step_shape(r)
        cost = kernels_only.step_cost(shape)
        kernels_us = (cost.time_s - cost.overhead_s) * 1e6
        overhead_us = r.time_median_us - kernels_us
        op, tokens = (("step_overhead", shape.num_decode) if r.op == "engine_decode"
                      else ("prefill_overhead", shape.num_prefill_tokens))
        rows.append(ProfileRow(op=op, dtype=dtype, shape=make_shape(num_tokens=tokens, num_layers=model.num_layers),
                               time_median_us=max(overhead_us, MIN_OVERHEAD_US), extra=dict(r.extra)))
        records.append({"step": r.op.removeprefix("engine_"), "batch_size": r.shape["batch_size"],
                        "tokens": r.shape["context_tokens"] or r.shape["chunk_tokens"],
                        "forward_us": round(r.time_median_us, 1), "kernels_us": round(kernels_us, 1),
                        "overhead_us": round(overhead_us, 1), "source": cost.source})
    return rows, records
