"""Workloads: the request table (arrival time, prompt and output tokens) from synthetic arrival
processes and length distributions, from public trace files, or from a measured benchmark's own
result file (bench_results.py: its requests, and its measured latencies for validation/).

Owns generating and parsing requests, seeded and deterministic. Not here: admitting or serving
them (run.py, engine/); closed-loop users are driven by the engine as requests finish.
"""
from simulator.workload.bench_results import BenchResult, read_bench_result
from simulator.workload.prefix import RequestBlockKeys, with_shared_prefix
from simulator.workload.requests import RequestArrays
from simulator.workload.sharegpt import previous_turns
from simulator.workload.synthetic import ARRIVALS, LengthDist, arrival_times, synthetic_requests
from simulator.workload.traces import TRACE_FORMATS, load_trace

__all__ = ["TRACE_FORMATS", "BenchResult", "read_bench_result", "ARRIVALS", "LengthDist", "RequestArrays", "arrival_times", "load_trace", "synthetic_requests",
           "RequestBlockKeys", "previous_turns", "with_shared_prefix"]
