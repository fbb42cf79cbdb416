"""One simulated run: build the components a Scenario names, run the engine, return results.

Owns composition for a single run (model, device, memory plan, cost model, workload,
schedulers, replicas, router) and request admission checks (requests that can never be
served fail with a reason instead of vanishing). Summaries are results/'s job.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Callable

import numpy as np
import simpy

from hardware import DeviceSpec, load_device, load_host
from simulator.accounting import step_energy_w
from simulator.cost import (
    EngineSpec,
    build_cost_model,
    engine_cost_model,
    prediction_provenance,
    resolve_engine,
    token_ops,
    token_ops_without_experts,
)
from simulator.disagg import RunParts, simulate_disaggregated
from simulator.engine import (
    PREFIX_CACHING_POLICIES,
    ROUTERS,
    BlockPool,
    HostKvTier,
    KvPolicy,
    MemoryPlan,
    Replica,
    RunRecorder,
    SarathiScheduler,
    SchedulerLimits,
    SequencePool,
    StaticScheduler,
    StepTotals,
    SwapSpace,
    VllmScheduler,
    after_previous_turn,
    check_host_memory,
    merge_stats,
    open_loop_arrivals,
    plan_memory,
    start_closed_loop,
    through_frontend,
)
from simulator.errors import ServesimError
from simulator.inert_settings import swap_space_used
from simulator.kv import DensePolicy, build_kv_policy
from simulator.models import ModelSpec, dtype_bytes, load_model
from simulator.moe import build_moe_cost_models, moe_metrics, moe_requested, plan_moe
from simulator.parallel import check_parallel, check_pd_options_used, engine_instances, memory_args, wrap_parallel
from simulator.scenario import DEFAULT_NUM_REQUESTS, Scenario
from simulator.speculative import Speculation
from simulator.workload import (
    LengthDist,
    RequestArrays,
    RequestBlockKeys,
    arrival_times,
    previous_turns,
    synthetic_requests,
    with_shared_prefix,
)

GIB = 1024**3


@dataclass(frozen=True, slots=True)
class RunResult:
    scenario: Scenario
    model: ModelSpec
    device: DeviceSpec
    memory: MemoryPlan
    cost_model: dict
    limits: SchedulerLimits
    max_model_len: int
    recorder: RunRecorder
    wall_s: float
    moe: dict | None = None  # MoE offloading metrics (moe.moe_metrics) when enabled
    kv_policy: dict | None = None  # the KV policy and its budget, reported next to the results
    speculative: dict | None = None  # speculative.Speculation.summary() when draft_model is set
    engine: dict | None = None  # the serving engine (cost.EngineSpec.describe())
    prefix_cache: dict | None = None  # prefix caching counters and hit rates (engine/prefix_cache.py merge_stats)
    stopped: str | None = None  # why simulate's `stop` ended the run early (None: it ran to the end)

    @property
    def calibrated(self) -> bool:
        """Priced by the calibrated device models (every engine but "ideal")."""
        return (self.engine or {}).get("device_model", "calibrated") == "calibrated"


def resolve_limits(s: Scenario, max_model_len: int) -> SchedulerLimits:
    budget = s.max_num_batched_tokens
    if budget is None:
        budget = s.chunk_size if s.scheduler == "sarathi" else max(max_model_len, 2048)
    if s.scheduler == "vllm" and budget < max_model_len:
        raise ServesimError(
            f"max_num_batched_tokens={budget} is smaller than max_model_len={max_model_len}; "
            "without chunked prefill a whole prompt must fit in one step (as vLLM requires): "
            "raise --max-num-batched-tokens, lower --max-model-len, or use --scheduler sarathi"
        )
    if s.scheduler == "sarathi" and budget < s.max_num_seqs:
        raise ServesimError(
            f"max_num_batched_tokens={budget} is smaller than max_num_seqs={s.max_num_seqs}; with chunked prefill "
            "every running sequence's decode token must fit in one step: raise --max-num-batched-tokens (default: "
            "--chunk-size) or lower --max-num-seqs"
        )
    return SchedulerLimits(max_num_seqs=s.max_num_seqs, max_num_batched_tokens=budget, chunk_size=s.chunk_size)


REQUEST_RECORD_BYTES = 256  # per simulated request: its arrays, recorder columns and result row (upper bound)


def check_request_memory(num_requests: int) -> None:
    """Refuse up front a run whose per-request records cannot fit in this machine's memory."""
    need = num_requests * REQUEST_RECORD_BYTES
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if need > have / 2:
        raise ServesimError(f"num_requests={num_requests} needs about {need / 2**30:.1f} GiB for its per-request "
                            f"records ({REQUEST_RECORD_BYTES} B each); this machine has {have / 2**30:.1f} GiB: "
                            "simulate fewer requests (percentiles converge long before)")


