"""Decode sequences under speculative decoding: ragged per-sequence advances.

Owns SpecBatchShape (a BatchShape whose decode sequences each verify gamma draft tokens) and
SpecDecodeSet, the drop-in replacement of decode_set.DecodeSet used only when speculation is
on. Each member keeps its own KV length and remaining tokens (a Python loop per step: the O(1)
DecodeSet assumes +1 token per member per step, which speculation breaks). Per step:
- the speculator picks gamma (members_needing_block is the first question a planned decode step
  asks; the choice holds until the step commits);
- each member needs KV slots for the last emitted token and the gamma draft tokens the verify
  pass writes, capped at the tokens it may still emit: ctx + min(gamma + 1, remaining);
- at commit the speculator draws accepted counts a and each member emits min(a + 1, remaining)
  tokens (accepted drafts + the bonus/corrected token), in one inter-token gap (a streamed chunk,
  as vLLM bench serve measures ITL).
Does not pick gamma, draw acceptances or keep statistics (speculator.Speculator), nor charge
time (cost.py). Block ids come from the caller's BlockPool.
"""
from __future__ import annotations

from simulator.cost import BatchShape


class SpecBatchShape(BatchShape):
    """A step whose num_decode sequences each run gamma = num_spec_tokens draft steps and a
    verify pass over gamma + 1 tokens; num_logits counts every verified position."""

    __slots__ = ("num_spec_tokens",)

    def __init__(self, prefill_chunks: tuple[tuple[int, int], ...] = (), num_decode: int = 0,
                 decode_context_sum: int = 0, num_logits: int = 0, num_spec_tokens: int = 0):
        super().__init__(prefill_chunks, num_decode, decode_context_sum, num_logits)
        self.num_spec_tokens = num_spec_tokens
        self.num_tokens = self.num_prefill_tokens + num_decode * (num_spec_tokens + 1)

    def __repr__(self) -> str:
        return BatchShape.__repr__(self)[:-1] + f", num_spec_tokens={self.num_spec_tokens})"

    def __eq__(self, other) -> bool:
        return BatchShape.__eq__(self, other) and getattr(other, "num_spec_tokens", 0) == self.num_spec_tokens


class SpecMember:
    __slots__ = ("req", "ctx", "remaining", "blocks", "nblocks", "order", "last_s")
    budget = None  # no KV policy budget under speculation (dense KV)

    def __init__(self, req: int, ctx: int, remaining: int, blocks: list[int], order: int, last_s: float):
        self.req, self.ctx, self.remaining, self.blocks = req, ctx, remaining, blocks
        self.nblocks, self.order, self.last_s = len(blocks), order, last_s


class SpecDecodeSet:
    """Same interface as DecodeSet (what SequencePool and the schedulers call), plus make_shape."""

    dup_shared_sum = 0  # no Best-of-N prefix sharing with speculation

    def __init__(self, block_size: int, speculator):
        self.block_size = block_size
        self.spec = speculator
        self.members: dict[int, SpecMember] = {}
        self.ctx_sum = 0
        self._gamma: int | None = None  # this step's gamma, chosen at planning

    @property
    def n(self) -> int:
        return len(self.members)

    def retained(self, m: SpecMember) -> int:
        """KV tokens m holds (dense: its whole context)."""
        return m.ctx

    def ctx(self, m: SpecMember) -> int:
        """Tokens in m's KV cache."""
        return m.ctx

    def remaining(self, m: SpecMember) -> int:
        return m.remaining

    def last_token_s(self, m: SpecMember) -> float:
        return m.last_s

    def context_sum(self) -> int:
        """Every member's cache plus its last emitted token (as DecodeSet.context_sum)."""
        return self.ctx_sum + len(self.members)

    # ---- membership ----------------------------------------------------------------------
    def add(self, req: int, ctx: int, remaining: int, blocks: list[int], order: int, last_token_s: float,
            retained: int | None = None, budget=None) -> None:
        """DecodeSet's signature; speculation keeps the whole KV (dense), so retained == ctx."""
        self.members[req] = SpecMember(req, ctx, remaining, blocks, order, last_token_s)
        self.ctx_sum += ctx

    def remove(self, m: SpecMember) -> None:
        del self.members[m.req]
        self.ctx_sum -= m.ctx

    def latest_admitted(self) -> SpecMember | None:
        return max(self.members.values(), key=lambda m: m.order) if self.members else None

    # ---- per step ------------------------------------------------------------------------
    def step_tokens(self) -> int:
        """Tokens the next step's verify pass feeds the target: gamma + 1 per member (vLLM counts
        them all against the token budget)."""
        return len(self.members) * (self.step_gamma() + 1) if self.members else 0

    def step_gamma(self) -> int:
        if self._gamma is None:
            self._gamma = self.spec.choose_gamma(len(self.members), self.context_sum())
        return self._gamma

    def members_needing_block(self) -> list[SpecMember]:
        """One entry per block a member lacks for this step's verify pass (a member can appear
        more than once when gamma + 1 exceeds the block size)."""
        if not self.members:
            return []
        span = self.step_gamma() + 1
        bs, need = self.block_size, []
        for m in self.members.values():
            lack = -(-(m.ctx + min(span, m.remaining)) // bs) - m.nblocks
            if lack > 0:
                need += [m] * lack
        return need

    def grant_blocks(self, members: list[SpecMember], allocate_one) -> None:
        for m in members:
            m.blocks.append(allocate_one())
            m.nblocks += 1

    def make_shape(self, prefill_chunks, num_decode: int, decode_context_sum: int, num_logits: int,
                   decode_kv_read_sum: int | None = None, kv_work=None) -> BatchShape:
        """The step's shape (called by the scheduler with BatchShape's arguments; speculation runs
        with dense KV and one sample per prompt, so the last two are always None)."""
        if not num_decode:
            self._gamma = None  # a prefill-only step (or every decode preempted): choose afresh
            return BatchShape(prefill_chunks, 0, 0, num_logits)
        g = self.step_gamma()
        return SpecBatchShape(prefill_chunks, num_decode, decode_context_sum, num_logits + num_decode * g, g)

    def advance(self, now: float, itl) -> list[SpecMember]:
        """Commit one speculative iteration ending at `now`; returns the members that emitted
        their last token (already removed)."""
        gamma = self.step_gamma()
        self._gamma = None
        members = list(self.members.values())
        accepted = self.spec.accepted(len(members), gamma)
        gaps: dict[float, int] = {}
        done, emitted_sum = [], 0
        for m, a in zip(members, accepted.tolist()):
            emitted = min(a + 1, m.remaining)
            gaps[m.last_s] = gaps.get(m.last_s, 0) + 1
            m.last_s = now
            m.ctx += emitted
            m.remaining -= emitted
            emitted_sum += emitted
            if m.remaining == 0:
                done.append(m)
        self.ctx_sum += emitted_sum
        for t, c in gaps.items():
            itl(now - t, c)
        self.spec.record(gamma, accepted, emitted_sum)
        for m in done:
            self.remove(m)
        return done
