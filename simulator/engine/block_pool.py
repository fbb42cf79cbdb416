"""Paged KV cache: a pool of fixed-size blocks with exact block ids.

Owns the free list and the block arithmetic. Block ids are handed out from the front of the
free queue and returned to its back (vLLM's free-block queue order), so tests can predict ids.
Does not decide who gets blocks (schedulers) or how big the pool is (memory_plan.py).
"""
from __future__ import annotations

from collections import deque


class BlockPool:
    def __init__(self, num_blocks: int, block_size: int):
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self._free: deque[int] = deque(range(num_blocks))
        self._extra_refs: dict[int, int] = {}  # block -> owners beyond the first (prefix sharing)

    @property
    def num_free(self) -> int:
        return len(self._free)

    @property
    def num_used(self) -> int:
        return self.num_blocks - len(self._free)

    def blocks_for(self, num_tokens: int) -> int:
        """Blocks needed to hold `num_tokens` tokens."""
        return -(-num_tokens // self.block_size)

    def allocate(self, n: int) -> list[int]:
        if n > len(self._free):
            raise RuntimeError(f"allocate({n}) with only {len(self._free)} free blocks")
        pop = self._free.popleft
        return [pop() for _ in range(n)]

    def allocate_one(self) -> int:
        return self._free.popleft()

    def share(self, block_ids: list[int]) -> list[int]:
        """One more owner for each block (a sample sharing its group's prompt); returns them."""
        refs = self._extra_refs
        for b in block_ids:
            refs[b] = refs.get(b, 0) + 1
        return list(block_ids)

    def free(self, block_ids: list[int]) -> None:
        """Drop one owner of each block; a block returns to the free queue with its last owner."""
        refs = self._extra_refs
        if not refs:
            self._free.extend(block_ids)
            return
        for b in block_ids:
            n = refs.get(b)
            if n is None:
                self._free.append(b)
            elif n == 1:
                del refs[b]
            else:
                refs[b] = n - 1
