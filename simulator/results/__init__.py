"""Results: a run's summary with vLLM bench-serve metric names (metrics.py, summary.py), the
result files (files.py; their tables stream: tables.py), the text table (table.py) and the test-time-scaling section (tts.py).

Owns what a user reads of one run, for simulated and measured runs alike. Reads what the engine
records; does not simulate (run.py) or compare runs (studies/).
"""
from simulator.results.files import (
    OutputStage,
    atomic_path,
    check_destinations,
    check_out_dir,
    check_out_file,
    require_parquet,
    write_document,
)
from simulator.results.metrics import summarise_requests
from simulator.results.summary import build_summary, summary_json, version
from simulator.results.table import format_summary
from simulator.results.tables import write_requests_table

__all__ = ["OutputStage", "atomic_path", "build_summary", "check_destinations", "check_out_dir", "check_out_file", "format_summary",
           "require_parquet", "summarise_requests", "summary_json", "version", "write_document", "write_requests_table"]
