"""How requests reach a replica's router beyond the open-loop arrival times (replica.py):
through a serving frontend's delay, a conversation's turns after their previous reply, and
closed-loop users who send again when their last request ends.

Owns these arrival processes as wrappers of a `dispatch(request)` callable and recorder
callbacks; run.py composes them. Does not pick replicas (routers) or decide admission.
"""
from __future__ import annotations

from typing import Callable

from simulator.engine.recorder import PENDING, RunRecorder


def through_frontend(env, dispatch: Callable[[int], None], delay_s: float) -> Callable[[int], None]:
    """A served run: each request reaches the engine `delay_s` after the client sent it (HTTP,
    tokenization, queueing in the API server); the client's clock, and so TTFT, starts at sending."""
    def send(i: int) -> None:
        env.timeout(delay_s).callbacks.append(lambda _event: dispatch(i))

    return send


def after_previous_turn(env, rec: RunRecorder, dispatch: Callable[[int], None],
                         after: list[int]) -> Callable[[int], None]:
    """Multi-turn conversations: a turn whose previous turn has not finished waits for it, then is
    sent at that moment (its arrival, and so its TTFT, start then), as a chat client sends the next
    message only after reading the reply."""
    parked: dict[int, list[int]] = {}
    chained = rec.on_finish

    def send(i: int) -> None:
        j = after[i]
        if j >= 0 and rec.status[j] == PENDING:
            parked.setdefault(j, []).append(i)
        else:
            dispatch(i)

    def on_finish(req: int, time_s: float) -> None:
        if chained is not None:
            chained(req, time_s)
        for i in parked.pop(req, ()):
            rec.arrival_s[i] = time_s
            dispatch(i)

    rec.on_finish = on_finish
    return send


def start_closed_loop(env, rec: RunRecorder, dispatch, users: int, total: int) -> None:
    """Each user sends its next request the moment its previous one ends."""
    state = {"next": min(users, total)}
    chained = rec.on_finish  # e.g. multi-turn conversations release their next turns first

    def on_finish(req: int, time_s: float) -> None:
        if chained is not None:
            chained(req, time_s)
        i = state["next"]
        if i < total:
            state["next"] = i + 1
            rec.arrival_s[i] = time_s
            dispatch(i)

    rec.on_finish = on_finish
    rec.arrival_s[:] = 0.0

    def start():
        for i in range(min(users, total)):
            dispatch(i)
        yield env.timeout(0)

    env.process(start())
