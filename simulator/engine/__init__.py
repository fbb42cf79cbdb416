"""Engine: the serving engine's mechanics, one simpy event per engine step.

Owns the replica loop and routers (replica.py), the schedulers that plan a step (schedulers.py:
vllm and sarathi; static_scheduler.py), the sequences a replica holds and preemption
(sequence_pool.py, decode_set.py), the paged KV block pool (block_pool.py) and its prefix-caching variant (prefix_cache.py, with the
host offload tier kv_offload.py), the device memory
plan (memory_plan.py), the run recorder (recorder.py) with its streamed step totals (step_totals.py) and inter-token
gap log (gap_log.py) and the protocol KV policies implement
(kv_phases.py). Features (kv/, speculative/, moe/) are components passed in; no engine module
imports one. Not here: seconds (cost/), summaries (results/).
"""
from simulator.engine.arrivals import after_previous_turn, start_closed_loop, through_frontend
from simulator.engine.block_pool import BlockPool
from simulator.engine.gap_log import GapLog
from simulator.engine.kv_offload import HostKvTier
from simulator.engine.kv_phases import INF, KvPolicy, Phase
from simulator.engine.memory_plan import GB, MemoryPlan, activation_reserve_bytes, check_host_memory, plan_memory
from simulator.engine.prefix_cache import PREFIX_CACHING_POLICIES, merge_stats
from simulator.engine.recorder import DEFAULT_HEAD_STEPS, FAILED, FINISHED, STEP_COLUMNS, RunRecorder
from simulator.engine.replica import ROUTERS, Replica, open_loop_arrivals
from simulator.engine.schedulers import SarathiScheduler, SchedulerLimits, VllmScheduler
from simulator.engine.sequence_pool import SequencePool, SwapSpace
from simulator.engine.static_scheduler import StaticScheduler
from simulator.engine.step_totals import StepTotals

__all__ = ["DEFAULT_HEAD_STEPS", "FAILED", "FINISHED", "GB", "GapLog", "STEP_COLUMNS", "StepTotals", "INF", "ROUTERS", "BlockPool", "KvPolicy", "MemoryPlan", "Phase", "Replica",
           "RunRecorder", "SarathiScheduler", "SchedulerLimits", "SequencePool", "StaticScheduler", "SwapSpace",
           "VllmScheduler", "activation_reserve_bytes", "HostKvTier", "PREFIX_CACHING_POLICIES", "merge_stats", "open_loop_arrivals", "plan_memory", "check_host_memory", "after_previous_turn", "start_closed_loop", "through_frontend"]
