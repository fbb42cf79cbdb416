"""The host-memory tier of the prefix cache: evicted cached blocks spill here and come back on a hit.

As vLLM's CPU KV offloading (`--kv-offloading-size`, GiB of host memory) and LMCache's local CPU
backend: a GPU block the prefix cache evicts is kept in host memory by its block hash (LRU over a
fixed number of blocks); a later request whose prefix continues into host-held blocks gets them
copied back over the device's host link instead of recomputing them. Owns the host LRU, its
counters and the transfer time; the GPU side is prefix_cache.py.

Time: a fetch of n blocks costs n * block_bytes / host_link_bytes_per_s, charged to the step that
admits the request (as swap-in, sequence_pool.SwapSpace). The spill (GPU -> host copy at eviction)
is not charged: vLLM's offloading connector and LMCache store asynchronously, overlapped with compute.
"""
from __future__ import annotations

from collections import OrderedDict


class HostKvTier:
    """Host LRU of block hashes: `num_blocks` blocks of `block_bytes`, fetched at `link_bytes_per_s`."""

    def __init__(self, num_blocks: int, block_bytes: int, link_bytes_per_s: float):
        if num_blocks < 0 or block_bytes < 1 or not link_bytes_per_s > 0:
            raise ValueError(f"HostKvTier(num_blocks={num_blocks}, block_bytes={block_bytes}, "
                             f"link_bytes_per_s={link_bytes_per_s}): need >= 0 blocks, >= 1 byte, > 0 B/s")
        self.num_blocks, self.block_bytes, self.link_bytes_per_s = num_blocks, block_bytes, link_bytes_per_s
        self._lru: OrderedDict[int, None] = OrderedDict()  # front: least recently used
        self.num_spilled = self.num_evicted = self.num_fetched = 0
        self.fetch_s = 0.0

    def __contains__(self, key: int) -> bool:
        return key in self._lru

    def __len__(self) -> int:
        return len(self._lru)

    def put(self, key: int) -> None:
        """Keep an evicted GPU block's content (most recently used); the LRU block leaves when full."""
        lru = self._lru
        if key in lru:
            lru.move_to_end(key)
            return
        if not self.num_blocks:
            return
        if len(lru) >= self.num_blocks:
            lru.popitem(last=False)
            self.num_evicted += 1
        lru[key] = None
        self.num_spilled += 1

    def fetch(self, keys) -> float:
        """Copy these host blocks back to the GPU (they stay here too, most recently used); seconds."""
        lru, n = self._lru, 0
        for key in keys:
            lru.move_to_end(key)
            n += 1
        seconds = n * self.block_bytes / self.link_bytes_per_s
        self.num_fetched += n
        self.fetch_s += seconds
        return seconds
