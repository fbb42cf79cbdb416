"""Workloads: the request table (arrival time, prompt and output tokens) from synthetic arrival
processes and length distributions, or from public trace files.

Owns generating and parsing requests, seeded and deterministic. Not here: admitting or serving
them (run.py, engine/); closed-loop users are driven by the engine as requests finish.
"""
from simulator.workload.requests import RequestArrays
from simulator.workload.synthetic import ARRIVALS, LengthDist, arrival_times, synthetic_requests
from simulator.workload.traces import load_trace

__all__ = ["ARRIVALS", "LengthDist", "RequestArrays", "arrival_times", "load_trace", "synthetic_requests"]
