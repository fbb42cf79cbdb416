"""One disaggregated run: a pool of prefill instances and a pool of decode instances sharing one
clock, the KV transfer between them, and one recorder of the client's view.

Owns the composition only (run.py's pieces are reused: limits, requests, memory plans, kernel and
engine cost models, schedulers, the admission checks). A request goes to a prefill instance
(scenario router) with one output token; when its prefill ends, its KV is booked on the prefill
instance's link (transfer.py); when it lands (async) the request is handed to the least-loaded
decode instance, which admits it straight into decode (admission.py). TTFT is the KV's arrival
at the decode instance (the first token is streamed from there, as vLLM's P/D proxy does) and so
includes the transfer. kv_transfer_overlap = "blocking": the request is handed over at the end
of its prefill and the decode instance's admitting step waits for the copy (decode stalls).
Replica indices: prefill instances 0..P-1, decode instances P..P+D-1.
"""
from __future__ import annotations

import time
from typing import Callable, NamedTuple

import simpy

from hardware import device_link, load_device
from simulator.cost import build_cost_model, engine_cost_model, resolve_engine, token_ops
from simulator.disagg.admission import DecodeAdmission, PrefillSide
from simulator.disagg.transfer import KvTransfer
from simulator.engine import ROUTERS, Replica, open_loop_arrivals, plan_memory
from simulator.errors import ServesimError
from simulator.models import load_model


class RunParts(NamedTuple):
    """The pieces of run.py a disaggregated run reuses (passed in: run.py sits above this room)."""

    result: type  # run.RunResult
    build_requests: Callable  # (scenario) -> RequestArrays
    resolve_limits: Callable  # (scenario, max_model_len) -> SchedulerLimits
    make_scheduler: Callable  # run._make_scheduler
    check_parallelism: Callable  # (scenario, model): tp divides the heads
    new_recorder: Callable  # (requests, device, engine, dtype) -> RunRecorder with the run's step totals
    through_frontend: Callable  # (env, dispatch, delay_s) -> dispatch
    kv_policy: Callable  # (scenario, model) -> the KV policy (dense here)


def _pool(s, tp: int, model, device, engine, calibration, parts: RunParts, max_model_len: int):
    """(scenario at this tp, limits, memory plan, cost model) of one pool's instances."""
    ps = s.replace(tp=tp, num_prefill_instances=None)
    parts.check_parallelism(ps, model)
    limits = parts.resolve_limits(ps, max_model_len)
    memory = plan_memory(model, device, dtype=s.dtype, tp=tp, block_size=s.block_size, kv_dtype=s.kv_cache_dtype,
                         gpu_memory_utilization=s.gpu_memory_utilization,
                         max_num_batched_tokens=limits.max_num_batched_tokens, max_num_seqs=s.max_num_seqs)
    kernels = build_cost_model(ps, model, device, token_ops, engine=engine, calibration=calibration)
    return ps, limits, memory, engine_cost_model(kernels, engine, tp=tp, num_layers=model.num_layers)


