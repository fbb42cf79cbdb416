"""Adaptive speculative gamma against a brute-force search (issue 19).

The oracle enumerates every gamma in 0..gamma_max and, for each, every accepted count k with its
probability (i.i.d. acceptance alpha, Leviathan et al. arXiv 2211.17192 sec. 3.1: P(k) =
alpha^k (1 - alpha) for k < gamma, alpha^gamma for k = gamma; k + 1 tokens emitted). The
iteration time is written out from stub cost models: the target's verify pass costs
a + b x (query tokens) = a + b*n*(gamma + 1), and each of the gamma draft passes costs d
(gamma = 0: a plain decode, no draft pass). The chosen gamma maximises tokens per second,
sum_seq E[emitted] / T (SmartSpec's goodput rule, arXiv 2406.14066 sec. 4); ties go to the
smaller gamma. "min" advance: the batch advances by the minimum of n draws.
"""
import itertools

import numpy as np
import pytest

from simulator.cost.step import BOUND_MEMORY, StepCost
from simulator.speculative.acceptance import IidAcceptance
from simulator.speculative.cost import SpecCostModel
from simulator.speculative.speculator import SpecStats, Speculator


class LinearCost:
    """time = fixed_s + per_token_s x (prefill chunk tokens + decode tokens) of the shape."""

    source = "roofline"

    def __init__(self, fixed_s: float, per_token_s: float = 0.0):
        self.fixed_s, self.per_token_s = fixed_s, per_token_s

    def step_cost(self, shape):
        tokens = sum(c for c, _ in shape.prefill_chunks) + shape.num_decode
        t = self.fixed_s + self.per_token_s * tokens
        return StepCost(t, 0.0, t, 0.0, 0.0, 0.0, 0.0, BOUND_MEMORY, self.source)

    def describe(self):
        return {"kind": "linear", "source": self.source}


def emitted_pmf(alpha: float, gamma: int) -> dict[int, float]:
    """P(emitted = k + 1) for one sequence, by enumerating the accept/reject pattern of the drafts."""
    out: dict[int, float] = {}
    for pattern in itertools.product((True, False), repeat=gamma):
        p = float(np.prod([alpha if ok else 1 - alpha for ok in pattern]))
        k = next((i for i, ok in enumerate(pattern) if not ok), gamma)  # accepted = leading successes
        out[k + 1] = out.get(k + 1, 0.0) + p
    return out


def brute_force_gamma(alpha, gamma_max, n, a, b, d, advance="ragged") -> int:
    best, best_rate = 0, -1.0
    for g in range(gamma_max + 1):
        pmf = emitted_pmf(alpha, g)
        if advance == "ragged":
            per_seq = sum(k * p for k, p in pmf.items())
        else:  # E[min of n draws] = sum_j P(min >= j) = sum_j P(one >= j)^n
            per_seq = sum(sum(p for k, p in pmf.items() if k >= j) ** n for j in range(1, g + 2))
        t = a + b * n * (g + 1) + g * d
        rate = n * per_seq / t
        if rate > best_rate + 1e-12:
            best, best_rate = g, rate
    return best


def chosen(alpha, gamma_max, n, a, b, d, advance="ragged") -> int:
    acc = IidAcceptance(alpha)
    stats = SpecStats(acc, gamma_max, advance)
    cost = SpecCostModel(LinearCost(a, b), LinearCost(d), stats=None)
    spec = Speculator(gamma_max=gamma_max, policy="adaptive", advance=advance, acceptance=acc,
                      rng=np.random.default_rng(0), stats=stats, cost=cost)
    return spec.choose_gamma(n, n * 300)


@pytest.mark.parametrize("alpha, d, expect", [
    (0.6, 0.5, 1),  # rates 1, 1.6/1.5 = 1.067, 1.96/2 = 0.98, ...: one draft token
    (0.8, 0.1, 6),  # 2.952/1.3, 3.362/1.4, 3.689/1.5, 3.951/1.6 = 2.470 (best), 4.161/1.7
    (0.8, 0.0, 8),  # free drafts: propose the most
    (0.3, 0.5, 0),  # 1.3/1.5 < 1: drafting does not pay
    (0.0, 0.01, 0),  # nothing is ever accepted
    (0.0, 0.0, 0),  # every gamma gives 1 token per 1 s: a tie, and ties go to the smaller gamma
])
def test_batch1_against_hand_rates(alpha, d, expect):
    """Target pass 1 s flat, draft pass d s: rate(g) = E(g) / (1 + g*d)."""
    assert brute_force_gamma(alpha, 8, 1, 1.0, 0.0, d) == expect
    assert chosen(alpha, 8, 1, 1.0, 0.0, d) == expect


@pytest.mark.parametrize("alpha, gamma_max, n, a, b, d, advance", [
    (0.7, 6, 4, 0.02, 0.001, 0.004, "ragged"),
    (0.7, 6, 32, 0.02, 0.001, 0.004, "ragged"),  # verify tokens grow with n(g+1): smaller gamma
    (0.9, 5, 16, 0.01, 0.0002, 0.003, "ragged"),
    (0.9, 5, 8, 0.01, 0.0002, 0.001, "min"),
    (0.6, 5, 4, 0.01, 0.0, 0.002, "min"),
    (0.95, 7, 2, 0.05, 0.0005, 0.02, "ragged"),
])
def test_against_brute_force_search(alpha, gamma_max, n, a, b, d, advance):
    assert chosen(alpha, gamma_max, n, a, b, d, advance) == brute_force_gamma(alpha, gamma_max, n, a, b, d, advance)


def test_draft_time_moves_the_choice():
    """Same acceptance and target: the dearer the draft, the smaller the gamma (and the oracle agrees)."""
    picks = [chosen(0.8, 8, 1, 1.0, 0.0, d) for d in (0.0, 0.05, 0.1, 0.3, 0.6)]
    assert picks == [brute_force_gamma(0.8, 8, 1, 1.0, 0.0, d) for d in (0.0, 0.05, 0.1, 0.3, 0.6)]
    assert picks == sorted(picks, reverse=True) and picks[0] == 8 and picks[-1] < 3
