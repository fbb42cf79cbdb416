"""Acceptance models for speculative decoding: how many of gamma draft tokens the target accepts.

Owns the three models (one question each: "how many accepted?") and the histogram file
format. Each model answers `sample(rng, n, gamma)` -> accepted counts a in {0..gamma} for n
sequences (ragged: one draw per sequence), and `survival(j)` = P(a >= j) for an unbounded
draft, so expectations are exact: E[emitted] = sum_{j=0..gamma} P(a >= j) (a accepted + the
bonus/corrected token). Does not decide gamma or charge time (speculator.py, cost.py).

- IidAcceptance(alpha): every draft token accepted with probability alpha, independently
  (Leviathan et al., arXiv 2211.17192, sec. 3.1): P(a >= j) = alpha^j.
- PositionalAcceptance(rates): rates[j-1] = P(token j accepted | tokens 1..j-1 accepted); the
  last rate repeats beyond the list. P(a >= j) = prod(rates[:j]).
- HistogramAcceptance(weights): weights[k] ~ P(a = k) as measured (e.g. vLLM's spec-decode
  metrics at some gamma_h = len(weights) - 1). With gamma < gamma_h the draw is min(a, gamma):
  accepting the first j tokens does not depend on whether more were proposed.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Protocol

import numpy as np

from simulator.errors import ServesimError


class AcceptanceModel(Protocol):
    def sample(self, rng: np.random.Generator, n: int, gamma: int) -> np.ndarray: ...

    def survival(self, j: int) -> float: ...

    def describe(self) -> dict: ...


def expected_emitted(model: AcceptanceModel, gamma: int, batch: int = 1) -> float:
    """E[tokens emitted per sequence per iteration] = sum_{j=0..gamma} P(a >= j)^batch.

    batch=1: ragged advance (Leviathan et al. eq. 1 for the i.i.d. model:
    (1 - alpha^(gamma+1)) / (1 - alpha)); batch=b: the whole batch advances by the minimum of b
    independent draws, P(min >= j) = P(a >= j)^b (formulas.md, "Speculative decoding")."""
    return float(sum(model.survival(j) ** batch for j in range(gamma + 1)))


def _leading_successes(accept: np.ndarray) -> np.ndarray:
    """Per row, the number of True values before the first False (row length if none)."""
    if accept.shape[1] == 0:
        return np.zeros(accept.shape[0], dtype=np.int64)
    rejected = ~accept
    first = rejected.argmax(axis=1)
    return np.where(rejected.any(axis=1), first, accept.shape[1]).astype(np.int64)


class IidAcceptance:
    def __init__(self, alpha: float):
        if not 0.0 <= alpha <= 1.0:
            raise ServesimError(f"acceptance_rate={alpha!r} is invalid; allowed: a probability in [0, 1]")
        self.alpha = float(alpha)

    def survival(self, j: int) -> float:
        return self.alpha**j

    def sample(self, rng: np.random.Generator, n: int, gamma: int) -> np.ndarray:
        if self.alpha >= 1.0:
            return np.full(n, gamma, dtype=np.int64)
        # trials until the first rejection (success prob 1 - alpha), minus one: P(>= j) = alpha^j
        a = rng.geometric(1.0 - self.alpha, size=n) - 1
        return np.minimum(a, gamma).astype(np.int64)

    def describe(self) -> dict:
        return {"kind": "iid", "acceptance_rate": self.alpha}


class PositionalAcceptance:
    def __init__(self, rates: tuple[float, ...]):
        if not rates or any(not 0.0 <= r <= 1.0 for r in rates):
            raise ServesimError(
                f"acceptance_position_rates={rates!r} is invalid; allowed: one or more probabilities in [0, 1]")
        self.rates = tuple(float(r) for r in rates)

    def _rates(self, gamma: int) -> np.ndarray:
        r = np.array(self.rates[:gamma], dtype=np.float64)
        return np.concatenate([r, np.full(max(0, gamma - len(r)), self.rates[-1])])

    def survival(self, j: int) -> float:
        return float(np.prod(self._rates(j)))

    def sample(self, rng: np.random.Generator, n: int, gamma: int) -> np.ndarray:
        return _leading_successes(rng.random((n, gamma)) < self._rates(gamma))

    def describe(self) -> dict:
        return {"kind": "per_position", "acceptance_position_rates": list(self.rates)}


class HistogramAcceptance:
    def __init__(self, weights, origin: str = "histogram"):
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 1 or len(w) == 0 or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise ServesimError(
                f"{origin}: accepted-length histogram must be >= 1 non-negative finite weights with a "
                f"positive sum (index = accepted tokens), got {[float(x) for x in w.ravel()]!r}")
        self.origin = origin
        self.pmf = w / w.sum()
        self._survival = np.concatenate([self.pmf[::-1].cumsum()[::-1], [0.0]])  # P(a >= j)

    def survival(self, j: int) -> float:
        return float(self._survival[min(j, len(self._survival) - 1)])

    def sample(self, rng: np.random.Generator, n: int, gamma: int) -> np.ndarray:
        a = rng.choice(len(self.pmf), size=n, p=self.pmf)
        return np.minimum(a, gamma).astype(np.int64)

    def describe(self) -> dict:
        return {"kind": "histogram", "file": self.origin, "pmf": [float(p) for p in self.pmf]}


MAX_ACCEPTED = 4096  # far beyond any draft length; bounds the pmf array


def load_histogram(path: str | Path) -> HistogramAcceptance:
    """Accepted-length histogram from a file.

    JSON: a list of weights indexed by accepted tokens ([w0, w1, ...]) or an object
    {"0": w0, "1": w1, ...}. CSV: a header row, then rows `accepted_tokens,count` (any
    non-negative weights; missing lengths count 0)."""
    path = Path(path)
    if path.is_dir():
        raise ServesimError(f"acceptance_histogram file {str(path)!r} is a directory; expected a .json or .csv file")
    if not path.is_file():
        raise ServesimError(f"acceptance_histogram file {str(path)!r} does not exist")
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise ServesimError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected a JSON list "
                            "of weights or CSV rows `accepted_tokens,count` after a header") from None
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(text)
            pairs = raw.items() if isinstance(raw, dict) else enumerate(raw)
        else:
            rows = [r for r in csv.reader(text.splitlines()) if r and r[0].strip()]
            pairs = [(r[0], r[1]) for r in rows[1:]]
        table = {int(k): float(v) for k, v in pairs}
    except (ValueError, IndexError, TypeError, json.JSONDecodeError) as exc:
        raise ServesimError(
            f"{path}: not an accepted-length histogram ({exc}); expected a JSON list of weights "
            "or CSV rows `accepted_tokens,count` after a header") from None
    if not table or min(table) < 0 or max(table) > MAX_ACCEPTED:
        raise ServesimError(f"{path}: accepted token counts must be integers in [0, {MAX_ACCEPTED}], "
                            f"got {sorted(table)[:10]}")
    weights = [table.get(k, 0.0) for k in range(max(table) + 1)]
    return HistogramAcceptance(weights, origin=str(path))


def parse_rates(text: str) -> tuple[float, ...]:
    """'0.9,0.8,0.7' -> (0.9, 0.8, 0.7)."""
    try:
        return tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise ServesimError(
            f"acceptance_position_rates={text!r} is invalid; allowed: comma-separated probabilities "
            "such as 0.9,0.8,0.7") from None
