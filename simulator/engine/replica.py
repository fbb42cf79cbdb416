"""The simpy engine: replicas that step their scheduler, a router, and the arrival process.

Owns the hot loop (DESIGN.md): plan a step (no time passes) -> cost model -> one simpy
timeout -> record -> commit. One simpy event per engine step, never one per token. Does not
decide batching (schedulers), seconds (cost model) or summaries (metrics).
"""
from __future__ import annotations

from typing import Callable

import simpy

from simulator.cost import SOURCE_CODES, CostModel
from simulator.engine.recorder import RunRecorder


class Replica:
    def __init__(self, env: simpy.Environment, index: int, scheduler, cost_model: CostModel,
                 recorder: RunRecorder, on_step: Callable[[], None] | None = None):
        self.env, self.index, self.scheduler = env, index, scheduler
        self.cost_model, self.rec, self.on_step = cost_model, recorder, on_step
        self._wake: simpy.Event | None = None
        env.process(self._run())

    @property
    def load(self) -> int:
        return self.scheduler.num_outstanding

    def submit(self, req: int, prompt_tokens: int, output_tokens: int,
               siblings: list[tuple[int, int]] | None = None) -> None:
        """Queue a request; `siblings` are the other samples (request, output tokens) of its prompt."""
        self.rec.replica[req] = self.index
        for sibling, _ in siblings or ():
            self.rec.replica[sibling] = self.index
        self.scheduler.enqueue(req, prompt_tokens, output_tokens, siblings)
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()

    def _run(self):
        env, sched, rec, index = self.env, self.scheduler, self.rec, self.index
        blocks = sched.blocks
        # bound once: the loop runs once per engine step
        plan_step, step_cost, commit, record = sched.plan, self.cost_model.step_cost, sched.commit, rec.step
        timeout, on_step, codes = env.timeout, self.on_step, SOURCE_CODES
        while True:
            plan = plan_step()
            if plan is None:
                if sched.num_outstanding:
                    raise RuntimeError(f"replica {index}: scheduler stalled with queued requests")
                self._wake = env.event()
                yield self._wake
                self._wake = None
                continue
            shape = plan.shape
            cost = step_cost(shape)
            start = env.now
            extra_s = plan.extra_s
            duration = cost.time_s + extra_s
            yield timeout(duration)
            record((
                index, start, duration, shape.num_prefill_tokens, shape.num_decode, shape.decode_context_sum,
                shape.num_logits, sched.num_running,
                blocks.num_used, blocks.num_blocks, cost.bound, cost.flops, cost.bytes,
                cost.compute_s, cost.memory_s, cost.comm_s, cost.overhead_s + extra_s, codes[cost.source],
                shape.decode_kv_read_sum, cost.evict_s, rec.preemptions_total,
            ))
            commit(plan, env.now)
            if on_step is not None:
                on_step()


class RoundRobinRouter:
    def __init__(self, replicas: list[Replica]):
        self.replicas, self._next = replicas, 0

    def pick(self) -> Replica:
        r = self.replicas[self._next]
        self._next = (self._next + 1) % len(self.replicas)
        return r


class LeastLoadedRouter:
    """Fewest outstanding (waiting + running) requests; ties go to the lowest index."""

    def __init__(self, replicas: list[Replica]):
        self.replicas = replicas

    def pick(self) -> Replica:
        return min(self.replicas, key=lambda r: r.load)


ROUTERS = {"round_robin": RoundRobinRouter, "least_loaded": LeastLoadedRouter}


ARRIVAL_CHUNK = 65536  # arrival times turned into Python floats this many at a time


def open_loop_arrivals(env: simpy.Environment, arrival_s, dispatch: Callable[[int], None]):
    """Dispatch request i at arrival_s[i] (sorted); same-time arrivals share one event. Reads the
    times in chunks, so memory does not grow with the number of requests."""
    for lo in range(0, len(arrival_s), ARRIVAL_CHUNK):
        for i, t in enumerate(arrival_s[lo:lo + ARRIVAL_CHUNK].tolist(), lo):
            if t > env.now:
                yield env.timeout(t - env.now)
            dispatch(i)
