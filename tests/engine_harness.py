"""Builds one replica directly from engine parts, for exact tests on tiny pools.

A constant-time cost model makes every step last `step_s`, so request times are step counts.
"""
from __future__ import annotations

import numpy as np
import simpy

from simulator.cost.step import BOUND_MEMORY, StepCost
from simulator.engine.block_pool import BlockPool
from simulator.engine.recorder import RunRecorder
from simulator.engine.replica import Replica, open_loop_arrivals
from simulator.engine.schedulers import SarathiScheduler, SchedulerLimits, VllmScheduler
from simulator.engine.sequence_pool import SequencePool, SwapSpace
from simulator.engine.static_scheduler import StaticScheduler


class ConstantCost:
    """Every step takes step_s seconds; records the shapes it was asked about."""

    source = "roofline"

    def __init__(self, step_s: float = 1.0):
        self.step_s = step_s
        self.shapes = []

    def step_cost(self, shape):
        self.shapes.append(shape)
        return StepCost(self.step_s, 0.0, self.step_s, 0.0, 0.0, 0.0, 0.0, BOUND_MEMORY, self.source)

    def describe(self) -> dict:
        return {"kind": "constant", "source": self.source}


def run_replica(kind: str, requests: list[tuple[float, int, int]], *, num_blocks: int, block_size: int,
                max_num_seqs: int = 8, max_num_batched_tokens: int = 8, chunk_size: int = 8,
                swap_blocks: int | None = None, step_s: float = 1.0, groups: dict[int, list[int]] | None = None):
    """requests: (arrival_s, prompt_tokens, output_tokens); groups: leader -> sibling request ids
    (Best-of-N samples sharing the leader's prompt). Returns (recorder, cost, scheduler)."""
    arrival = np.array([r[0] for r in requests], dtype=float)
    rec = RunRecorder(arrival, np.array([r[1] for r in requests]), np.array([r[2] for r in requests]))
    blocks = BlockPool(num_blocks, block_size)
    limits = SchedulerLimits(max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens,
                             chunk_size=chunk_size)
    if kind == "static":
        sched = StaticScheduler(blocks, rec, limits)
    else:
        swap = SwapSpace(swap_blocks, 1, 1.0) if swap_blocks is not None else None
        pool = SequencePool(blocks, rec, swap)
        sched = {"vllm": VllmScheduler, "sarathi": SarathiScheduler}[kind](pool, limits)
    env = simpy.Environment()
    cost = ConstantCost(step_s)
    replica = Replica(env, 0, sched, cost, rec)

    followers = {j for sib in (groups or {}).values() for j in sib}

    def dispatch(i: int) -> None:
        if i in followers:
            return
        siblings = [(j, int(rec.output_tokens[j])) for j in (groups or {}).get(i, [])] or None
        replica.submit(i, int(rec.prompt_tokens[i]), int(rec.output_tokens[i]), siblings)

    env.process(open_loop_arrivals(env, arrival, dispatch))
    env.run()
    return rec, cost, sched


def shapes_as_tuples(cost: ConstantCost, kv_reads: bool = False) -> list[tuple]:
    return [(s.prefill_chunks, s.num_decode, s.decode_context_sum, s.num_logits)
            + ((s.decode_kv_read_sum,) if kv_reads else ()) for s in cost.shapes]


class LogRecorder:
    """A recorder stand-in that logs (event, request or gap, time or count) in call order, for
    driving schedulers and sequence pools by hand."""

    def __init__(self):
        self.log = []

    def first_token(self, req, t):
        self.log.append(("first", req, t))

    def finish(self, req, t):
        self.log.append(("finish", req, t))

    def itl(self, gap_s, count):
        self.log.append(("itl", gap_s, count))

    def preempt(self, req):
        self.log.append(("preempt", req))

    def times(self, kind):
        """{request: time} of one event kind ("first", "finish")."""
        return {e[1]: e[2] for e in self.log if e[0] == kind}
