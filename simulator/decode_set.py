"""Sequences in the decode phase as parallel numpy arrays (one slot per sequence).

Owns slot storage with swap-remove so the hot loop updates every running sequence with a few
vector operations instead of a Python loop per token. Block tables live in SequencePool.
"""
from __future__ import annotations

import numpy as np

FIELDS_INT = ("req", "ctx", "remaining", "nblocks", "order")


class DecodeSet:
    """req: request id; ctx: tokens in the KV cache; remaining: output tokens still to emit;
    nblocks: KV blocks held; order: admission counter (higher = preempted first);
    last_token_s: time of the sequence's latest token."""

    def __init__(self, capacity: int = 64):
        self.n = 0
        self._alloc(capacity)

    def _alloc(self, capacity: int) -> None:
        old = {f: getattr(self, f, None) for f in (*FIELDS_INT, "last_token_s")}
        for f in FIELDS_INT:
            setattr(self, f, np.zeros(capacity, dtype=np.int64))
        self.last_token_s = np.zeros(capacity, dtype=np.float64)
        for f, arr in old.items():
            if arr is not None:
                getattr(self, f)[: self.n] = arr[: self.n]

    def add(self, req: int, ctx: int, remaining: int, nblocks: int, order: int, last_token_s: float) -> None:
        i = self.n
        if i == len(self.req):
            self._alloc(2 * len(self.req))
        self.req[i], self.ctx[i], self.remaining[i] = req, ctx, remaining
        self.nblocks[i], self.order[i], self.last_token_s[i] = nblocks, order, last_token_s
        self.n = i + 1

    def remove(self, slot: int) -> None:
        """Swap-remove: the last slot moves into `slot`."""
        last = self.n - 1
        if slot != last:
            for f in FIELDS_INT:
                arr = getattr(self, f)
                arr[slot] = arr[last]
            self.last_token_s[slot] = self.last_token_s[last]
        self.n = last

    def row(self, slot: int) -> tuple[int, int, int, int, int, float]:
        return (int(self.req[slot]), int(self.ctx[slot]), int(self.remaining[slot]),
                int(self.nblocks[slot]), int(self.order[slot]), float(self.last_token_s[slot]))
