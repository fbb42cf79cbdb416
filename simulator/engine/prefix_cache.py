"""Automatic prefix caching: a KV block pool whose full blocks are cached by content (vLLM's APC).

vLLM v1's design (docs, "Automatic Prefix Caching"; vllm/v1/core/block_pool.py, kv_cache_manager.py):
- every full block of a request gets a hash of (its parent block's hash, its token ids); here the
  hashes come from the workload's prefix identity (workload/prefix.py block_keys, per request);
- a block is cached (hash -> block) once its tokens are computed; blocks are shared by reference
  count while running requests hold them;
- freed blocks join the tail of the free queue but keep their hash (free-but-cached); a request
  frees its blocks in reverse order, so its tail blocks are evicted first;
- allocation pops the head of the free queue (least recently freed first) and evicts its hash;
- a new request's longest run of cached leading blocks is its prefix hit; at most
  (num_tokens - 1) // block_size blocks, so at least the last token is recomputed and gives logits.
With a host tier (kv_offload.py) evicted hashes spill to host memory and a hit continues into it.

Same interface as block_pool.BlockPool (the engine does not know which it has) plus match/apply/
cache/release, used by sequence_pool.SequencePool when `prefix_caching` is True. Block ids are exact
(the free queue starts 0..num_blocks-1), so tests can predict hits and evictions. 
SglangBlockPool: the same cache with SGLang RadixCache's eviction order (sglang/srt/mem_cache/
radix_cache.py): never-cached free slots are used first and cached content is evicted only when they
run out, least recently used first (leaves before their parents: a parent is freed with or after its
children, as requests free tail-first). Its matching is page-granular (SGLang `--page-size` =
block_size); SGLang's default token-granular match (page size 1) is not modelled.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from simulator.engine.block_pool import BlockPool
from simulator.engine.kv_offload import HostKvTier


@dataclass(frozen=True, slots=True)
class PrefixHit:
    """A request's cached prefix: GPU blocks, then blocks found in the host tier."""

    gpu_blocks: tuple[int, ...]
    num_host: int = 0
    num_evictable: int = 0  # of gpu_blocks, those in the free queue (allocating them removes free blocks)

    @property
    def num_blocks(self) -> int:
        return len(self.gpu_blocks) + self.num_host


