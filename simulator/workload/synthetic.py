"""Synthetic workloads: arrival processes and length distributions, seeded and deterministic.

Owns the WorkloadSpec record, the length-distribution mini-language ("512", "uniform:128:1024",
"normal:MEAN:STD", "lognormal:MEAN:SIGMA", "zipf:A:MAX") and request-table generation for open
loops (Poisson or gamma arrivals at a rate; rate = inf puts every arrival at t = 0). Closed-loop
users are driven by the engine (arrivals depend on completions); here they only get lengths.
Trace files are parsed in traces.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.errors import ServesimError
from simulator.workload.requests import RequestArrays

ARRIVALS = ("poisson", "gamma")
DISTRIBUTIONS = ("constant", "uniform", "normal", "lognormal", "zipf")


MAX_LENGTH_TOKENS = 1e9  # no request is longer; beyond it a parameter is a typo


@dataclass(frozen=True, slots=True)
class LengthDist:
    kind: str
    a: float = 0.0
    b: float = 0.0

    @classmethod
    def parse(cls, text: str | int, *, field: str) -> "LengthDist":
        """'512' | 'uniform:LOW:HIGH' | 'normal:MEAN:STD' | 'lognormal:MEAN:SIGMA' | 'zipf:A:MAX'."""
        parts = str(text).split(":")
        try:
            if len(parts) == 1:
                return cls._checked("constant", float(parts[0]), 0.0, field=field, text=text)
            if len(parts) == 3 and parts[0] in DISTRIBUTIONS[1:]:
                return cls._checked(parts[0], float(parts[1]), float(parts[2]), field=field, text=text)
        except ServesimError:
            raise
        except ValueError:
            pass
        raise ServesimError(
            f"{field}={text!r} is not a length: use an integer, or uniform:LOW:HIGH, normal:MEAN:STD, "
            "lognormal:MEAN:SIGMA (mean tokens, sigma of log), zipf:A:MAX (A > 1)"
        )

    @classmethod
    def _checked(cls, kind: str, a: float, b: float, *, field: str, text) -> "LengthDist":
        if not all(math.isfinite(x) and abs(x) <= MAX_LENGTH_TOKENS for x in (a, b)):
            raise ServesimError(f"{field}={text!r}: parameters must be finite numbers up to {MAX_LENGTH_TOKENS:.0e} tokens")
        ok = {
            "constant": a >= 1 and a == int(a),
            "uniform": 1 <= a <= b,
            "normal": a >= 1 and b >= 0,
            "lognormal": a >= 1 and 0 <= b <= 10,
            "zipf": a > 1 and b >= 1,
        }[kind]
        if not ok:
            raise ServesimError(f"{field}={text!r}: parameters out of range for {kind} (constant: an integer >= 1; "
                               "uniform: 1 <= LOW <= HIGH; normal/lognormal: MEAN >= 1, 0 <= SIGMA (lognormal <= 10); "
                               "zipf: A > 1, MAX >= 1)")
        return cls(kind, a, b)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n integer lengths >= 1."""
        if self.kind == "constant":
            x = np.full(n, self.a)
        elif self.kind == "uniform":
            x = rng.integers(int(self.a), int(self.b) + 1, size=n)
        elif self.kind == "normal":
            x = np.rint(rng.normal(self.a, self.b, size=n))
        elif self.kind == "lognormal":
            mu = math.log(self.a) - self.b**2 / 2  # so that the mean is a
            x = np.rint(rng.lognormal(mu, self.b, size=n))
        else:
            x = np.minimum(rng.zipf(self.a, size=n), self.b)
        return np.maximum(x, 1).astype(np.int64)

    def __str__(self) -> str:
        return str(int(self.a)) if self.kind == "constant" else f"{self.kind}:{self.a:g}:{self.b:g}"


def arrival_times(rng: np.random.Generator, n: int, rate: float, arrival: str, burstiness: float) -> np.ndarray:
    """Open-loop arrival times (s), first at 0. Gamma gaps have shape=burstiness and mean 1/rate
    (vLLM bench serve's definition; burstiness 1 is Poisson, < 1 burstier)."""
    if math.isinf(rate):
        return np.zeros(n)
    if arrival == "poisson":
        gaps = rng.exponential(1.0 / rate, size=n)
    elif arrival == "gamma":
        gaps = rng.gamma(burstiness, 1.0 / (rate * burstiness), size=n)
    else:
        raise ServesimError(f"arrival={arrival!r}; allowed: {', '.join(ARRIVALS)}")
    gaps[0] = 0.0
    return np.cumsum(gaps)


def synthetic_requests(rng: np.random.Generator, *, num_requests: int, rate: float, arrival: str,
                       burstiness: float, prompt: LengthDist, output: LengthDist) -> RequestArrays:
    arrivals = arrival_times(rng, num_requests, rate, arrival, burstiness)
    return RequestArrays(
        arrival_s=arrivals,
        prompt_tokens=prompt.sample(rng, num_requests),
        output_tokens=output.sample(rng, num_requests),
    )
