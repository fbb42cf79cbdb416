"""Parallelism beyond tensor parallelism, as components around a replica's cost model.

Owns pipeline parallelism (pipeline.py: stages, micro-batches, GPipe fill and drain, activations
sent between stages), expert parallelism with data-parallel attention for MoE models (expert.py:
experts sharded over EP ranks, all-to-all dispatch and combine per MoE layer), the link a
scenario's GPUs talk over (links.py), the scenario fields' checks (fields.py), the composition for
one run (setup.py) and the GPU count behind a run's price (summary.py). Not here: tensor-parallel
all-reduce (cost/), the memory plan's arithmetic (engine/memory_plan.py takes pp and ep),
prefill/decode disaggregation (disagg/).
"""
from simulator.parallel.fields import COLOCATED, KV_TRANSFER_OVERLAP, check_parallel_fields, check_pd_options_used
from simulator.parallel.setup import check_parallel, engine_instances, memory_args, wrap_parallel
from simulator.parallel.summary import num_gpus, parallel_sections

__all__ = ["COLOCATED", "KV_TRANSFER_OVERLAP", "check_parallel", "check_parallel_fields", "check_pd_options_used", "engine_instances", "memory_args", "num_gpus",
           "parallel_sections", "wrap_parallel"]
