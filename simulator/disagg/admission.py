"""The two ends of a disaggregated request inside the engine, without changing the engine.

Owns PrefillSide, the recorder a prefill instance writes to (steps and failures go to the run's
recorder; a finished prefill - the request submitted with one output token - starts the KV
transfer instead of finishing the request), and DecodeAdmission, a scheduler wrapper that admits
a request whose KV arrived straight into the decode set (prompt tokens cached, output - 1 tokens
left, its first token already delivered) when blocks and seats allow, before the wrapped
scheduler plans the step. With blocking transfers the admitting step also waits for the copy.
"""
from __future__ import annotations

from collections import deque

import numpy as np


class PrefillSide:
    """A prefill instance's recorder: forwards steps, preemptions and failures to `rec`; calls
    `on_prefilled(req, time_s)` when a request's prefill (and first token) is done."""

    def __init__(self, rec, on_prefilled):
        self.rec, self.on_prefilled = rec, on_prefilled
        self.replica = np.full(len(rec.status), -1, dtype=np.int64)  # prefill instance per request
        self.prefill_done_s = np.full(len(rec.status), np.nan)

    def first_token(self, req: int, time_s: float) -> None:
        self.prefill_done_s[req] = time_s

    def finish(self, req: int, time_s: float) -> None:
        self.on_prefilled(req, time_s)

    def itl(self, gap_s: float, count: int) -> None:  # a prefill-only request emits no later tokens
        pass

    def __getattr__(self, name):  # step, fail, preempt, preemptions_total, ...
        return getattr(self.rec, name)


class DecodeAdmission:
    """Wraps a pool-backed scheduler of a decode instance (module docstring)."""

    def __init__(self, scheduler, env, rec, *, max_num_seqs: int, blocking_s=None):
        """blocking_s(prompt_tokens) -> seconds the admitting step waits for the KV copy (None: async)."""
        self.sched, self.env, self.rec, self.max_num_seqs = scheduler, env, rec, max_num_seqs
        self.blocking_s = blocking_s
        self.pending: deque[tuple[int, int, int]] = deque()

    @property
    def blocks(self):
        return self.sched.blocks

    @property
    def num_running(self) -> int:
        return self.sched.num_running

    @property
    def num_outstanding(self) -> int:
        return self.sched.num_outstanding + len(self.pending)

    def max_prefill_tokens(self) -> int:
        return self.sched.max_prefill_tokens()

    def enqueue(self, req: int, prompt_tokens: int, output_tokens: int, siblings=None) -> None:
        """A request whose KV has arrived (async) or is about to be copied (blocking)."""
        self.pending.append((req, prompt_tokens, output_tokens, self.env.now))

    def commit(self, plan, now: float) -> None:
        self.sched.commit(plan, now)

    def _admit(self) -> float:
        """Admit pending requests while blocks and seats allow; returns the blocking copy seconds."""
        pool, extra = self.sched.pool, 0.0
        while self.pending and pool.num_running < self.max_num_seqs:
            req, prompt, output, arrived_s = self.pending[0]
            need = pool.blocks.blocks_for(prompt)
            if need > pool.blocks.num_free or pool.waiting or pool.swapped:
                break
            self.pending.popleft()
            first_s = arrived_s
            if self.blocking_s:  # the copy starts now and holds this instance's step
                extra += self.blocking_s(prompt)
                first_s = self.env.now + extra
                self.rec.first_token(req, first_s)
            pool.decode.add(req, prompt, output - 1, pool.blocks.allocate(need), pool._next_order, first_s)
            pool._next_order += 1
        return extra

    def plan(self):
        extra = self._admit() if self.pending else 0.0
        plan = self.sched.plan()
        if extra:  # admitted requests are in the decode set, so there is a plan to hold
            return plan._replace(extra_s=plan.extra_s + extra)
        return plan
