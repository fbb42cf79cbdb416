"""Batch schedulers: who runs in the next engine step. Planning only; no time passes here.

- VllmScheduler: continuous batching as vLLM without chunked prefill: a step is either a
  prefill of whole prompts (FCFS, token budget max_num_batched_tokens) or a decode of every
  running sequence; preemption (recompute or swap) when decode blocks run out.
- SarathiScheduler: chunked prefill (Sarathi-Serve, stall-free): every step runs all decodes
  first (each counting the tokens it feeds: 1, or gamma + 1 under speculation), then prefill
  chunks of at most chunk_size tokens fill the token budget.
- StaticScheduler (static_scheduler.py): HF `generate` style fixed batches.
Shared mechanics (queues, blocks, preemption, commit) live in sequence_pool.SequencePool; with
prefix caching (a prefix_cache.PrefixCachingBlockPool) admission skips each prompt's cached prefix.
"""
from __future__ import annotations

from dataclasses import dataclass

from simulator.engine.sequence_pool import PrefillSeq, SequencePool, StepPlan


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerLimits:
    max_num_seqs: int
    max_num_batched_tokens: int
    chunk_size: int  # Sarathi: largest prefill chunk per sequence per step

    def __post_init__(self) -> None:
        for name in ("max_num_seqs", "max_num_batched_tokens", "chunk_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def _build_plan(pool: SequencePool, prefill: list[tuple[PrefillSeq, int]], num_decode: int,
                extra_s: float) -> StepPlan:
    finishing = 0
    chunks = []
    for seq, chunk in prefill:
        chunks.append((chunk, seq.computed))
        finishing += seq.computed + chunk == seq.total
    dec = pool.decode
    shape = pool.make_shape(tuple(chunks), num_decode, dec.context_sum() if num_decode else 0, num_decode + finishing,
                            dec.kv_read_sum() if num_decode and pool.kv is None and dec.dup_shared_sum else None,
                            pool.kv_work(prefill, num_decode) if pool.kv is not None else None)
    return StepPlan(shape, tuple(prefill), num_decode, extra_s)


def _admit_cached(pool: SequencePool, prefill: list, limit: int, whole: bool) -> tuple[int, float] | None:
    """Admit the head request past its cached prefix (SequencePool.admit_cached) into `prefill`;
    (chunk tokens, host fetch seconds), or None when it cannot be admitted now."""
    got = pool.admit_cached(limit, whole=whole)
    if got is None:
        return None
    seq, chunk, fetch_s = got
    prefill.append((seq, chunk))
    return chunk, fetch_s


class ContinuousScheduler:
    """What the engine sees of a pool-backed scheduler; subclasses only plan."""

    def __init__(self, pool: SequencePool, limits: SchedulerLimits):
        self.pool, self.limits = pool, limits

    @property
    def blocks(self):
        return self.pool.blocks

    @property
    def num_running(self) -> int:
        return self.pool.num_running

    @property
    def num_outstanding(self) -> int:
        return self.pool.num_outstanding

    def enqueue(self, req: int, prompt_tokens: int, output_tokens: int,
                siblings: list[tuple[int, int]] | None = None) -> None:
        self.pool.enqueue(req, prompt_tokens, output_tokens, siblings)

    def commit(self, plan: StepPlan, now: float) -> None:
        self.pool.commit(plan, now)


