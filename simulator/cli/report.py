"""`servesim report RESULT... -o report.html`: render saved results as one self-contained HTML page.

A RESULT is a `servesim simulate --out` directory (or its summary.json), a compare.json or a
plan.json. One run -> a run report; several runs -> a comparison (the first is the base).
Owns the command line only; the page is reports/'s job (needs the `report` extra: plotly).
"""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from simulator.errors import ServesimError

REPORT_EXTRA_HINT = "HTML reports need plotly: pip install 'servesim[report]'"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", metavar="RESULT",
                   help="simulate --out directory, summary.json, compare.json or plan.json")
    p.add_argument("-o", "--output", required=True, metavar="FILE.html", help="where to write the report")


def require_report_extra() -> None:
    """A clear error (exit 2) naming the extra when plotly is not installed."""
    if importlib.util.find_spec("plotly") is None:
        raise ServesimError(REPORT_EXTRA_HINT)


def write_report(sources, out_path) -> Path:
    require_report_extra()
    from reports import render_report

    return render_report(sources, out_path)


def run(args: argparse.Namespace) -> int:
    out = write_report([Path(r) for r in args.results], args.output)
    print(f"wrote {out}")
    return 0
