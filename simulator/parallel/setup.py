"""Composition of pipeline and expert parallelism for one run: the checks that need the model,
the number of engine instances (a replica with data_parallel_size = dp runs dp schedulers), the
memory-plan arguments and the cost-model wrappers.

Owns the order of the wrappers: kernels (all but routed experts under EP) -> expert parallelism
-> pipeline stages -> (engine CPU time, cost/build.py engine_cost_model, outside). Formulas live
in expert.py and pipeline.py.
"""
from __future__ import annotations

from simulator.cost import device_kernels
from simulator.errors import ServesimError
from simulator.models import dtype_bytes
from simulator.parallel.expert import ExpertParallelCostModel, all_to_all_pricer, expert_parallel_size
from simulator.parallel.links import gpu_link
from simulator.parallel.pipeline import PipelineCostModel


def check_parallel(s, model) -> None:
    """Raises ServesimError for pp beyond the model's layers, EP on a dense model or an expert
    count the EP ranks do not divide, and pp or EP combined with speculative decoding or expert
    offloading (their cost models would wrap the wrong one)."""
    if (s.pp > 1 or s.enable_expert_parallel) and (s.draft_model or s.expert_placement is not None
                                                  or s.expert_routing != "uniform"):
        raise ServesimError("pp > 1 and enable_expert_parallel are invalid with draft_model or expert offloading "
                            "(expert_placement/expert_routing); allowed: one of the two")
    if s.pp > model.num_layers:
        raise ServesimError(f"pp={s.pp} exceeds num_hidden_layers={model.num_layers} of {model.name}; "
                            f"allowed: 1..{model.num_layers}")
    if not s.enable_expert_parallel:
        return
    ep = expert_parallel_size(s)
    if not model.is_moe:
        raise ServesimError(f"enable_expert_parallel=true needs an MoE model; {model.name} has no experts")
    if model.num_experts % ep:
        divisors = [d for d in range(1, model.num_experts + 1) if model.num_experts % d == 0]
        raise ServesimError(f"tp x data_parallel_size = {ep} EP ranks does not divide num_experts={model.num_experts} "
                            f"of {model.name}; allowed EP sizes: {divisors}")


def engine_instances(s) -> int:
    """Schedulers the run steps: replicas x data_parallel_size (each DP attention rank has its own)."""
    return s.replicas * s.data_parallel_size


def memory_args(s) -> dict:
    """plan_memory's pp and expert_parallel_size for the scenario."""
    return {"pp": s.pp, "expert_parallel_size": expert_parallel_size(s) if s.enable_expert_parallel else None}


def _expert_rates(s, device, calibration) -> tuple[float, float, str]:
    """Expert GEMMs at the calibration's GEMM efficiencies (as moe/setup.py expert_rates), else
    peaks x the scenario's eta (roofline)."""
    if calibration is None:
        return (device.peak_flops(s.dtype) * s.eta_compute, device.memory_bandwidth_bytes_per_s * s.eta_memory,
                "roofline")
    gemm = calibration.classes["gemm"]
    return (device.peak_flops(s.dtype) * gemm.eta_c(s.dtype), device.memory_bandwidth_bytes_per_s * gemm.eta_memory,
            calibration.kind if calibration.kind in ("fit", "transfer") else "transfer")


def wrap_parallel(s, model, device, cost_model, engine):
    """`cost_model` (one tp group's kernels; without routed experts under EP) with expert and
    pipeline parallelism around it; unchanged for pp = 1 without EP."""
    calibrated = engine.device_model != "ideal" and (s.profile or "").lower() != "none"
    calibration = device_kernels(device) if calibrated else None
    link = gpu_link(device, s.gpu_link, field="gpu_link") if (s.pp > 1 or s.enable_expert_parallel) else None
    beta = dtype_bytes(s.dtype)
    if s.enable_expert_parallel:
        # a link the user names is what the all-to-all crosses; else the measured collectives first
        a2a = all_to_all_pricer(link, None if s.gpu_link else calibration, expert_parallel_size(s))
        cost_model = ExpertParallelCostModel(cost_model, model, tp=s.tp, dp=s.data_parallel_size, beta=beta,
                                             rates=_expert_rates(s, device, calibration), all_to_all=a2a,
                                             kernels=calibration, dtype=s.dtype)
    if s.pp > 1:
        cost_model = PipelineCostModel(cost_model, pp=s.pp, microbatches=s.pp_microbatches or s.pp,
                                       num_layers=model.num_layers, link=link,
                                       activation_bytes_per_token=2 * model.hidden_size * beta)
    return cost_model
