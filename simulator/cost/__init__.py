"""Cost: the only place where step shapes become seconds.

Owns the BatchShape a scheduler hands over (shape.py), per-op FLOPs and bytes (ops.py), the
StepCost record and the CostModel protocol (step.py), the roofline model (roofline.py), the
profiled model built from measured kernels (profiled.py), which profile a scenario uses
(profile_choice.py) and the engine overhead derived from whole measured steps
(engine_overhead.py). Not here: who runs in a step (engine/), feature-specific step costs that
wrap a CostModel (speculative/, moe/).
"""
from simulator.cost.engine_overhead import overhead_rows
from simulator.cost.ops import token_ops, token_ops_without_experts
from simulator.cost.profile_choice import choose_profile, dtypes_match
from simulator.cost.profiled import ProfiledCostModel
from simulator.cost.roofline import RooflineCostModel, RooflineParams
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

__all__ = ["BOUND_COMPUTE", "BOUND_MEMORY", "BOUND_NAMES", "BOUND_OVERHEAD", "SOURCE_CODES", "SOURCE_NAMES",
           "BatchShape", "CostModel", "KvWork", "ProfiledCostModel", "RooflineCostModel", "RooflineParams",
           "StepCost", "choose_profile", "dtypes_match", "overhead_rows", "token_ops", "token_ops_without_experts"]
