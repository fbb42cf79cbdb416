"""Sequences in the decode phase, advanced in O(1) per engine step.

Every decode step advances every member by one token, so a member's length is `c0 + k` where k
counts this replica's decode steps. What a member holds (KV tokens, memory) and reads (attention,
time) is piecewise linear in k (kv_phases.Phase): each count either grows by one per step or is
constant, so the batch's totals are `const_sum + lin_sum + n_lin*(k+1)` without touching
members. What happens to single members (needing a new KV block, emitting its last token, a
policy phase ending: budget reached, a compression) is known in advance and kept in buckets keyed
by the step counter at which it happens; a step only looks at its own bucket. Members that leave
early (preemption) invalidate their pending events through epoch numbers. Dense (policy None)
members have one endless phase, so they never get phase events.

Owns membership, the aggregates, the event buckets and inter-token-gap bookkeeping. Block
ids come from the caller's BlockPool; preemption policy and commit order live in SequencePool.
"""
from __future__ import annotations

from simulator.engine.kv_phases import INF, KvPolicy, Phase


class Member:
    __slots__ = ("req", "c0", "end_k", "nblocks", "blocks", "order", "join_k", "join_s", "epoch",
                 "budget", "phase", "read_slope", "read_val", "held_slope", "held_val", "alloc_epoch",
                 "group", "shared_tokens")

    def __init__(self, req: int, c0: int, end_k: int, blocks: list[int], order: int, join_k: int, join_s: float,
                 group: int = -1, shared_tokens: int = 0):
        self.req, self.c0, self.end_k, self.blocks = req, c0, end_k, blocks
        self.nblocks, self.order, self.join_k, self.join_s = len(blocks), order, join_k, join_s
        self.epoch = self.alloc_epoch = 0
        self.budget = self.phase = None
        self.read_slope = self.held_slope = 1
        self.read_val = self.held_val = c0  # slope 1: count at counter k is val + k + 1; slope 0: val
        self.group, self.shared_tokens = group, shared_tokens  # prompt prefix shared with siblings


