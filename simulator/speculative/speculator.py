"""The speculator: per-iteration answers of speculative decoding, and the run's counters.

Owns Speculator (one per replica: which gamma for the next iteration, how many drafts each
sequence accepted) and SpecStats (run-wide acceptance counts, gamma choices and the draft /
verify / prefill / realignment time split). gamma policies:
- fixed: num_speculative_tokens draft tokens every iteration.
- adaptive: each iteration picks gamma in 0..num_speculative_tokens maximising expected tokens
  per second, E(gamma) / T(gamma), for the current decode batch (size n, context sum): E from
  the acceptance model (with alpha^n-style minima in min mode), T from the cost model for a
  decode-only step (SmartSpec's goodput rule, Liu et al., arXiv 2406.14066, sec. 4); gamma = 0
  is a plain decode step. Decisions are cached per (n, mean-context bucket of 64 tokens).
advance modes: ragged (each sequence its own accepted count) or min (the whole batch advances by
its minimum accepted count, as padded batch implementations without realignment do).
Composition lives in setup.py, time in cost.py, the decode members in decode_set.py.
"""
from __future__ import annotations

import numpy as np

from simulator.speculative.acceptance import expected_emitted
from simulator.speculative.cost import SpecCostModel
from simulator.speculative.decode_set import SpecBatchShape

CONTEXT_BUCKET = 64


class SpecStats:
    """Run-wide counters (all replicas): per-sequence iterations, proposed/accepted/emitted
    tokens, gamma choices, and the time split of charged steps."""

    def __init__(self, acceptance, gamma_max: int, advance: str):
        self.acceptance, self.advance = acceptance, advance
        self.num_iterations = self.seq_iterations = self.proposed = self.accepted = self.emitted = 0
        self.kept = 0  # drafted tokens the sequences advanced by (min mode: the batch's minimum)
        self.expected_tokens = 0.0
        self.gamma_counts = [0] * (gamma_max + 1)
        self.draft_s = self.verify_s = self.prefill_s = self.realign_s = 0.0
        self._expected: dict[tuple[int, int], float] = {}

    def expected(self, gamma: int, n: int) -> float:
        key = (gamma, n if self.advance == "min" else 1)
        hit = self._expected.get(key)
        if hit is None:
            hit = self._expected[key] = expected_emitted(self.acceptance, gamma, key[1])
        return hit

    def charge(self, verifies: bool, target_s: float, draft_s: float, realign_s: float) -> None:
        if verifies:
            self.verify_s += target_s
        else:
            self.prefill_s += target_s
        self.draft_s += draft_s
        self.realign_s += realign_s

    def record(self, gamma: int, accepted: np.ndarray, emitted: int, verified: int | None = None) -> None:
        """One iteration: `accepted` = draft tokens each sequence advanced by (after the batch
        minimum in min mode), `verified` = draft tokens the target accepted before that minimum
        (None: the same as accepted.sum(), as in ragged mode)."""
        n = len(accepted)
        kept = int(accepted.sum())
        self.num_iterations += 1
        self.seq_iterations += n
        self.proposed += n * gamma
        self.accepted += kept if verified is None else verified
        self.kept += kept
        self.emitted += emitted
        self.expected_tokens += n * self.expected(gamma, n)
        self.gamma_counts[gamma] += 1

    def as_dict(self) -> dict:
        per = (lambda x: x / self.seq_iterations) if self.seq_iterations else (lambda x: float("nan"))
        busy = self.draft_s + self.verify_s + self.prefill_s + self.realign_s
        frac = (lambda x: x / busy) if busy else (lambda x: float("nan"))
        return {
            "num_iterations": self.num_iterations,
            "num_sequence_iterations": self.seq_iterations,
            "num_draft_tokens": self.proposed,
            "num_accepted_tokens": self.accepted,
            "num_kept_draft_tokens": self.kept,
            "num_emitted_tokens": self.emitted,
            # vLLM's spec-decode metrics: draft_acceptance_rate = accepted / draft tokens,
            # system_efficiency = emitted / the most a verify pass could emit, n * (gamma + 1)
            "draft_acceptance_rate": self.accepted / self.proposed if self.proposed else None,
            "kept_draft_fraction": self.kept / self.proposed if self.proposed else None,
            "system_efficiency": (self.kept + self.seq_iterations) / (self.proposed + self.seq_iterations)
            if self.seq_iterations else None,
            "mean_gamma": per(self.proposed),
            "gamma_counts": {str(g): c for g, c in enumerate(self.gamma_counts) if c},
            "mean_accepted_tokens_per_iteration": per(self.kept),
            "mean_tokens_per_iteration": per(self.kept + self.seq_iterations),
            "expected_tokens_per_iteration": per(self.expected_tokens),
            "mean_emitted_tokens_per_iteration": per(self.emitted),
            "draft_time_s": self.draft_s, "verify_time_s": self.verify_s,
            "target_prefill_time_s": self.prefill_s, "realign_time_s": self.realign_s,
            "frac_time_draft": frac(self.draft_s), "frac_time_verify": frac(self.verify_s),
            "frac_time_realign": frac(self.realign_s),
        }


class Speculator:
    """One replica's answers: gamma for the next iteration, accepted counts for the last."""

    def __init__(self, *, gamma_max: int, policy: str, advance: str, acceptance, rng: np.random.Generator,
                 stats: SpecStats, cost: SpecCostModel | None = None):
        if policy == "adaptive" and cost is None:
            raise ValueError("adaptive gamma needs a cost model")
        self.gamma_max, self.policy, self.advance = gamma_max, policy, advance
        self.acceptance, self.rng, self.stats, self.cost = acceptance, rng, stats, cost
        self._choice: dict[tuple[int, int], int] = {}
        self.last_verified = 0

    def choose_gamma(self, n: int, context_sum: int) -> int:
        if self.policy == "fixed" or n == 0:
            return self.gamma_max
        key = (n, context_sum // (n * CONTEXT_BUCKET))
        hit = self._choice.get(key)
        if hit is None:
            rates = [self.stats.expected(g, n) / self.cost.iteration_s(SpecBatchShape((), n, context_sum, n * (g + 1), g))
                     for g in range(self.gamma_max + 1)]
            hit = self._choice[key] = int(np.argmax(rates))  # ties: the smaller gamma
        return hit

    def accepted(self, n: int, gamma: int) -> np.ndarray:
        """Draft tokens each of n sequences advances by. In min mode the target still accepts
        each sequence's own count (kept in `last_verified` for the statistics); the batch then
        advances by the minimum."""
        a = self.acceptance.sample(self.rng, n, gamma) if gamma else np.zeros(n, dtype=np.int64)
        self.last_verified = int(a.sum())
        if self.advance == "min" and n:
            a = np.full(n, a.min(), dtype=np.int64)
        return a

    def record(self, gamma: int, accepted: np.ndarray, emitted: int) -> None:
        self.stats.record(gamma, accepted, emitted, verified=self.last_verified)
