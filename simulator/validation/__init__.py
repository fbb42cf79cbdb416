"""Validation: the simulator checked against real runs. A profiling session of one model
(profiling.py, shared with `servesim profile`), static-batch serving runs measured against
their simulation (static_batch.py), the published measurements (published.py: the dataset;
fidelity.py: simulated and summarised; fidelity_table.py: printed), and the fits that use
declared published points: engine numbers (engine_fit.py) and per-device power (power_fit.py), and
a user's own benchmark files compared and calibrated against (bench.py).

Owns measured-vs-predicted comparisons. torch and transformers (profiles/) are imported only
when measuring. Not here: the kernels and timers (profiles/), the fit (profiles/fit.py).
"""
from simulator.validation.bench import FIT_METRICS as BENCH_FIT_METRICS
from simulator.validation.bench import calibrate as calibrate_to_bench
from simulator.validation.bench import compare as compare_bench
from simulator.validation.bench import format_compare as format_bench_compare
from simulator.validation.bench import write_calibration
from simulator.validation.engine_fit import calibration_points, fit_engine
from simulator.validation.fidelity import evaluate, report
from simulator.validation.fidelity_table import format_fidelity
from simulator.validation.power_fit import fit_all as fit_power_models
from simulator.validation.power_fit import read_runs as read_power_runs
from simulator.validation.power_fit import write_models as write_power_models
from simulator.validation.profiling import Profiler, model_config, model_dims, profile_model, progress_bar
from simulator.validation.published import DATA as PUBLISHED_DATA
from simulator.validation.published import read_points
from simulator.validation.static_batch import (
                                               compare_rounds,
                                               cuda_device_name,
                                               format_report,
                                               measured_metrics,
                                               validation_grid,
)

__all__ = ["BENCH_FIT_METRICS", "calibrate_to_bench", "compare_bench", "format_bench_compare", "write_calibration",
           "PUBLISHED_DATA", "calibration_points", "evaluate", "fit_engine", "fit_power_models", "format_fidelity",
           "read_points", "read_power_runs", "report", "write_power_models",
           "Profiler", "compare_rounds", "cuda_device_name", "format_report", "measured_metrics", "model_config",
           "model_dims", "profile_model", "progress_bar", "validation_grid"]
