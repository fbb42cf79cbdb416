"""The sequences one replica holds and the mechanics every continuous scheduler shares.

Owns the waiting queue, prefilling sequences, the decode set, swapped-out sequences, their
block tables, preemption (recompute or swap, victim = latest admitted, as vLLM) and the commit
of a finished step (advance tokens, emit tokens, finish requests, free blocks). Planning
policy (who runs next) lives in schedulers.py.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from simulator.batch_shape import BatchShape
from simulator.decode_set import DecodeSet
from simulator.kv_cache import BlockPool
from simulator.recorder import RunRecorder


class PrefillSeq:
    """A sequence waiting for or in prefill. total: tokens to prefill (prompt, or prompt plus
    generated tokens when recomputing after preemption); remaining: output tokens to emit."""

    __slots__ = ("req", "total", "computed", "blocks", "order", "remaining", "last_token_s")

    def __init__(self, req: int, total: int, remaining: int, last_token_s: float = math.nan):
        self.req, self.total, self.remaining = req, total, remaining
        self.computed, self.blocks, self.order = 0, [], -1
        self.last_token_s = last_token_s


@dataclass(frozen=True, slots=True)
class StepPlan:
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
    def __init__(self, blocks: BlockPool, recorder: RunRecorder, swap: SwapSpace | None, decode=None):
        """decode: a decode set with DecodeSet's interface plus make_shape (e.g. speculative
        decoding's SpecDecodeSet); None = DecodeSet, whose steps are plain BatchShapes."""
        self.blocks = blocks
        self.rec = recorder
        self.swap = swap
        self.swap_free = swap.num_blocks if swap else 0
        self.waiting: deque[PrefillSeq] = deque()
        self.prefilling: list[PrefillSeq] = []
        self.decode = DecodeSet(blocks.block_size) if decode is None else decode
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
    def enqueue(self, req: int, prompt_tokens: int, output_tokens: int) -> None:
        self.waiting.append(PrefillSeq(req, prompt_tokens, output_tokens))

    def admit_head(self) -> PrefillSeq:
        seq = self.waiting.popleft()
        seq.order = self._next_order
        self._next_order += 1
        self.prefilling.append(seq)
        return seq

    def blocks_to_grow(self, seq: PrefillSeq, chunk: int) -> int:
        return self.blocks.blocks_for(seq.computed + chunk) - len(seq.blocks)

    def grow(self, seq: PrefillSeq, chunk: int) -> None:
        seq.blocks += self.blocks.allocate(self.blocks_to_grow(seq, chunk))

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
            self.blocks.free(victim.blocks)
            victim.blocks, victim.computed = [], 0
            self.waiting.appendleft(victim)
            self.rec.num_preemptions[victim.req] += 1
            return 0.0
        if member is None or member.order <= above_order:
            return None
        ctx, remaining, last_s = dec.ctx(member), dec.remaining(member), dec.last_token_s(member)
        dec.remove(member)
        self.blocks.free(member.blocks)
        self.rec.num_preemptions[member.req] += 1
        if self.swap is not None and self.swap_free >= member.nblocks:
            self.swap_free -= member.nblocks
            self.swapped.append((member.req, ctx, remaining, member.nblocks, last_s))
            return self.swap.transfer_s(member.nblocks)
        # recompute: re-prefill every known token; that prefill emits the next token
        self.waiting.appendleft(PrefillSeq(member.req, ctx + 1, remaining, last_s))
        return 0.0

    def swap_in(self, max_running: int) -> float:
        """Bring swapped sequences back (FIFO) while blocks and seats allow; returns seconds."""
        seconds = 0.0
        while self.swapped and self.num_running < max_running:
            req, ctx, remaining, nblocks, last_s = self.swapped[0]
            if nblocks > self.blocks.num_free:
                break
            self.swapped.popleft()
            self.swap_free += nblocks
            self.decode.add(req, ctx, remaining, self.blocks.allocate(nblocks), self._next_order, last_s)
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
                self.blocks.free(m.blocks)
                self.rec.finish(m.req, now)
        for seq, chunk in plan.prefill:
            seq.computed += chunk
            if seq.computed == seq.total:
                self._finish_prefill(seq, now)

    def _finish_prefill(self, seq: PrefillSeq, now: float) -> None:
        self.prefilling.remove(seq)
        if math.isnan(seq.last_token_s):
            self.rec.first_token(seq.req, now)
        else:
            self.rec.itl(now - seq.last_token_s, 1)
        seq.remaining -= 1
        if seq.remaining == 0:
            self.blocks.free(seq.blocks)
            self.rec.finish(seq.req, now)
            return
        self.decode.add(seq.req, seq.total, seq.remaining, seq.blocks, seq.order, now)
