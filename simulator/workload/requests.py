"""The request table every workload produces: arrival time, prompt and output lengths.

Owns the array container and its validation; does not generate or parse anything.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import ServesimError


@dataclass(frozen=True, slots=True)
class RequestArrays:
    """Column arrays, one row per request, sorted by arrival (seconds since run start)."""

    arrival_s: np.ndarray  # float64, non-decreasing, >= 0
    prompt_tokens: np.ndarray  # int64, >= 1
    output_tokens: np.ndarray  # int64, >= 1
    group: np.ndarray | None = None  # Best-of-N: index of the row whose prompt this sample shares
    # prefix identity (workload/prefix.py): per row, a tuple of (chunk_id, num_tokens) its content starts
    # with; None: no row shares content with another (prefix caching finds nothing)
    prefix: list | None = None

    def __post_init__(self) -> None:
        n = len(self.arrival_s)
        if self.group is not None and len(self.group) != n:
            raise ServesimError(f"group column has {len(self.group)} rows, expected {n}")
        if self.prefix is not None and len(self.prefix) != n:
            raise ServesimError(f"prefix column has {len(self.prefix)} rows, expected {n}")
        if len(self.prompt_tokens) != n or len(self.output_tokens) != n:
            raise ServesimError(
                f"request columns differ in length: arrival_s={n}, "
                f"prompt_tokens={len(self.prompt_tokens)}, output_tokens={len(self.output_tokens)}"
            )
        if n and (np.any(self.prompt_tokens < 1) or np.any(self.output_tokens < 1)):
            raise ServesimError("prompt_tokens and output_tokens must be >= 1 for every request")
        if n and (np.any(~np.isfinite(self.arrival_s)) or np.any(self.arrival_s < 0)):
            raise ServesimError("arrival_s must be finite and >= 0 for every request")
        if n > 1 and np.any(np.diff(self.arrival_s) < 0):
            raise ServesimError("arrival_s must be sorted (non-decreasing)")

    def __len__(self) -> int:
        return len(self.arrival_s)

    def fan_out(self, samples: int, output_tokens: np.ndarray) -> "RequestArrays":
        """Each row becomes `samples` consecutive rows sharing its arrival and prompt; row i*samples
        leads its group. `output_tokens` gives every sample's own length."""
        idx = np.repeat(np.arange(len(self)), samples)
        return RequestArrays(self.arrival_s[idx], self.prompt_tokens[idx], np.asarray(output_tokens, np.int64),
                             group=(idx * samples).astype(np.int64))

    @classmethod
    def from_columns(cls, arrival_s, prompt_tokens, output_tokens, prefix: list | None = None) -> "RequestArrays":
        """Build from any sequences; sorts by arrival (stable) and shifts the first to t=0
        (`prefix`, when given, is reordered with the rows)."""
        a = np.asarray(arrival_s, dtype=np.float64)
        p = np.asarray(prompt_tokens, dtype=np.int64)
        o = np.asarray(output_tokens, dtype=np.int64)
        if len(a) != len(p) or len(a) != len(o):
            raise ServesimError(
                f"request columns differ in length: {len(a)}, {len(p)}, {len(o)}"
            )
        order = np.argsort(a, kind="stable")
        a, p, o = a[order], p[order], o[order]
        if len(a):
            a = a - a[0]
        if prefix is not None:
            prefix = [prefix[i] for i in order.tolist()]
        return cls(arrival_s=a, prompt_tokens=p, output_tokens=o, prefix=prefix)
