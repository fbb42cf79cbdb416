"""Results: a run's summary with vLLM bench-serve metric names (metrics.py, summary.py), the
result files (files.py), the text table (table.py) and the test-time-scaling section (tts.py).

Owns what a user reads of one run, for simulated and measured runs alike. Reads what the engine
records; does not simulate (run.py) or compare runs (studies/).
"""
from simulator.results.files import write_outputs
from simulator.results.metrics import summarise_requests
from simulator.results.summary import build_summary, summary_json, version
from simulator.results.table import format_summary

__all__ = ["build_summary", "format_summary", "summarise_requests", "summary_json", "version", "write_outputs"]