class VllmScheduler(ContinuousScheduler):
    name = "vllm"

    def max_prefill_tokens(self) -> int:
        """Longest sequence this scheduler can (re)prefill in one step."""
        return self.limits.max_num_batched_tokens

    def plan(self) -> StepPlan | None:
        pool, lim = self.pool, self.limits
        extra = pool.swap_in(lim.max_num_seqs) if pool.swapped else 0.0
        prefill: list[tuple[PrefillSeq, int]] = []
        if not pool.swapped:
            budget = lim.max_num_batched_tokens
            while pool.waiting and pool.num_running < lim.max_num_seqs:
                if pool.cache is not None:  # prefix caching: prefill only what the cache lacks
                    got = _admit_cached(pool, prefill, budget, whole=True)
                    if got is None:
                        break
                    budget, extra = budget - got[0], extra + got[1]
                    continue
                head = pool.waiting[0]
                if (head.total > budget or pool.blocks_to_grow(head, head.total) > pool.blocks.num_free
                        or not pool.admissible(head)):
                    break
                seq = pool.admit_head()
                pool.grow(seq, seq.total)
                prefill.append((seq, seq.total))
                budget -= seq.total
        if prefill:
            return _build_plan(pool, prefill, 0, extra)
        if not len(pool.decode.members):
            return None if extra == 0.0 else _build_plan(pool, [], 0, extra)
        extra += pool.reserve_decode_blocks()
        return _build_plan(pool, [], len(pool.decode.members), extra)


class SarathiScheduler(ContinuousScheduler):
    name = "sarathi"

    def __init__(self, pool: SequencePool, limits: SchedulerLimits):
        super().__init__(pool, limits)
        if limits.max_num_batched_tokens < limits.max_num_seqs:
            raise ValueError(
                f"max_num_batched_tokens ({limits.max_num_batched_tokens}) must be >= max_num_seqs "
                f"({limits.max_num_seqs}) with chunked prefill, so every decode fits in a step"
            )

    def max_prefill_tokens(self) -> int:
        return 2**62  # chunked: any length can be prefilled over several steps

    def plan(self) -> StepPlan | None:
        pool, lim = self.pool, self.limits
        extra = pool.swap_in(lim.max_num_seqs) if pool.swapped else 0.0
        extra += pool.reserve_decode_blocks()
        budget = lim.max_num_batched_tokens - pool.decode.step_tokens()  # speculation: gamma + 1 each
        prefill: list[tuple[PrefillSeq, int]] = []
        for seq in list(pool.prefilling):
            if budget <= 0:
                break
            chunk, swap_s = self._fit_chunk(seq, min(seq.total - seq.computed, budget, lim.chunk_size))
            extra += swap_s
            if chunk:
                prefill.append((seq, chunk))
                budget -= chunk
        while budget > 0 and pool.waiting and not pool.swapped and pool.num_running < lim.max_num_seqs:
            if pool.cache is not None:  # prefix caching: prefill only what the cache lacks
                got = _admit_cached(pool, prefill, min(budget, lim.chunk_size), whole=False)
                if got is None:
                    break
                budget, extra = budget - got[0], extra + got[1]
                continue
            head = pool.waiting[0]
            chunk = min(head.total, budget, lim.chunk_size)
            if pool.blocks_to_grow(head, chunk) > pool.blocks.num_free or not pool.admissible(head):
                break
            seq = pool.admit_head()
            pool.grow(seq, chunk)
            prefill.append((seq, chunk))
            budget -= chunk
        if not prefill and not len(pool.decode.members):
            return None if extra == 0.0 else _build_plan(pool, [], 0, extra)
        return _build_plan(pool, prefill, len(pool.decode.members), extra)

    def _fit_chunk(self, seq: PrefillSeq, chunk: int) -> tuple[int, float]:
        """Grow a running prefill by `chunk` tokens, preempting later-admitted sequences if short;
        shrinks the chunk to the blocks left when nothing can be preempted. Returns the chunk
        and the swap seconds spent."""
        pool, swap_s = self.pool, 0.0
        while pool.blocks_to_grow(seq, chunk) > pool.blocks.num_free:
            spent = pool.preempt_one(above_order=seq.order)
            if spent is not None:
                swap_s += spent
            else:
                room = (len(seq.blocks) + pool.blocks.num_free) * pool.blocks.block_size - seq.computed
                chunk = max(0, min(chunk, room))
                if chunk and pool.blocks_to_grow(seq, chunk) > pool.blocks.num_free:
                    # Best-of-N: the last chunk also copies the partial block per sibling; stop short of it
                    chunk = min(chunk, seq.total - seq.computed - 1)
                break
        if chunk:
            pool.grow(seq, chunk)
        return chunk, swap_s
