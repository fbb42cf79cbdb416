"""Validation: the simulator checked against real runs. A profiling session of one model
(profiling.py, shared with `servesim profile`) and static-batch serving runs measured against
their simulation (static_batch.py).

Owns measured-vs-predicted comparisons. torch and transformers (profiles/) are imported only
when measuring. Not here: the kernels and timers (profiles/), the fit (profiles/fit.py).
"""
from simulator.validation.profiling import Profiler, model_config, model_dims, profile_model, progress_bar
from simulator.validation.static_batch import (
                                               compare_rounds,
                                               cuda_device_name,
                                               format_report,
                                               measured_metrics,
                                               validation_grid,
)

__all__ = ["Profiler", "compare_rounds", "cuda_device_name", "format_report", "measured_metrics", "model_config",
           "model_dims", "profile_model", "progress_bar", "validation_grid"]
