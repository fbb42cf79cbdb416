"""Sequences in the decode phase, advanced in O(1) per engine step.

Every decode step advances every member by one token, so a member's KV length is
`c0 + k` where k counts this replica's decode steps: the batch's total context is
`sum(c0) + n*k` without touching members. What happens to single members (needing a new KV
block, emitting its last token) is known in advance and kept in buckets keyed by the step
counter at which it happens; a step only looks at its own bucket. Members that leave early
(preemption) invalidate their pending events through an epoch number.

Owns membership, the aggregates, the event buckets and inter-token-gap bookkeeping. Block
ids come from the caller's BlockPool; preemption policy and commit order live in SequencePool.
"""
from __future__ import annotations


class Member:
    __slots__ = ("req", "c0", "end_k", "nblocks", "blocks", "order", "join_k", "join_s", "epoch",
                 "group", "shared_tokens")

    def __init__(self, req: int, c0: int, end_k: int, blocks: list[int], order: int, join_k: int, join_s: float,
                 group: int = -1, shared_tokens: int = 0):
        self.req, self.c0, self.end_k, self.blocks = req, c0, end_k, blocks
        self.nblocks, self.order, self.join_k, self.join_s = len(blocks), order, join_k, join_s
        self.epoch = 0
        self.group, self.shared_tokens = group, shared_tokens  # prompt prefix shared with siblings


class DecodeSet:
    def __init__(self, block_size: int):
        self.block_size = block_size
        self.k = 0  # decode steps run so far on this replica
        self.members: dict[int, Member] = {}
        self.c0_sum = 0
        self._alloc_at: dict[int, list[tuple[Member, int]]] = {}
        self._finish_at: dict[int, list[tuple[Member, int]]] = {}
        self._last_s: dict[float, int] = {}  # time of members' latest token -> how many
        self._last_decode_s = 0.0
        self._group_n: dict[int, int] = {}  # sample group -> members present
        self.dup_shared_sum = 0  # shared-prefix tokens counted more than once in context_sum()

    @property
    def n(self) -> int:
        return len(self.members)

    def ctx(self, m: Member) -> int:
        """Tokens in m's KV cache."""
        return m.c0 + self.k

    def remaining(self, m: Member) -> int:
        return m.end_k - self.k

    def last_token_s(self, m: Member) -> float:
        return self._last_decode_s if m.join_k < self.k else m.join_s

    def context_sum(self) -> int:
        """KV entries the next decode step reads: every member's cache plus its new token."""
        n = len(self.members)
        return self.c0_sum + n * (self.k + 1)

    def kv_read_sum(self) -> int:
        """Distinct KV entries the next decode step reads: a sample group's shared prompt prefix
        is read once per step for the whole group (shared-prefix attention, as Kinetics counts)."""
        return self.context_sum() - self.dup_shared_sum

    # ---- membership ----------------------------------------------------------------------
    def add(self, req: int, ctx: int, remaining: int, blocks: list[int], order: int, last_token_s: float,
            group: int = -1, shared_tokens: int = 0) -> None:
        k = self.k
        m = Member(req, ctx - k, k + remaining, blocks, order, k, last_token_s, group, shared_tokens)
        self.members[req] = m
        self.c0_sum += m.c0
        if group >= 0:
            present = self._group_n.get(group, 0)
            self._group_n[group] = present + 1
            if present:
                self.dup_shared_sum += shared_tokens
        self._last_s[last_token_s] = self._last_s.get(last_token_s, 0) + 1
        self._push(self._finish_at, m.end_k, m)
        self._push(self._alloc_at, max(k, m.nblocks * self.block_size - m.c0), m)

    def remove(self, m: Member) -> None:
        del self.members[m.req]
        self.c0_sum -= m.c0
        m.epoch += 1
        if m.group >= 0:
            present = self._group_n.pop(m.group) - 1
            if present:
                self._group_n[m.group] = present
                self.dup_shared_sum -= m.shared_tokens
        t = self.last_token_s(m)
        left = self._last_s[t] - 1
        if left:
            self._last_s[t] = left
        else:
            del self._last_s[t]

    @staticmethod
    def _push(buckets: dict, k: int, m: Member) -> None:
        entry = (m, m.epoch)
        bucket = buckets.get(k)
        if bucket is None:
            buckets[k] = [entry]
        else:
            bucket.append(entry)

    def latest_admitted(self) -> Member | None:
        return max(self.members.values(), key=lambda m: m.order) if self.members else None

    # ---- per step ------------------------------------------------------------------------
    def members_needing_block(self) -> list[Member]:
        """Members whose next token starts a new KV block (each needs one block now)."""
        bucket = self._alloc_at.get(self.k)
        if not bucket:
            return []
        return [m for m, epoch in bucket if m.epoch == epoch]

    def grant_blocks(self, members: list[Member], allocate_one) -> None:
        """Give each member one block and schedule its next boundary `block_size` steps later."""
        self._alloc_at.pop(self.k, None)
        nxt = self.k + self.block_size
        for m in members:
            m.blocks.append(allocate_one())
            m.nblocks += 1
            self._push(self._alloc_at, nxt, m)

    def advance(self, now: float, itl) -> list[Member]:
        """Commit one decode step ending at `now`: gaps go to itl(gap_s, count); returns the
        members that emitted their last token (already removed)."""
        for t, c in self._last_s.items():
            itl(now - t, c)
        self.k += 1
        self._last_decode_s = now
        self._last_s = {now: len(self.members)}
        bucket = self._finish_at.pop(self.k, None)
        if not bucket:
            return []
        done = [m for m, epoch in bucket if m.epoch == epoch]
        for m in done:
            self.remove(m)
        return done