def build_requests(s: Scenario) -> RequestArrays:
    """The scenario's prompts (trace or synthetic), fanned out into samples and length-capped."""
    if s.num_requests is not None:
        check_request_memory(s.num_requests * s.samples_per_prompt)
    rng = np.random.default_rng(s.seed)
    reqs = _prompts(s, rng)
    outputs = reqs.output_tokens
    if s.samples_per_prompt > 1:
        dist = LengthDist.parse(s.output_tokens, field="output_tokens")
        outputs = (np.repeat(outputs, s.samples_per_prompt) if s.trace
                   else dist.sample(rng, len(reqs) * s.samples_per_prompt))
    if s.output_budget_tokens:
        outputs = np.minimum(outputs, s.output_budget_tokens)
    if s.samples_per_prompt > 1:
        return reqs.fan_out(s.samples_per_prompt, outputs)
    return RequestArrays(reqs.arrival_s, reqs.prompt_tokens, outputs, prefix=reqs.prefix)


def _prompts(s: Scenario, rng: np.random.Generator) -> RequestArrays:
    if s.trace:
        from simulator.workload import load_trace

        reqs = load_trace(s.trace, s.trace_format, seed=s.seed, skip_zero_output=s.trace_skip_failed,
                          require_timestamps=s.trace_arrivals == "trace", multi_turn=s.sharegpt_multi_turn)
        if s.trace_arrivals == "trace":  # the file's own timestamps: all of it, or the first num_requests
            n = len(reqs) if s.num_requests is None else min(s.num_requests, len(reqs))
            return RequestArrays(reqs.arrival_s[:n], reqs.prompt_tokens[:n], reqs.output_tokens[:n],
                                 prefix=None if reqs.prefix is None else reqs.prefix[:n])
        # lengths only, replayed cyclically in file order when more requests are asked for
        n = len(reqs) if s.num_requests is None else s.num_requests
        idx = np.arange(n) % len(reqs)
        arrivals = arrival_times(rng, n, s.rate, s.arrival, s.burstiness)
        return RequestArrays(arrivals, reqs.prompt_tokens[idx], reqs.output_tokens[idx],
                             prefix=None if reqs.prefix is None else [reqs.prefix[i] for i in idx.tolist()])
    rate = float("inf") if s.closed_loop_users else s.rate
    return with_shared_prefix(synthetic_requests(
        rng, num_requests=s.num_requests or DEFAULT_NUM_REQUESTS, rate=rate, arrival=s.arrival, burstiness=s.burstiness,
        prompt=LengthDist.parse(s.prompt_tokens, field="prompt_tokens"),
        output=LengthDist.parse(s.output_tokens, field="output_tokens"),
    ), s.shared_prefix_tokens, s.shared_prefix_groups)


def _check_host_memory(s: Scenario) -> None:
    """Swap space (swap preemption) and the KV offload tier (prefix caching) of one engine instance
    (its own tp: a P/D pool's) fit the scenario's host."""
    swap = s.swap_space_gib if swap_space_used(s) else 0.0
    if swap or s.kv_offloading_size_gib:
        host = _host(s.host)
        check_host_memory(swap_space_gib=swap, kv_offloading_size_gib=s.kv_offloading_size_gib, tp=s.tp,
                          host_memory_gib=host.memory_gib, host_name=host.name)