class DecodeSet:
    def __init__(self, block_size: int, policy: KvPolicy | None = None, free=None):
        self.block_size = block_size
        self.policy = policy  # None: dense
        self._free = free  # BlockPool.free, for blocks released by compaction
        self._release = policy is not None and getattr(policy, "compaction", "") == "gather"
        self.k = 0  # decode steps run so far on this replica
        self.members: dict[int, Member] = {}
        self.read_lin_sum = self.read_lin_n = self.read_const_sum = 0
        self.held_lin_sum = self.held_lin_n = self.held_const_sum = 0
        self._alloc_at: dict[int, list[tuple[Member, int]]] = {}
        self._finish_at: dict[int, list[tuple[Member, int]]] = {}
        self._phase_at: dict[int, list[tuple[Member, int]]] = {}
        self._last_s: dict[float, int] = {}  # time of members' latest token -> how many
        self._last_decode_s = 0.0
        self._group_n: dict[int, int] = {}  # sample group -> members present
        self.dup_shared_sum = 0  # shared-prefix tokens counted more than once in context_sum()

    @property
    def n(self) -> int:
        return len(self.members)

    def ctx(self, m: Member) -> int:
        """The sequence's length (tokens known; a recompute re-prefills them)."""
        return m.c0 + self.k

    def retained(self, m: Member) -> int:
        """KV tokens m keeps before the next step."""
        return m.held_val + self.k if m.held_slope else m.held_val

    def remaining(self, m: Member) -> int:
        return m.end_k - self.k

    def last_token_s(self, m: Member) -> float:
        return self._last_decode_s if m.join_k < self.k else m.join_s

    def context_sum(self) -> int:
        """KV entries the next decode step reads: every member's read count incl. its new token."""
        return self.read_const_sum + self.read_lin_sum + self.read_lin_n * (self.k + 1)

    def step_tokens(self) -> int:
        """Tokens the next decode step feeds the model: one per member."""
        return len(self.members)

    def held_sum(self) -> int:
        """KV tokens resident during the next step."""
        return self.held_const_sum + self.held_lin_sum + self.held_lin_n * (self.k + 1)

    def compressing(self) -> tuple[int, int]:
        """(tokens held, tokens kept) summed over members whose phase ends with a compression
        at the end of the next step."""
        bucket = self._phase_at.get(self.k + 1)
        held = kept = 0
        if bucket:
            for m, epoch in bucket:
                ph = m.phase
                last = ph.held0 + ph.held_slope * (ph.steps - 1)
                if m.epoch == epoch and ph.retained_end < last:
                    held += last
                    kept += ph.retained_end
        return held, kept

    def kv_read_sum(self) -> int:
        """Distinct KV entries the next decode step reads: a sample group's shared prompt prefix
        is read once per step for the whole group (shared-prefix attention, as Kinetics counts)."""
        return self.context_sum() - self.dup_shared_sum

    # ---- membership ----------------------------------------------------------------------
    def add(self, req: int, ctx: int, remaining: int, blocks: list[int], order: int, last_token_s: float,
            retained: int | None = None, budget=None, group: int = -1, shared_tokens: int = 0) -> None:
        k = self.k
        m = Member(req, ctx - k, k + remaining, blocks, order, k, last_token_s, group, shared_tokens)
        self.members[req] = m
        if group >= 0:
            present = self._group_n.get(group, 0)
            self._group_n[group] = present + 1
            if present:
                self.dup_shared_sum += shared_tokens
        self._last_s[last_token_s] = self._last_s.get(last_token_s, 0) + 1
        self._push(self._finish_at, m.end_k, m.epoch, m)
        if self.policy is None:
            self.read_lin_sum += m.c0
            self.held_lin_sum += m.c0
            self.read_lin_n += 1
            self.held_lin_n += 1
            self._push(self._alloc_at, max(k, m.nblocks * self.block_size - m.c0), 0, m)
        else:
            m.budget = budget
            self._enter_phase(m, ctx if retained is None else retained)

    def remove(self, m: Member) -> None:
        del self.members[m.req]
        self._leave_phase(m)
        m.epoch += 1
        m.alloc_epoch += 1
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

    def _enter_phase(self, m: Member, retained: int) -> None:
        ph: Phase = self.policy.phase(retained, m.budget)
        k = self.k
        m.phase, m.read_slope, m.held_slope = ph, ph.read_slope, ph.held_slope
        if ph.read_slope:
            m.read_val = ph.read0 - k - 1
            self.read_lin_sum += m.read_val
            self.read_lin_n += 1
        else:
            m.read_val = ph.read0
            self.read_const_sum += ph.read0
        if ph.held_slope:
            m.held_val = ph.held0 - k - 1
            self.held_lin_sum += m.held_val
            self.held_lin_n += 1
            self._push(self._alloc_at, max(k, m.nblocks * self.block_size - m.held_val), m.alloc_epoch, m)
        else:
            m.held_val = ph.held0
            self.held_const_sum += ph.held0
            if ph.held0 > m.nblocks * self.block_size:
                raise RuntimeError(f"request {m.req}: constant KV phase of {ph.held0} tokens exceeds its "
                                   f"{m.nblocks} blocks")
        if ph.steps < INF:
            self._push(self._phase_at, k + ph.steps, m.epoch, m)

    def _leave_phase(self, m: Member) -> None:
        if m.read_slope:
            self.read_lin_sum -= m.read_val
            self.read_lin_n -= 1
        else:
            self.read_const_sum -= m.read_val
        if m.held_slope:
            self.held_lin_sum -= m.held_val
            self.held_lin_n -= 1
        else:
            self.held_const_sum -= m.held_val

    @staticmethod
    def _push(buckets: dict, k: int, epoch: int, m: Member) -> None:
        entry = (m, epoch)
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
        return [m for m, epoch in bucket if m.alloc_epoch == epoch]

    def grant_blocks(self, members: list[Member], allocate_one) -> None:
        """Give each member one block and schedule its next boundary `block_size` steps later."""
        alloc_at = self._alloc_at
        alloc_at.pop(self.k, None)
        if not members:
            return
        entries = []
        for m in members:
            m.blocks.append(allocate_one())
            m.nblocks += 1
            entries.append((m, m.alloc_epoch))
        nxt = self.k + self.block_size
        bucket = alloc_at.get(nxt)
        if bucket is None:
            alloc_at[nxt] = entries
        else:
            bucket.extend(entries)

    def advance(self, now: float, itl) -> list[Member]:
        """Commit one decode step ending at `now`: gaps go to itl(gap_s, count); returns the
        members that emitted their last token (already removed)."""
        for t, c in self._last_s.items():
            itl(now - t, c)
        self.k += 1
        self._last_decode_s = now
        self._last_s = {now: len(self.members)}
        bucket = self._finish_at.pop(self.k, None)
        done = [m for m, epoch in bucket if m.epoch == epoch] if bucket else []
        for m in done:
            self.remove(m)
        if self._phase_at:  # always empty when dense
            phases = self._phase_at.pop(self.k, None)
            if phases:
                self._end_phases([m for m, epoch in phases if m.epoch == epoch])
        return done

    def _end_phases(self, members: list[Member]) -> None:
        """Budget reached or compression done: free compacted tail blocks, enter the next phase."""
        bs = self.block_size
        for m in members:
            ph = m.phase
            self._leave_phase(m)
            m.alloc_epoch += 1
            keep = -(-ph.retained_end // bs)
            if self._release and keep < m.nblocks:
                self._free(m.blocks[keep:])
                del m.blocks[keep:]
                m.nblocks = keep
            self._enter_phase(m, ph.retained_end)
