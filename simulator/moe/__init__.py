"""MoE expert offloading as a component: routing draws (routing.py), which experts are on the
GPU (placement.py), expert time on GPU, host link and host CPU (cost.py) and the composition
from a Scenario (setup.py).

Owns everything that offloading experts changes. Not here: the plain expected-value MoE cost of
an all-on-GPU model (cost/ops.py), memory of the rest of the model (engine/memory_plan.py).
"""
from simulator.moe.cost import moe_metrics
from simulator.moe.setup import build_moe_cost_models, moe_requested, plan_moe

__all__ = ["build_moe_cost_models", "moe_metrics", "moe_requested", "plan_moe"]
