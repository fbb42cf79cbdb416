"""What the cost model returns for one engine step, and the protocol every cost model follows.

Owns the StepCost record (seconds split by what bounds them, work done, provenance), the bound
and source codes the step recorder stores, and the CostModel and EvictionTimes protocols. The
roofline (roofline.py), profiled (profiled.py) and feature cost models (speculative, MoE) all
answer step_cost(BatchShape) -> StepCost. Knows no formulas.
"""
from __future__ import annotations

from typing import NamedTuple, Protocol

from simulator.cost.ops import OpCost
from simulator.cost.shape import BatchShape

BOUND_COMPUTE, BOUND_MEMORY, BOUND_OVERHEAD = 0, 1, 2
BOUND_NAMES = ("compute", "memory", "overhead")
SOURCE_NAMES = ("roofline", "transfer", "fit", "profile")  # step record codes, least to most trusted
SOURCE_CODES = {name: i for i, name in enumerate(SOURCE_NAMES)}


class StepCost(NamedTuple):
    """Seconds for one step, split by what bounds each op, with provenance. (A NamedTuple:
    one is built per engine step.)"""

    time_s: float
    compute_s: float  # summed time of ops whose FLOP time exceeds their memory time
    memory_s: float  # summed time of memory-bound ops
    comm_s: float  # tensor-parallel collectives
    overhead_s: float  # fixed per-step (scheduling, launch) time
    flops: float
    bytes: float
    bound: int  # BOUND_COMPUTE | BOUND_MEMORY | BOUND_OVERHEAD: largest of the three parts
    source: str  # "roofline" | "profile" | "fit" (least trusted source among the step's ops)
    evict_s: float = 0.0  # KV-policy bookkeeping (scores, victim selection, compaction); counts as overhead


class EvictionTimes(Protocol):
    """Hook for measured eviction kernels (a profile table): seconds for one eviction op
    (ops.eviction_ops), or None for a shape the table does not cover (roofline is used)."""

    def op_time_s(self, op: OpCost) -> float | None: ...


class CostModel(Protocol):
    def step_cost(self, shape: BatchShape) -> StepCost: ...

    def describe(self) -> dict: ...
