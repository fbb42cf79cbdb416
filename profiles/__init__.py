"""Measured kernel tables and calibration (see profiles/README.md).

torch is needed only by kernels.py, profiler.py and hf_engine.py (extra `servesim[profile]`);
table.py, work.py, interp.py, fit.py, vidur.py, grids.py, timers.py and nvml.py import without it.
"""