@lru_cache(maxsize=8)
def _host(name_or_path: str):
    """load_host, read once per process: every engine instance of a run checks the same host."""
    return load_host(name_or_path)


def check_parallelism(s: Scenario, model: ModelSpec) -> None:
    if model.num_heads % s.tp:
        raise ServesimError(
            f"tp={s.tp} does not divide num_attention_heads={model.num_heads} of {model.name}; "
            f"allowed tp: {[t for t in range(1, model.num_heads + 1) if model.num_heads % t == 0]}"
        )


def _make_scheduler(s: Scenario, limits: SchedulerLimits, memory: MemoryPlan, device: DeviceSpec,
                    rec: RunRecorder, kv: KvPolicy | None = None, num_layers: int = 1, decode=None,
                    admission: str = "preempt", prefix_keys: RequestBlockKeys | None = None):
    _check_host_memory(s)
    if s.enable_prefix_caching:  # automatic prefix caching (engine/prefix_cache.py), host tier if sized
        # vLLM's kv_offloading_size is the buffer summed over the instance's ranks: a block holds
        # kv_bytes_per_block (one GPU's share) on each of its tp x pp GPUs
        host_blocks = int(s.kv_offloading_size_gib * GIB // (memory.kv_bytes_per_block * s.tp * s.pp))
        host = (HostKvTier(host_blocks, memory.kv_bytes_per_block, device.host_link_bytes_per_s)
                if s.kv_offloading_size_gib else None)
        pool_class = PREFIX_CACHING_POLICIES[s.prefix_caching_policy]
        blocks = pool_class(memory.num_gpu_blocks, s.block_size, prefix_keys, host)
    else:
        blocks = BlockPool(memory.num_gpu_blocks, s.block_size)
    if s.scheduler == "static":
        return StaticScheduler(blocks, rec, limits, kv, num_layers)
    swap = None
    if s.preemption_mode == "swap":
        swap = SwapSpace(int(s.swap_space_gib * GIB // memory.kv_bytes_per_block), memory.kv_bytes_per_block,
                         device.host_link_bytes_per_s)
    pool = SequencePool(blocks, rec, swap, kv, decode, admission)
    return {"vllm": VllmScheduler, "sarathi": SarathiScheduler}[s.scheduler](pool, limits)


def describe_prediction(s: Scenario) -> dict:
    """Where `s`'s numbers would come from and their known error, without simulating
    (cost.prediction_provenance of the cost model and engine the scenario resolves to)."""
    model, device = load_model(s.model, allow_unknown_architecture=s.allow_unknown_architecture), load_device(s.hardware)
    engine = resolve_engine(s, device)
    cost = build_cost_model(s, model, device, engine=engine)
    return prediction_provenance(cost.describe(), engine.describe(), device.name,
                                 architecture=model.architecture_class)


def simulate(s: Scenario, *, progress: Callable[..., None] | None = None,
             engine: EngineSpec | None = None, calibration=None, step_sinks: tuple = (),
             stop: Callable[[RunRecorder, float], str | None] | None = None) -> RunResult:
    """Run the scenario. `progress(done, total, sim_time_s)` is called every few hundred steps
    (requests finished or failed, requests in all, simulated seconds); `engine` replaces the
    scenario's engine file and `calibration` (a profiles DeviceKernels) the device's kernel
    calibration (fits try candidates); `step_sinks` get every block of step rows as the run goes
    (results.StepTableWriter streams them to a file); `stop(recorder, now_s)`, called every
    STOP_CHECK_STEPS steps, ends the run early when it returns a reason (RunResult.stopped says it;
    requests not finished by then stay pending)."""
    import time

    check_pd_options_used(s)
    if s.num_prefill_instances is not None:  # P/D disaggregation: its own composition from run.py's pieces
        return simulate_disaggregated(s, _disagg_parts(tuple(step_sinks)), progress=progress, engine=engine,
                                      calibration=calibration)
    t0 = time.perf_counter()
    model = load_model(s.model, allow_unknown_architecture=s.allow_unknown_architecture)
    device = load_device(s.hardware)
    check_parallelism(s, model)
    check_parallel(s, model)
    max_model_len = s.max_model_len or model.max_position_embeddings
    if s.shared_prefix_tokens >= max_model_len:
        raise ServesimError(f"shared_prefix_tokens={s.shared_prefix_tokens} is invalid; allowed: < max_model_len="
                            f"{max_model_len} (every prompt starts with the shared prefix)")
    limits = resolve_limits(s, max_model_len)
    moe_plan = plan_moe(s, model, device, limits.max_num_batched_tokens) if moe_requested(s) else None
    policy = build_kv_policy(s, model)
    kv = None if isinstance(policy, DensePolicy) else policy
    meta = int(policy.metadata_bytes_per_token(model, dtype_bytes(s.dtype), s.tp))
    engine = engine or resolve_engine(s, device)
    kernels = partial(build_cost_model, engine=engine, calibration=calibration)
    spec = Speculation(s, model, device, kernels) if s.draft_model else None
    memory = plan_memory(model, device, dtype=s.dtype, tp=s.tp, block_size=s.block_size, kv_dtype=s.kv_cache_dtype,
                         gpu_memory_utilization=s.gpu_memory_utilization,
                         max_num_batched_tokens=limits.max_num_batched_tokens, max_num_seqs=s.max_num_seqs,
                         offloaded_weight_bytes=moe_plan.host_weight_bytes if moe_plan else 0,
                         metadata_bytes_per_token=meta, **memory_args(s), **(spec.memory_extras() if spec else {}))
    cost_model = kernels(s, model, device,
                         token_ops_without_experts if moe_plan or s.enable_expert_parallel else token_ops)
    if spec:
        memory = spec.fit_memory(memory, plan_memory, limits)
        cost_model = spec.cost_model(cost_model)
    cost_model = wrap_parallel(s, model, device, cost_model, engine)
    reqs = build_requests(s)
    after = previous_turns(reqs.prefix) if s.sharegpt_multi_turn and reqs.prefix is not None else None
    rec = RunRecorder(reqs.arrival_s, reqs.prompt_tokens, reqs.output_tokens,
                      copy_arrivals=bool(s.closed_loop_users) or after is not None,
                      totals=StepTotals(step_energy_w(device, s.dtype, engine)), sinks=tuple(step_sinks))
    num_requests, groups, prefix = len(reqs), _sample_groups(reqs), reqs.prefix
    del reqs  # the recorder's compact copies serve from here on
    env = simpy.Environment()
    on_step = _step_hook(env, rec, progress, stop)
    cost_models = ([cost_model] * engine_instances(s) if moe_plan is None else
                   build_moe_cost_models(s, model, device, moe_plan, cost_model, lambda: env.now))
    cost_models = [engine_cost_model(c, engine, tp=s.tp, num_layers=model.num_layers) for c in cost_models]
    replicas = [Replica(env, i, _make_scheduler(s, limits, memory, device, rec, kv, model.num_layers,
                                                spec.decode_set(i, s.block_size) if spec else None, engine.admission,
                                                RequestBlockKeys(prefix, s.block_size)),
                        cost_models[i], rec, on_step) for i in range(engine_instances(s))]
    router = ROUTERS[s.router](replicas)
    dispatch = _dispatcher(env, router, rec, groups, memory, max_model_len, replicas[0].scheduler.max_prefill_tokens(),
                           policy)
    if s.frontend == "server" and engine.request_overhead_ms > 0:
        dispatch = through_frontend(env, dispatch, engine.request_overhead_ms / 1e3)
    if after is not None:
        dispatch = after_previous_turn(env, rec, dispatch, after)
    if s.closed_loop_users:
        start_closed_loop(env, rec, dispatch, s.closed_loop_users, num_requests)
    else:
        env.process(open_loop_arrivals(env, rec.arrival_s, dispatch))
    stopped = None
    try:
        env.run()
    except StopRun as stop:
        stopped = stop.reason
    rec.close()
    if progress and stopped is None:
        progress(num_requests, num_requests, env.now)
    moe = moe_metrics([c.moe.stats for c in cost_models]) if moe_plan else None
    prefix_cache = merge_stats([r.scheduler.blocks.stats() for r in replicas]) if s.enable_prefix_caching else None
    return RunResult(s, model, device, memory, cost_models[0].describe(), limits, max_model_len, rec,
                     time.perf_counter() - t0, moe=moe, kv_policy=policy.describe(),
                     speculative=spec.summary() if spec else None, engine=engine.describe(), prefix_cache=prefix_cache,
                     stopped=stopped)


def _disagg_parts(step_sinks: tuple = ()) -> RunParts:
    """The pieces a disaggregated run (simulator/disagg) builds its pools from."""
    def new_recorder(reqs, device, engine, dtype: str) -> RunRecorder:
        return RunRecorder(reqs.arrival_s, reqs.prompt_tokens, reqs.output_tokens,
                           totals=StepTotals(step_energy_w(device, dtype, engine)), sinks=step_sinks)

    return RunParts(RunResult, build_requests, resolve_limits, _make_scheduler, check_parallelism, new_recorder,
                    through_frontend, build_kv_policy)


def _dispatcher(env, router, rec: RunRecorder, groups: dict[int, tuple[int, ...]], memory: MemoryPlan,
                max_model_len: int, max_prefill_tokens: int, policy: KvPolicy) -> Callable[[int], None]:
    prompts, outputs = rec.prompt_tokens, rec.output_tokens
    capacity = memory.kv_capacity_tokens

    def reason(p: int, o: int) -> str | None:
        if p + o > max_model_len:
            return f"prompt+output={p + o} tokens exceeds max_model_len={max_model_len}"
        peak = policy.peak_tokens(p, o)
        if peak > capacity:
            return (f"peak KV tokens={peak} (prompt+output={p + o}, policy {policy.name}) exceeds the "
                    f"KV cache capacity of {capacity} tokens")
        if p > max_prefill_tokens:
            return f"prompt={p} tokens exceeds max_num_batched_tokens={max_prefill_tokens}"
        return None

    def dispatch(i: int) -> None:
        members = groups.get(i, (i,)) if groups else (i,)
        if not members:
            return  # a sample dispatched with its group's leader
        ok = []
        for j in members:
            why = reason(int(prompts[j]), int(outputs[j]))
            if why:
                rec.fail(j, env.now, why)
            else:
                ok.append(j)
        if ok:
            siblings = [(j, int(outputs[j])) for j in ok[1:]] or None
            router.pick().submit(ok[0], int(prompts[ok[0]]), int(outputs[ok[0]]), siblings)

    return dispatch


def _sample_groups(reqs: RequestArrays) -> dict[int, tuple[int, ...]]:
    """Leader row -> its group's rows; other samples map to () (they go with their leader)."""
    if reqs.group is None:
        return {}
    out: dict[int, list[int]] = {}
    for i, g in enumerate(reqs.group.tolist()):
        out.setdefault(g, []).append(i)
    return {i: (tuple(rows) if i == rows[0] else ()) for rows in out.values() for i in rows}


STOP_CHECK_STEPS = 32


class StopRun(Exception):
    """Raised from the step hook to end a run early (simulate's `stop`)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _step_hook(env, rec: RunRecorder, progress: Callable[..., None] | None,
               stop: Callable[[RunRecorder, float], str | None] | None) -> Callable[[], None] | None:
    if progress is None and stop is None:
        return None
    total, counter = len(rec.status), [0]

    def on_step() -> None:
        counter[0] += 1
        n = counter[0]
        if stop is not None and n % STOP_CHECK_STEPS == 0:
            reason = stop(rec, env.now)
            if reason:
                raise StopRun(reason)
        if progress is not None and n % 512 == 0:
            progress(rec.num_done, total, env.now)

    return on_step
