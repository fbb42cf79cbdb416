"""Engine: the serving engine's mechanics, one simpy event per engine step.

Owns the replica loop and routers (replica.py), the schedulers that plan a step (schedulers.py:
vllm and sarathi; static_scheduler.py), the sequences a replica holds and preemption
(sequence_pool.py, decode_set.py), the paged KV block pool (block_pool.py), the device memory
plan (memory_plan.py), the run recorder (recorder.py) and the protocol KV policies implement
(kv_phases.py). Features (kv/, speculative/, moe/) are components passed in; no engine module
imports one. Not here: seconds (cost/), summaries (results/).
"""
from simulator.engine.block_pool import BlockPool
from simulator.engine.kv_phases import INF, KvPolicy, Phase
from simulator.engine.memory_plan import GB, MemoryPlan, activation_reserve_bytes, plan_memory
from simulator.engine.recorder import FAILED, FINISHED, RunRecorder
from simulator.engine.replica import ROUTERS, Replica, open_loop_arrivals
from simulator.engine.schedulers import SarathiScheduler, SchedulerLimits, VllmScheduler
from simulator.engine.sequence_pool import SequencePool, SwapSpace
from simulator.engine.static_scheduler import StaticScheduler

__all__ = ["FAILED", "FINISHED", "GB", "INF", "ROUTERS", "BlockPool", "KvPolicy", "MemoryPlan", "Phase", "Replica",
           "RunRecorder", "SarathiScheduler", "SchedulerLimits", "SequencePool", "StaticScheduler", "SwapSpace",
           "VllmScheduler", "activation_reserve_bytes", "open_loop_arrivals", "plan_memory"]
