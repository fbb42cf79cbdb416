"""Step time under speculative decoding: the draft's gamma steps plus the target's verify pass.

Owns the translation of a SpecBatchShape into the target's and the draft's step shapes, charged
by their own cost models (formulas.md, "Speculative decoding"; Leviathan et al., arXiv
2211.17192, sec. 3.4: an iteration costs gamma draft steps + one target pass over gamma + 1
tokens):
- verify pass (target): every decode sequence is a chunk of gamma + 1 query tokens on its KV
  cache, so token ops run over num_prefill_tokens + n*(gamma + 1) tokens, logits over every
  verified position, and attention gives query i of a sequence with context c the c + 1 + i
  keys it sees while its cache is read once (one varlen attention call together with the step's
  prefill chunks). Memory-bound this costs about one decode step; past the critical batch
  n*(gamma + 1) it turns compute-bound and the gain falls on its own.
- draft (own weights, own KV, own device or the target's): gamma decode steps over the same n
  sequences (step i reads c + 1 + i entries each); the step's prefill chunks ride on its first
  pass (the draft must hold every prompt's KV too). Each pass pays the draft's step overhead.
- realignment: an optional calibrated fraction of the iteration's time for padded-batch
  implementations ("Batch Speculative Decoding Done Right": up to ~40% of time).
A gamma = 0 step is a plain decode step of the target (no draft pass; see the report's gaps).
Does not choose gamma or draw acceptances (speculator.py).
"""
from __future__ import annotations

from simulator.cost import (
    BOUND_COMPUTE,
    BOUND_MEMORY,
    BOUND_OVERHEAD,
    SOURCE_NAMES,
    BatchShape,
    CostModel,
    StepCost,
)

ZERO = StepCost(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, BOUND_OVERHEAD, "profile")


def verify_shape(shape: BatchShape) -> BatchShape:
    """The target's pass: prefill chunks + one (gamma + 1)-token chunk per decode sequence.
    Attention is linear in each chunk's context, so the n contexts (sum C) may be lumped."""
    g, n = getattr(shape, "num_spec_tokens", 0), shape.num_decode
    if not g or not n:
        return BatchShape(shape.prefill_chunks, n, shape.decode_context_sum, shape.num_logits)
    kv_tokens = shape.decode_context_sum - n  # decode_context_sum counts each last emitted token too
    verify = ((g + 1, kv_tokens),) + ((g + 1, 0),) * (n - 1)
    return BatchShape(shape.prefill_chunks + verify, 0, 0, shape.num_logits)


def draft_shapes(shape: BatchShape) -> list[BatchShape]:
    """The draft's passes for one step: gamma decode steps (the first also prefills the step's
    prompt chunks); a step without speculation only prefills."""
    g, n = getattr(shape, "num_spec_tokens", 0), shape.num_decode
    finishing = shape.num_logits - n * (g + 1)  # prefills that end this step
    if not g or not n:
        return [BatchShape(shape.prefill_chunks, 0, 0, finishing)] if shape.prefill_chunks else []
    ctx = shape.decode_context_sum
    first = BatchShape(shape.prefill_chunks, n, ctx, n + finishing)
    return [first] + [BatchShape((), n, ctx + i * n, n) for i in range(1, g)]


def combine(parts: list[StepCost], extra_overhead_s: float = 0.0) -> StepCost:
    """Sequential passes as one step: times and work add; the bound is the largest part."""
    compute_s = sum(p.compute_s for p in parts)
    memory_s = sum(p.memory_s for p in parts)
    comm_s = sum(p.comm_s for p in parts)
    overhead_s = sum(p.overhead_s for p in parts) + extra_overhead_s
    other_s = comm_s + overhead_s
    if compute_s >= memory_s:
        bound = BOUND_COMPUTE if compute_s >= other_s else BOUND_OVERHEAD
    else:
        bound = BOUND_MEMORY if memory_s >= other_s else BOUND_OVERHEAD
    source = min((p.source for p in parts), key=SOURCE_NAMES.index, default="roofline")
    return StepCost(compute_s + memory_s + other_s, compute_s, memory_s, comm_s, overhead_s,
                    sum(p.flops for p in parts), sum(p.bytes for p in parts), bound, source)


class SpecCostModel:
    """CostModel for speculative steps; `stats` (speculator.SpecStats or None) accumulates the
    draft / verify / prefill / realignment time split of charged steps."""

    def __init__(self, target: CostModel, draft: CostModel, *, realign_overhead: float = 0.0, stats=None):
        if realign_overhead < 0:
            raise ValueError(f"realign_overhead must be >= 0, got {realign_overhead!r}")
        self.target, self.draft, self.realign_overhead, self.stats = target, draft, realign_overhead, stats

    def parts(self, shape: BatchShape) -> tuple[StepCost, StepCost, float]:
        """(target pass, draft passes combined, realignment seconds) of one step."""
        target = self.target.step_cost(verify_shape(shape))
        drafts = [self.draft.step_cost(d) for d in draft_shapes(shape)]
        draft = combine(drafts) if drafts else ZERO
        speculating = shape.num_decode and getattr(shape, "num_spec_tokens", 0)
        realign_s = self.realign_overhead * (target.time_s + draft.time_s) if speculating else 0.0
        return target, draft, realign_s

    def iteration_s(self, shape: BatchShape) -> float:
        target, draft, realign_s = self.parts(shape)
        return target.time_s + draft.time_s + realign_s

    def step_cost(self, shape: BatchShape) -> StepCost:
        target, draft, realign_s = self.parts(shape)
        if self.stats is not None:
            self.stats.charge(shape.num_decode > 0, target.time_s, draft.time_s, realign_s)
        return combine([target, draft] if draft is not ZERO else [target], realign_s)

    def describe(self) -> dict:
        target = self.target.describe()
        return {"kind": "speculative", "source": target.get("source", "roofline"),
                "known_error": target.get("known_error", ""), "target": target,
                "draft": self.draft.describe(), "realign_overhead": self.realign_overhead}
