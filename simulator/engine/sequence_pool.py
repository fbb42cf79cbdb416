"""The sequences one replica holds and the mechanics every continuous scheduler shares.

Owns the waiting queue, prefilling sequences, the decode set, swapped-out sequences, their
block tables, preemption (recompute or swap, victim = latest admitted, as vLLM) and the commit
of a finished step (advance tokens, emit tokens, finish requests, free blocks). With a prefix-caching
block pool (prefix_cache.py): admission past a prompt's cached prefix (admit_cached), caching blocks as
their tokens are computed, and caching a departing sequence's full blocks. Planning policy (who runs
next) lives in schedulers.py.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from simulator.cost import BatchShape, KvWork
from simulator.engine.block_pool import BlockPool
from simulator.engine.decode_set import DecodeSet
from simulator.engine.kv_phases import KvPolicy
from simulator.engine.recorder import RunRecorder


class PrefillSeq:
    """A sequence waiting for or in prefill. total: tokens to prefill (prompt, or prompt plus
    generated tokens when recomputing after preemption); remaining: output tokens to emit."""

    __slots__ = ("req", "total", "computed", "blocks", "order", "remaining", "last_token_s", "budget",
                 "siblings", "sibling_blocks", "ncached")

    def __init__(self, req: int, total: int, remaining: int, last_token_s: float = math.nan, budget=None,
                 siblings: list[tuple[int, int]] | None = None):
        self.req, self.total, self.remaining = req, total, remaining
        self.computed, self.blocks, self.order = 0, [], -1
        self.ncached = 0  # prefix caching: leading blocks already in the cache (engine/prefix_cache.py)
        self.last_token_s = last_token_s
        self.budget = budget  # the KV policy's per-sequence budget (None: dense)
        # Best-of-N: (request, output tokens) of the other samples of this prompt; they share
        # its full prompt blocks and each gets a copy of the partial last block (copy-on-write)
        self.siblings = siblings
        self.sibling_blocks: list[int] = []


class StepPlan(NamedTuple):
    """One planned engine step (a NamedTuple: one is built per step; a frozen dataclass costs more)."""

    shape: BatchShape
    prefill: tuple[tuple[PrefillSeq, int], ...]  # (sequence, chunk tokens)
    num_decode: int  # decode slots [0, num_decode) run this step
    extra_s: float = 0.0  # host-link transfers (swap) charged to this step


@dataclass(frozen=True, slots=True)
class SwapSpace:
    """CPU swap space for preemption by swap: blocks it holds and the link that moves them."""

    num_blocks: int
    block_bytes: int
    link_bytes_per_s: float

    def transfer_s(self, num_blocks: int) -> float:
        return num_blocks * self.block_bytes / self.link_bytes_per_s


class SequencePool:
    def __init__(self, blocks: BlockPool, recorder: RunRecorder, swap: SwapSpace | None,
                 kv: KvPolicy | None = None, decode=None, admission: str = "preempt"):
        """kv: a KV policy (None: dense). decode: a decode set with DecodeSet's interface plus
        make_shape (e.g. speculative decoding's SpecDecodeSet); None = DecodeSet (plain BatchShapes).
        admission: "preempt" (vLLM: admit when the prompt's blocks are free, preempt when decode
        runs short) or "reserve" (TensorRT-LLM GUARANTEED_NO_EVICT: admit only when blocks for the
        whole sequence, prompt + output, are uncommitted; never preempts)."""
        if admission not in ("preempt", "reserve"):
            raise ValueError(f"admission={admission!r}; allowed: preempt, reserve")
        self.reserve = admission == "reserve"
        self._committed = 0  # reserve: blocks promised to running sequences' final lengths
        self._promised: dict[int, int] = {}  # request -> blocks promised
        self.blocks = blocks
        self.rec = recorder
        self.swap = swap
        self.swap_free = swap.num_blocks if swap else 0
        self.kv = kv  # KV policy; None: dense
        # automatic prefix caching: the block pool caches full blocks by content (prefix_cache.py)
        self.cache = blocks if getattr(blocks, "prefix_caching", False) else None
        self.waiting: deque[PrefillSeq] = deque()
        self.prefilling: list[PrefillSeq] = []
        self.decode = DecodeSet(blocks.block_size, kv, blocks.free) if decode is None else decode
        self.make_shape = BatchShape if decode is None else decode.make_shape
        self.swapped: deque[tuple] = deque()
        self._next_order = 0

    # ---- queries ---------------------------------------------------------------------------
    @property
    def num_running(self) -> int:
        return len(self.prefilling) + len(self.decode.members)

    @property
    def num_outstanding(self) -> int:
        return self.num_running + len(self.waiting) + len(self.swapped)

    # ---- admission and growth --------------------------------------------------------------
    def enqueue(self, req: int, prompt_tokens: int, output_tokens: int,
                siblings: list[tuple[int, int]] | None = None) -> None:
        budget = self.kv.seq_budget(prompt_tokens, output_tokens) if self.kv is not None else None
        self.waiting.append(PrefillSeq(req, prompt_tokens, output_tokens, budget=budget, siblings=siblings))

    def _final_blocks(self, seq: PrefillSeq) -> dict[int, int]:
        """Blocks each request of `seq` holds at its longest (prompt + outputs; a KV policy's peak)."""
        tokens = seq.total + seq.remaining
        if self.kv is not None:
            tokens = self.kv.peak_tokens(seq.total, seq.remaining)
        need = {seq.req: self.blocks.blocks_for(tokens)}
        for req, output in seq.siblings or ():
            need[req] = self.blocks.blocks_for(output) + 1  # own tokens and the copied partial block
        return need

    def admissible(self, seq: PrefillSeq) -> bool:
        """reserve admission: blocks for the whole sequence are still uncommitted (always True for
        preempt admission, whose check is the next chunk's blocks)."""
        if not self.reserve or seq.req in self._promised:
            return True
        return self._committed + sum(self._final_blocks(seq).values()) <= self.blocks.num_blocks

    def admit_head(self) -> PrefillSeq:
        seq = self.waiting.popleft()
        seq.order = self._next_order
        self._next_order += 1
        self.prefilling.append(seq)
        if self.reserve and seq.req not in self._promised:
            for req, n in self._final_blocks(seq).items():
                self._promised[req] = n
                self._committed += n
        return seq

    def admit_cached(self, max_chunk: int, whole: bool) -> tuple[PrefillSeq, int, float] | None:
        """Prefix caching: admit the head of the queue, skipping its cached prefix, if its next chunk
        (at most max_chunk tokens; whole: the rest of its prompt or nothing) and the blocks fit.
        Returns (sequence, chunk tokens, host fetch seconds), or None (the head stays)."""
        head, cache, bs = self.waiting[0], self.cache, self.blocks.block_size
        hit = cache.match(head.req, head.total)
        hit_tokens = hit.num_blocks * bs
        chunk = head.total - hit_tokens
        if chunk > max_chunk:
            if whole:
                return None
            chunk = max_chunk
        # vLLM allocate_slots: held cached blocks that sit in the free queue leave it too
        need = self.blocks.blocks_for(hit_tokens + chunk) - len(hit.gpu_blocks) + hit.num_evictable
        if need > self.blocks.num_free or not self.admissible(head):
            return None
        seq = self.admit_head()
        seq.blocks, seconds = cache.apply(seq.req, hit, seq.total)
        seq.computed, seq.ncached = hit_tokens, hit.num_blocks
        self.grow(seq, chunk)
        return seq, chunk, seconds

    def _release(self, req: int, blocks: list[int], num_tokens: int) -> None:
        """Give back a sequence's blocks (`num_tokens` of them computed: the prefix cache keeps them)."""
        if self.cache is None:
            self.blocks.free(blocks)
        else:
            self.cache.release(req, blocks, num_tokens)

    def _finished(self, req: int, now: float) -> None:
        self.rec.finish(req, now)
        if self.reserve:
            self._committed -= self._promised.pop(req, 0)

    def _sibling_copies(self, seq: PrefillSeq, chunk: int) -> int:
        """Blocks for the siblings' copies of a partial last prompt block, due with the last chunk."""
        if not seq.siblings or seq.computed + chunk != seq.total or seq.total % self.blocks.block_size == 0:
            return 0
        return len(seq.siblings)

    def blocks_to_grow(self, seq: PrefillSeq, chunk: int) -> int:
        own = self.blocks.blocks_for(seq.computed + chunk) - len(seq.blocks)
        return own + (self._sibling_copies(seq, chunk) if seq.siblings else 0)

    def grow(self, seq: PrefillSeq, chunk: int) -> None:
        copies = self._sibling_copies(seq, chunk) if seq.siblings else 0
        new = self.blocks.allocate(self.blocks_to_grow(seq, chunk))
        if copies:
            seq.sibling_blocks, new = new[-copies:], new[:-copies]
        seq.blocks += new

    # ---- preemption --------------------------------------------------------------------------
    def preempt_one(self, above_order: int = -1) -> float | None:
        """Preempt the latest-admitted running sequence with order > above_order.

        Returns the swap transfer seconds charged (0 for recompute), None if no candidate."""
        dec = self.decode
        member = dec.latest_admitted()
        best = member.order if member is not None and member.order > above_order else above_order
        victim = None
        for seq in self.prefilling:
            if seq.order > best:
                victim, best = seq, seq.order
        if victim is not None:
            self.prefilling.remove(victim)
            self._release(victim.req, victim.blocks + victim.sibling_blocks, victim.computed)
            victim.blocks, victim.sibling_blocks, victim.computed, victim.ncached = [], [], 0, 0
            self.waiting.appendleft(victim)
            self.rec.preempt(victim.req)
            return 0.0
        if member is None or member.order <= above_order:
            return None
        ctx, remaining, last_s = dec.ctx(member), dec.remaining(member), dec.last_token_s(member)
        retained = dec.retained(member)
        dec.remove(member)
        self._release(member.req, member.blocks, ctx)
        self.rec.preempt(member.req)
        if self.swap is not None and self.swap_free >= member.nblocks:
            self.swap_free -= member.nblocks
            self.swapped.append((member.req, ctx, remaining, member.nblocks, last_s, retained, member.budget))
            return self.swap.transfer_s(member.nblocks)
        # recompute: re-prefill every known token (then compress again); it emits the next token
        self.waiting.appendleft(PrefillSeq(member.req, ctx + 1, remaining, last_s, member.budget))
        return 0.0

    def swap_in(self, max_running: int) -> float:
        """Bring swapped sequences back (FIFO) while blocks and seats allow; returns seconds."""
        seconds = 0.0
        while self.swapped and self.num_running < max_running:
            req, ctx, remaining, nblocks, last_s, retained, budget = self.swapped[0]
            if nblocks > self.blocks.num_free:
                break
            self.swapped.popleft()
            self.swap_free += nblocks
            self.decode.add(req, ctx, remaining, self.blocks.allocate(nblocks), self._next_order, last_s,
                            retained, budget)
            self._next_order += 1
            seconds += self.swap.transfer_s(nblocks)
        return seconds

    def reserve_decode_blocks(self) -> float:
        """Give every decode sequence room for its next token, preempting while short."""
        dec, extra = self.decode, 0.0
        need = dec.members_needing_block()
        while len(need) > self.blocks.num_free:
            extra += self.preempt_one()
            need = dec.members_needing_block()
        dec.grant_blocks(need, self.blocks.allocate_one)
        return extra

    # ---- commit ------------------------------------------------------------------------------
    def commit(self, plan: StepPlan, now: float) -> None:
        if plan.num_decode:
            for m in self.decode.advance(now, self.rec.itl):
                self._release(m.req, m.blocks, self.decode.ctx(m))
                self._finished(m.req, now)
        cache = self.cache
        for seq, chunk in plan.prefill:
            seq.computed += chunk
            if cache is not None:
                seq.ncached = cache.cache(seq.req, seq.blocks, seq.ncached, seq.computed // self.blocks.block_size)
            if seq.computed == seq.total:
                self._finish_prefill(seq, now)

    def _finish_prefill(self, seq: PrefillSeq, now: float) -> None:
        self.prefilling.remove(seq)
        if math.isnan(seq.last_token_s):
            self.rec.first_token(seq.req, now)
        else:
            self.rec.itl(now - seq.last_token_s, 1)
        if seq.siblings:
            self._spawn_samples(seq, now)
            return
        self._start_decode(seq.req, seq.total, seq.remaining - 1, seq.blocks, seq.order, now, budget=seq.budget)

    def _start_decode(self, req: int, ctx: int, remaining: int, blocks: list[int], order: int, now: float,
                      group: int = -1, shared_tokens: int = 0, budget=None) -> None:
        if remaining == 0:
            self._release(req, blocks, ctx)
            self._finished(req, now)
        elif group >= 0:  # a Best-of-N sample (dense DecodeSet only)
            self.decode.add(req, ctx, remaining, blocks, order, now, group=group, shared_tokens=shared_tokens)
        elif self.kv is None:
            self.decode.add(req, ctx, remaining, blocks, order, now)
        else:
            # prompt compression: the policy keeps `kept` tokens, compacted to the front of the
            # block table; the tail blocks go back to the pool now
            kept = self.kv.after_prefill(ctx, budget)
            keep = self.blocks.blocks_for(kept)
            if keep < len(blocks):
                self.blocks.free(blocks[keep:])
                del blocks[keep:]
            self.decode.add(req, ctx, remaining, blocks, order, now, kept, budget)

    def _spawn_samples(self, seq: PrefillSeq, now: float) -> None:
        """Best-of-N: the prefill's logits give every sample its first token; samples share the
        full prompt blocks and own a copy of the partial one (vLLM's copy-on-write). Dense KV only
        (the scenario rejects a KV policy with samples_per_prompt > 1)."""
        full = seq.total // self.blocks.block_size
        shared, copies = seq.blocks[:full], iter(seq.sibling_blocks)
        tail = len(seq.blocks) > full
        group, shared_tokens = seq.req, full * self.blocks.block_size
        self._start_decode(seq.req, seq.total, seq.remaining - 1, seq.blocks, seq.order, now, group, shared_tokens)
        for req, output_tokens in seq.siblings:
            self.rec.first_token(req, now)
            blocks = self.blocks.share(shared) + ([next(copies)] if tail else [])
            self._start_decode(req, seq.total, output_tokens - 1, blocks, seq.order, now, group, shared_tokens)
        seq.sibling_blocks = []

    # ---- KV policy work ----------------------------------------------------------------------
    def kv_work(self, prefill: list[tuple[PrefillSeq, int]], num_decode: int) -> KvWork | None:
        """The policy's eviction bookkeeping in a step (None with no policy)."""
        kv = self.kv
        if kv is None:
            return None
        work = None
        if num_decode:
            dec = self.decode
            work = kv.decode_work(dec.context_sum(), dec.held_sum(), dec.held_const_sum, *dec.compressing())
        if prefill:
            chunks = [(chunk, seq.computed) for seq, chunk in prefill]
            finishing = [(seq.total, kv.after_prefill(seq.total, seq.budget))
                         for seq, chunk in prefill if seq.computed + chunk == seq.total]
            pw = kv.prefill_work(chunks, finishing)
            if pw is not None:
                work = pw if work is None else work + pw
        return work
