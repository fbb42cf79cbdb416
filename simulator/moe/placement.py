"""Expert placement policies: which experts of each MoE layer are resident on the GPU.

Owns the residency state and its update rule. A policy answers "which touched experts miss"
(resident() before the step) and learns what the step fetched (update()); it does not price
anything (cost.py) or decide fetch vs CPU execution. Masks are bool arrays (layers, experts); counts are the step's tokens per expert (touched = counts > 0).

- all_gpu: every expert resident (needs the whole model in GPU memory).
- static: the `total_slots` most popular (layer, expert) pairs resident for the whole run
  (Fiddler, arXiv 2402.07033 Sec. 3: popularity-profiled placement); fetched experts are used
  once and dropped.
- lru: per layer, `slots` experts; a fetched expert is inserted, evicting the least recently
  used one (Eliseev & Mazur, "Fast inference of MoE with offloading", arXiv 2312.17238: LRU
  expert cache). Starts empty (cold).
"""
from __future__ import annotations

from typing import Protocol

import numpy as np


class ExpertPlacement(Protocol):
    name: str

    def resident(self) -> np.ndarray: ...  # (layers, experts) bool; read-only for callers

    def update(self, counts: np.ndarray, fetched: np.ndarray) -> None: ...

    @property
    def num_gpu_experts(self) -> int: ...  # expert weight slots held in GPU memory


class StaticPlacement:
    name = "static"

    def __init__(self, popularity: np.ndarray, total_slots: int):
        if total_slots < 0:
            raise ValueError(f"total_slots must be >= 0, got {total_slots}")
        flat = np.asarray(popularity, dtype=np.float64).ravel()
        keep = np.argsort(-flat, kind="stable")[:total_slots]  # ties: lower (layer, expert) index first
        mask = np.zeros(flat.size, dtype=bool)
        mask[keep] = True
        self._mask = mask.reshape(np.shape(popularity))

    def resident(self) -> np.ndarray:
        return self._mask

    def update(self, counts: np.ndarray, fetched: np.ndarray) -> None:
        pass

    @property
    def num_gpu_experts(self) -> int:
        return int(self._mask.sum())


class AllOnGpu(StaticPlacement):
    """Every expert resident: static placement with a slot for each."""

    name = "all_gpu"

    def __init__(self, num_layers: int, num_experts: int):
        super().__init__(np.ones((num_layers, num_experts)), num_layers * num_experts)


class LruPlacement:
    name = "lru"

    def __init__(self, num_layers: int, num_experts: int, slots: int):
        if not 0 <= slots <= num_experts:
            raise ValueError(f"slots must be in [0, {num_experts}], got {slots}")
        self.slots = slots
        self._mask = np.zeros((num_layers, num_experts), dtype=bool)
        self._last_use = np.full((num_layers, num_experts), -1, dtype=np.int64)
        self._last_tokens = np.zeros((num_layers, num_experts), dtype=np.int64)
        self._tick = 0

    def resident(self) -> np.ndarray:
        return self._mask

    def update(self, counts: np.ndarray, fetched: np.ndarray) -> None:
        self._tick += 1
        touched = counts > 0
        self._last_use[touched] = self._tick
        self._last_tokens[touched] = np.asarray(counts)[touched]
        new = fetched & ~self._mask
        if not new.any():
            return
        mask = self._mask
        mask |= new
        over = mask.sum(axis=1) - self.slots
        for layer in np.flatnonzero(over > 0):
            cand = np.flatnonzero(mask[layer])
            # least recently used first; same step: fewer tokens, then lower index (HF MoE blocks loop
            # over experts in index order, so the higher index ran last)
            order = cand[np.lexsort((cand, self._last_tokens[layer, cand], self._last_use[layer, cand]))]
            mask[layer, order[: over[layer]]] = False

    @property
    def num_gpu_experts(self) -> int:
        return self.slots * self._mask.shape[0]


PLACEMENTS = ("all_gpu", "static", "lru")
