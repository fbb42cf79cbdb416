"""Cost: the only place where step shapes become seconds.

Owns the BatchShape a scheduler hands over (shape.py), per-op FLOPs and bytes (ops.py), the
StepCost record and the CostModel protocol (step.py), the roofline model (roofline.py), the
profiled model over measured kernels or a device calibration (profiled.py, kernel_stack.py),
which calibration a device gets (device_choice.py) and which profile a scenario uses
(profile_choice.py), the serving engines as data and their per-step CPU cost (engine.py), the
composition of all of these for a scenario (build.py), where a prediction's numbers came from and
their known error (known_error.py), and the engine overhead derived from whole measured steps
(engine_overhead.py). Not here: who runs in a step (engine/), feature-specific step costs that
wrap a CostModel (speculative/, moe/).
"""
from simulator.cost.build import build_cost_model, engine_cost_model, resolve_engine
from simulator.cost.device_choice import device_kernels
from simulator.cost.engine import EngineSpec, engine_names, engine_toml, load_engine
from simulator.cost.engine_overhead import overhead_rows
from simulator.cost.known_error import describe_device, prediction_provenance, provenance_line, short_label
from simulator.cost.ops import token_ops, token_ops_without_experts
from simulator.cost.profile_choice import dtypes_match
from simulator.cost.roofline import RooflineCostModel
from simulator.cost.shape import BatchShape, KvWork
from simulator.cost.step import (
                                 BOUND_COMPUTE,
                                 BOUND_MEMORY,
                                 BOUND_NAMES,
                                 BOUND_OVERHEAD,
                                 SOURCE_CODES,
                                 SOURCE_NAMES,
                                 CostModel,
                                 StepCost,
)

__all__ = ["describe_device", "device_kernels", "prediction_provenance", "provenance_line", "short_label", "engine_toml", "EngineSpec", "build_cost_model", "engine_cost_model", "engine_names", "load_engine", "resolve_engine", "BOUND_COMPUTE", "BOUND_MEMORY", "BOUND_NAMES", "BOUND_OVERHEAD", "SOURCE_CODES", "SOURCE_NAMES",
           "BatchShape", "CostModel", "KvWork", "RooflineCostModel",
           "StepCost", "dtypes_match", "overhead_rows", "token_ops", "token_ops_without_experts"]
