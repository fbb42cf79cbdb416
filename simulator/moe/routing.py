"""MoE routing: which experts each step's tokens go to, per MoE layer.

Owns the routing distribution (uniform, Zipf-skewed, or a measured per-layer expert-popularity
file) as per-layer inclusion probabilities pi[l, e] = P(a token routes to expert e in layer l),
summing to top_k per layer, and the seeded per-step draws of tokens per expert. Does not decide
where experts live (placement.py) or what they cost (cost.py).

Step draws (`draw`): small steps (tokens x experts <= EXACT_DRAW_LIMIT) route every token
exactly: top_k distinct experts per token by systematic sampling in a random order (a fixed-size
design whose inclusion probabilities are exactly pi; Tille, "Sampling Algorithms", 2006, Sec. 7.2).
Larger steps draw each expert's count as Binomial(T, pi_e), independently across experts: every
marginal stays exact (expected distinct experts sum_e 1-(1-pi_e)^T, for uniform routing
formulas.md's E*(1-(1-k/E)^T)) but counts sum to T*k only on average (relative error ~1/sqrt(T*k)).
Cost: O(layers x tokens x experts) exact, O(layers x experts) binomial.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.errors import ServesimError

EXACT_DRAW_LIMIT = 1024  # tokens x experts up to which each token is routed individually


@dataclass(frozen=True, slots=True, eq=False)
class RoutingModel:
    """Per-layer inclusion probabilities (layers x experts), each row summing to top_k."""

    name: str
    inclusion: np.ndarray
    top_k: int

    def __post_init__(self) -> None:
        pi = self.inclusion
        if pi.ndim != 2 or pi.shape[1] < self.top_k or self.top_k < 1:
            raise ValueError(f"inclusion must be (layers, experts>=top_k), got {pi.shape} with top_k={self.top_k}")
        if np.any(pi < 0) or np.any(pi > 1 + 1e-12) or not np.allclose(pi.sum(axis=1), self.top_k):
            raise ValueError("inclusion probabilities must lie in [0, 1] and sum to top_k per layer")

    @property
    def num_layers(self) -> int:
        return self.inclusion.shape[0]

    @property
    def num_experts(self) -> int:
        return self.inclusion.shape[1]

    def draw(self, rng: np.random.Generator, tokens: int) -> np.ndarray:
        """Tokens routed to each expert of each layer this step: int64 array (layers, experts)."""
        if tokens * self.num_experts <= EXACT_DRAW_LIMIT:
            return route_counts(rng, self.inclusion, self.top_k, tokens)
        return rng.binomial(tokens, self.inclusion)

    def expected_distinct(self, tokens: int) -> np.ndarray:
        """Expected distinct experts touched per layer by `tokens` tokens."""
        return (1.0 - (1.0 - self.inclusion) ** tokens).sum(axis=1)


def route_counts(rng: np.random.Generator, inclusion: np.ndarray, top_k: int, tokens: int) -> np.ndarray:
    """Exact per-token routing: each token picks top_k distinct experts per layer, expert e with
    probability inclusion[l, e] (systematic sampling over a random expert order); returns the
    tokens per expert, int64 (layers, experts)."""
    layers, experts = inclusion.shape
    order = np.argsort(rng.random((layers, tokens, experts)), axis=2)
    pi = np.take_along_axis(np.broadcast_to(inclusion[:, None, :], order.shape), order, axis=2)
    cum = np.cumsum(pi, axis=2)
    cum[..., -1] = top_k  # exact total: the grid u, u+1, ..., u+k-1 falls in [0, k)
    u = rng.random((layers, tokens, 1))
    hits = np.floor(cum - u)
    picked = np.diff(hits, axis=2, prepend=np.floor(-u))  # 1 where a grid point falls in the expert's interval
    index = order + (np.arange(layers) * experts)[:, None, None]
    return np.bincount(index.ravel(), weights=picked.ravel(), minlength=layers * experts).reshape(
        layers, experts).astype(np.int64)


def cap_inclusion(weights: np.ndarray, top_k: int) -> np.ndarray:
    """Inclusion probabilities proportional to `weights` (per row), scaled to sum to top_k and
    capped at 1 (the excess of a capped expert is shared by the rest in proportion)."""
    w = np.asarray(weights, dtype=np.float64)
    out = np.zeros_like(w)
    for row in range(w.shape[0]):
        free = np.ones(w.shape[1], dtype=bool)
        need = float(top_k)
        while True:
            pi = np.where(free, w[row] / w[row][free].sum() * need, 0.0)
            over = free & (pi >= 1.0)
            if not over.any():
                out[row] = np.where(free, pi, 1.0)
                break
            free &= ~over
            need = top_k - float((~free).sum())
    return out


def load_routing(spec: str, *, num_layers: int, num_experts: int, top_k: int) -> RoutingModel:
    """`uniform`, `zipf:S` (expert i of every layer weighted 1/(i+1)^S), or a JSON popularity file
    {"expert_popularity": [[count per expert] per layer]} (Fiddler's profile format)."""
    if spec == "uniform":
        return RoutingModel("uniform", np.full((num_layers, num_experts), top_k / num_experts), top_k)
    if spec.startswith("zipf:"):
        try:
            s = float(spec[5:])
        except ValueError:
            s = -1.0
        if not s > 0:
            raise ServesimError(f"expert_routing={spec!r}: Zipf exponent must be a number > 0, e.g. zipf:1.2")
        w = np.tile(1.0 / np.arange(1, num_experts + 1) ** s, (num_layers, 1))
        return RoutingModel(spec, cap_inclusion(w, top_k), top_k)
    return _from_file(Path(spec), num_layers, num_experts, top_k)


def _from_file(path: Path, num_layers: int, num_experts: int, top_k: int) -> RoutingModel:
    if not path.is_file():
        raise ServesimError(f"expert_routing={str(path)!r}: not 'uniform', 'zipf:S' or an existing popularity JSON file")
    try:
        counts = np.asarray(json.loads(path.read_text())["expert_popularity"], dtype=np.float64)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ServesimError(f"{path}: expected JSON with 'expert_popularity': [[count per expert] per layer] ({exc})") from None
    if counts.shape != (num_layers, num_experts):
        raise ServesimError(f"{path}: expert_popularity has shape {counts.shape}; the model needs "
                            f"({num_layers} MoE layers, {num_experts} experts)")
    if np.any(counts < 0) or np.any(counts.sum(axis=1) <= 0):
        raise ServesimError(f"{path}: popularity counts must be >= 0 with a positive total per layer")
    counts = counts + 1e-9  # an expert never seen keeps a tiny chance (log(0) free draws)
    return RoutingModel(str(path), cap_inclusion(counts, top_k), top_k)