def simulate_disaggregated(s, parts: RunParts, *, progress=None, engine=None, calibration=None):
    """Run scenario `s` (num_prefill_instances set) disaggregated; returns parts.result (run.RunResult)
    whose cost_model["disaggregation"] describes the pools and the transfers."""
    t0 = time.perf_counter()
    model = load_model(s.model, allow_unknown_architecture=s.allow_unknown_architecture)
    device = load_device(s.hardware)
    if s.kv_policy != "dense" or s.expert_placement is not None or s.enable_prefix_caching:
        raise ServesimError("num_prefill_instances (P/D disaggregation) is invalid with kv_policy, expert_placement "
                            "or enable_prefix_caching; allowed: dense KV, all experts on the GPU, no prefix caching")
    max_model_len = s.max_model_len or model.max_position_embeddings
    engine = engine or resolve_engine(s, device)
    P, D = s.num_prefill_instances, s.num_decode_instances
    p_tp, d_tp = s.prefill_tp or s.tp, s.decode_tp or s.tp
    sp, p_limits, p_memory, p_cost = _pool(s, p_tp, model, device, engine, calibration, parts, max_model_len)
    sd, d_limits, d_memory, d_cost = _pool(s, d_tp, model, device, engine, calibration, parts, max_model_len)
    try:
        link = device_link(device, s.kv_transfer_link)
    except ValueError as exc:
        raise ServesimError(f"kv_transfer_link={s.kv_transfer_link!r}: {exc}") from None
    kv = KvTransfer(link, kv_bytes_per_token=model.kv_bytes_per_token(s.kv_cache_dtype or s.dtype, 1),
                    lanes=min(p_tp, d_tp))
    reqs = parts.build_requests(s)
    rec = parts.new_recorder(reqs, device, engine, s.dtype)
    env = simpy.Environment()
    prompts, outputs = reqs.prompt_tokens.tolist(), reqs.output_tokens.tolist()
    blocking = s.kv_transfer_overlap == "blocking"
    decode = [Replica(env, P + j, DecodeAdmission(parts.make_scheduler(sd, d_limits, d_memory, device, rec, None,
                                                                  model.num_layers, None, engine.admission),
                                                  env, rec, max_num_seqs=s.max_num_seqs,
                                                  blocking_s=kv.blocking_s if blocking else None), d_cost, rec)
              for j in range(D)]
    pick_decode = ROUTERS["least_loaded"](decode)

    def hand_over(req: int) -> None:
        if not blocking:
            rec.first_token(req, env.now)
        pick_decode.pick().submit(req, prompts[req], outputs[req])

    def on_prefilled(req: int, now: float) -> None:
        if outputs[req] <= 1:  # nothing to decode: the prefill's token is the answer
            rec.first_token(req, now)
            rec.finish(req, now)
            return
        if blocking:
            hand_over(req)
            return
        done = kv.reserve(int(side.replica[req]), now, prompts[req])
        env.timeout(done - now).callbacks.append(lambda _e: hand_over(req))

    side = PrefillSide(rec, on_prefilled)
    prefill = [Replica(env, i, parts.make_scheduler(sp, p_limits, p_memory, device, side, None, model.num_layers, None,
                                               engine.admission), p_cost, side) for i in range(P)]
    memory = p_memory if p_memory.kv_capacity_tokens < d_memory.kv_capacity_tokens else d_memory
    dispatch = _dispatcher(env, ROUTERS[s.router](prefill), rec, prompts, outputs, memory.kv_capacity_tokens,
                           max_model_len, prefill[0].scheduler.max_prefill_tokens())
    if s.frontend == "server" and engine.request_overhead_ms > 0:
        dispatch = parts.through_frontend(env, dispatch, engine.request_overhead_ms / 1e3)
    env.process(open_loop_arrivals(env, reqs.arrival_s, dispatch))
    env.run()
    rec.close()
    if progress:
        progress(len(prompts), len(prompts), env.now)
    described = d_cost.describe()
    described["disaggregation"] = {
        "num_prefill_instances": P, "prefill_tp": p_tp, "num_decode_instances": D, "decode_tp": d_tp,
        "num_gpus": P * p_tp + D * d_tp, "kv_transfer_overlap": s.kv_transfer_overlap,
        "kv_transfer": kv.describe(), "prefill_memory": p_memory.as_dict(), "decode_memory": d_memory.as_dict(),
        "prefill_cost_model": p_cost.describe().get("source"),
        "ttft_includes": "prefill queue + prefill + KV transfer (first token streamed by the decode instance)",
    }
    return parts.result(s, model, device, d_memory, described, d_limits, max_model_len, rec, time.perf_counter() - t0,
                     kv_policy=parts.kv_policy(s, model).describe(), engine=engine.describe())


def _dispatcher(env, router, rec, prompts: list[int], outputs: list[int], capacity: int, max_model_len: int,
                max_prefill_tokens: int):
    """Request i to a prefill instance with one output token, or failed with the reason it can
    never be served (as run.py's admission checks; `capacity`: the smaller pool's KV tokens)."""
    def dispatch(i: int) -> None:
        p, o = prompts[i], outputs[i]
        why = (f"prompt+output={p + o} tokens exceeds max_model_len={max_model_len}" if p + o > max_model_len else
               f"prompt+output={p + o} tokens exceeds the KV cache capacity of {capacity} tokens" if p + o > capacity
               else f"prompt={p} tokens exceeds max_num_batched_tokens={max_prefill_tokens}" if p > max_prefill_tokens
               else None)
        if why:
            rec.fail(i, env.now, why)
        else:
            router.pick().submit(i, p, 1)

    return dispatch
