"""The KV-policy protocol the engine drives: phases of held and read tokens per sequence.

Owns what the engine needs from a KV-cache policy (kv/ implements it): KvPolicy (the protocol),
Phase (a stretch of decode steps over which a sequence's held and read KV counts each grow by 0
or 1 per step, then an optional compression) and PhaseCursor (one sequence walking its phases).
DecodeSet, SequencePool and StaticScheduler advance phases in O(1) per step. A dense cache is
policy None: one endless phase. Knows no policy (kv/policies.py) and no seconds.
"""
from __future__ import annotations

from typing import NamedTuple, Protocol

from simulator.cost import KvWork
from simulator.models import ModelSpec

INF = 1 << 62  # "until the sequence ends"


class Phase(NamedTuple):
    """`steps` decode steps; at the j-th (0-based) step the sequence holds held0 + held_slope*j KV
    tokens and its attention reads read0 + read_slope*j; afterwards it keeps `retained_end`
    (smaller than the last held count: a compression)."""

    steps: int
    read0: int
    read_slope: int
    held0: int
    held_slope: int
    retained_end: int


class KvPolicy(Protocol):
    """A KV-cache policy (kv/policies.py): budgets, phases, peaks, metadata and bookkeeping work."""

    name: str

    def seq_budget(self, prompt: int, output: int): ...

    def after_prefill(self, tokens: int, budget) -> int: ...

    def phase(self, retained: int, budget) -> Phase: ...

    def decode_peak_tokens(self, prompt: int, output: int) -> int: ...

    def peak_tokens(self, prompt: int, output: int) -> int: ...

    def metadata_bytes_per_token(self, model: ModelSpec, beta: float, tp: int) -> float: ...

    def decode_work(self, read_sum: int, held_sum: int, steady_held_sum: int, compress_held_sum: int,
                    compress_kept_sum: int) -> KvWork | None: ...

    def prefill_work(self, chunks, finishing) -> KvWork | None: ...

    def describe(self) -> dict: ...


class PhaseCursor:
    """One sequence (or a padded batch of identical ones) walking its phases step by step."""

    __slots__ = ("policy", "budget", "phase", "j")

    def __init__(self, policy: KvPolicy, retained: int, budget):
        self.policy, self.budget = policy, budget
        self.phase, self.j = policy.phase(retained, budget), 0

    @property
    def read(self) -> int:
        return self.phase.read0 + self.phase.read_slope * self.j

    @property
    def held(self) -> int:
        return self.phase.held0 + self.phase.held_slope * self.j

    @property
    def evicting(self) -> bool:
        """Steady state: the held count no longer grows (one victim per step)."""
        return self.phase.held_slope == 0

    @property
    def compressing(self) -> bool:
        """This step ends the phase with a compression."""
        return self.j == self.phase.steps - 1 and self.phase.retained_end < self.held

    def advance(self) -> None:
        self.j += 1
        if self.j == self.phase.steps:
            self.phase, self.j = self.policy.phase(self.phase.retained_end, self.budget), 0