class PrefixCachingBlockPool(BlockPool):
    """BlockPool's interface (num_free, num_used, blocks_for, allocate, free, ...) over blocks that
    keep their content hash after their last owner leaves, until allocation evicts them."""

    prefix_caching = True

    def __init__(self, num_blocks: int, block_size: int, keys: Callable[[int], tuple[int, ...]],
                 host: HostKvTier | None = None):
        """keys(request) -> the request's block hashes (workload/prefix.py RequestBlockKeys; its
        optional forget(request) is called when the request gives its blocks back);
        host: the offload tier (None: evicted blocks are gone)."""
        super().__init__(num_blocks, block_size)  # validates the sizes
        self.keys, self.host = keys, host
        self._forget = getattr(keys, "forget", None)  # keys(request) may drop a departed request's keys
        self._free: OrderedDict[int, None] = OrderedDict.fromkeys(range(num_blocks))  # head: next to allocate
        self._ref = [0] * num_blocks
        self._key_of: dict[int, int] = {}  # cached block -> its hash
        self._block_of: dict[int, int] = {}  # hash -> cached block
        self.query_tokens = self.query_blocks = self.num_evicted = 0
        self.gpu_hit_blocks = self.host_hit_blocks = 0

    # ---- BlockPool interface (num_free counts cached free blocks: allocation can use them) ----
    @property
    def num_cached(self) -> int:
        return len(self._key_of)

    def allocate(self, n: int) -> list[int]:
        if n > len(self._free):
            raise RuntimeError(f"allocate({n}) with only {len(self._free)} free blocks")
        return [self.allocate_one() for _ in range(n)]

    def allocate_one(self) -> int:
        b, _ = self._free.popitem(last=False)
        key = self._key_of.pop(b, None)
        if key is not None:  # evict the least recently freed cached block
            del self._block_of[key]
            self.num_evicted += 1
            if self.host is not None:
                self.host.put(key)
        self._ref[b] = 1
        return b

    def share(self, block_ids: list[int]) -> list[int]:
        raise NotImplementedError("prefix caching with Best-of-N sharing (the scenario rejects it)")

    def free(self, block_ids: list[int]) -> None:
        """Drop one holder of each block, last block first (vLLM: tail blocks are evicted first)."""
        ref, free = self._ref, self._free
        for b in reversed(block_ids):
            n = ref[b] - 1
            ref[b] = n
            if n == 0:
                free[b] = None

    def _unfree(self, b: int) -> None:
        """A free cached block is held again (a hit): it leaves the free queue."""
        del self._free[b]

    # ---- prefix caching ----------------------------------------------------------------------
    def match(self, req: int, num_tokens: int) -> PrefixHit:
        """The cached prefix of request `req` about to prefill `num_tokens` tokens (no side effects)."""
        keys = self.keys(req)
        limit = min(len(keys), (num_tokens - 1) // self.block_size)
        block_of, gpu = self._block_of, []
        for j in range(limit):
            b = block_of.get(keys[j])
            if b is None:
                break
            gpu.append(b)
        num_host, host = 0, self.host
        if host is not None and len(host):
            for j in range(len(gpu), limit):
                if keys[j] not in host:
                    break
                num_host += 1
        ref = self._ref
        return PrefixHit(tuple(gpu), num_host, sum(1 for b in gpu if ref[b] == 0))

    def apply(self, req: int, hit: PrefixHit, num_tokens: int) -> tuple[list[int], float]:
        """Admit `req` with its hit: hold the GPU blocks, allocate and fill the host ones.
        Returns (the request's first blocks, host fetch seconds); counts the lookup."""
        ref = self._ref
        for b in hit.gpu_blocks:
            if ref[b] == 0:
                self._unfree(b)
            ref[b] += 1
        blocks, seconds = list(hit.gpu_blocks), 0.0
        if hit.num_host:
            keys = self.keys(req)
            fetched = keys[len(blocks):hit.num_blocks]
            seconds = self.host.fetch(fetched)
            start = len(blocks)
            blocks += self.allocate(hit.num_host)
            self.cache(req, blocks, start, hit.num_blocks)
        self.query_tokens += num_tokens
        self.query_blocks += (num_tokens - 1) // self.block_size
        self.gpu_hit_blocks += len(hit.gpu_blocks)
        self.host_hit_blocks += hit.num_host
        return blocks, seconds

    def cache(self, req: int, blocks: list[int], start: int, end: int) -> int:
        """Cache blocks[start:end] of `req` (their tokens are computed) under its hashes; a hash
        already cached in another block leaves this block uncached (vLLM). Returns the new end."""
        keys = self.keys(req)
        end = min(end, len(keys), len(blocks))
        key_of, block_of = self._key_of, self._block_of
        for j in range(start, end):
            b, key = blocks[j], keys[j]
            if b not in key_of and key not in block_of:
                key_of[b] = key
                block_of[key] = b
        return max(start, end)

    def release(self, req: int, blocks: list[int], num_tokens: int) -> None:
        """A request gives back its blocks holding `num_tokens` computed tokens: cache its full
        blocks first (prompt and generated tokens alike, as vLLM), then free them."""
        self.cache(req, blocks, 0, num_tokens // self.block_size)
        self.free(blocks)
        if self._forget is not None:
            self._forget(req)

    def stats(self) -> dict:
        """Counters of this pool (merge_stats sums pools and derives the rates)."""
        host = self.host
        return {
            "block_size": self.block_size, "query_tokens": self.query_tokens, "query_blocks": self.query_blocks,
            "gpu_hit_blocks": self.gpu_hit_blocks, "host_hit_blocks": self.host_hit_blocks,
            "evicted_blocks": self.num_evicted,
            # `is not None`: an empty HostKvTier is falsy (it has __len__) but still has its capacity
            "host_capacity_blocks": host.num_blocks if host is not None else 0,
            "host_spilled_blocks": host.num_spilled if host is not None else 0,
            "host_evicted_blocks": host.num_evicted if host is not None else 0,
            "host_fetch_s": host.fetch_s if host is not None else 0.0,
        }


def merge_stats(pools: list[dict]) -> dict:
    """Summed counters of every replica's pool and the hit rates, by tier (gpu, host).

    Tokens: queries are the tokens of each admitted prefill (re-admissions after preemption count
    again; vLLM's prefix_cache_queries), hits the tokens its cached prefix skipped (block-aligned).
    Blocks: queries are the blocks a lookup may hit, (num_tokens - 1) // block_size per admission.
    prefill_tokens_saved = hit tokens (not prefilled); misses = queries - hits."""
    out = {k: sum(p[k] for p in pools) for k in pools[0] if k != "block_size"}
    bs = pools[0]["block_size"]
    gpu, host = out["gpu_hit_blocks"] * bs, out["host_hit_blocks"] * bs
    qt, qb = out["query_tokens"], out["query_blocks"]
    out.update({
        "block_size": bs, "gpu_hit_tokens": gpu, "host_hit_tokens": host, "hit_tokens": gpu + host,
        "miss_tokens": qt - gpu - host, "miss_blocks": qb - out["gpu_hit_blocks"] - out["host_hit_blocks"],
        "prefill_tokens_saved": gpu + host,
        "hit_rate": (gpu + host) / qt if qt else 0.0, "gpu_hit_rate": gpu / qt if qt else 0.0,
        "host_hit_rate": host / qt if qt else 0.0,
        "block_hit_rate": (out["gpu_hit_blocks"] + out["host_hit_blocks"]) / qb if qb else 0.0,
    })
    return out


class SglangBlockPool(PrefixCachingBlockPool):
    """Prefix caching with SGLang's eviction: uncached free blocks first (FIFO), then cached free
    blocks least recently freed first. `_free` holds only the uncached free blocks here."""

    def __init__(self, num_blocks: int, block_size: int, keys: Callable[[int], tuple[int, ...]],
                 host: HostKvTier | None = None):
        super().__init__(num_blocks, block_size, keys, host)
        self._free_cached: OrderedDict[int, None] = OrderedDict()  # head: least recently freed

    @property
    def num_free(self) -> int:
        return len(self._free) + len(self._free_cached)

    @property
    def num_used(self) -> int:
        return self.num_blocks - len(self._free) - len(self._free_cached)

    def allocate(self, n: int) -> list[int]:
        if n > self.num_free:
            raise RuntimeError(f"allocate({n}) with only {self.num_free} free blocks")
        return [self.allocate_one() for _ in range(n)]

    def allocate_one(self) -> int:
        if self._free:
            b, _ = self._free.popitem(last=False)
            self._ref[b] = 1
            return b
        b, _ = self._free_cached.popitem(last=False)
        self._free[b] = None  # let the base class evict it
        return super().allocate_one()

    def free(self, block_ids: list[int]) -> None:
        ref, key_of = self._ref, self._key_of
        for b in reversed(block_ids):
            n = ref[b] - 1
            ref[b] = n
            if n == 0:
                (self._free_cached if b in key_of else self._free)[b] = None

    def _unfree(self, b: int) -> None:
        del self._free_cached[b]


PREFIX_CACHING_POLICIES = {"vllm": PrefixCachingBlockPool, "sglang": SglangBlockPool}
