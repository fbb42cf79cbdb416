"""`servesim compare`: a base scenario (built-in default, --scenario FILE, option overrides) and
the cross product of --vary KEY=V1,V2 changes, as one table of metrics and deltas vs the base."""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

from simulator.cli.arg_types import positive_int
from simulator.cli.inert_flags import refuse_inert_flags
from simulator.cli.report import require_report_extra, write_report
from simulator.cli.simulate import add_scenario_arguments, scenario_from_args
from simulator.errors import ServesimError


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_scenario_arguments(p)
    p.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2",
                   help="a Scenario field (e.g. max_num_seqs or max-num-seqs) and its values; repeat for a cross product")
    p.add_argument("--json", action="store_true", help="print the compare document (JSON) to stdout")
    p.add_argument("--out", metavar="DIR", help="write compare.json to DIR, and each run's requests.csv and "
                   "summary.json under DIR/runs/ (the report's latency CDFs)")
    p.add_argument("--jobs", type=positive_int, default=None, help="parallel local processes (default: min(cpus, runs))")
    p.add_argument("--report", metavar="FILE.html", help="also render the comparison as an HTML report")


def run(args: argparse.Namespace) -> int:
    from simulator.studies import (
        compare_json,
        format_compare,
        merge_varies,
        run_compare,
        variant_scenarios,
    )

    if not args.vary:
        raise ServesimError("compare needs at least one --vary KEY=V1,V2")
    if args.report:
        require_report_extra()
    from simulator.results import check_destinations, write_document

    check_destinations(args.out, args.report)  # before any work starts
    grid = merge_varies(args.vary)
    base = scenario_from_args(args)
    variants = variant_scenarios(base, grid)
    refuse_inert_flags(args, [base] + [v for _, v in variants], grid)
    total = 1 + len(variants)
    bar = None
    if not args.json:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="run", desc="compare", file=sys.stderr, leave=False, disable=None)
    with contextlib.ExitStack() as stack:
        # the runs' requests tables go beside compare.json (--out), or to a temporary directory
        # for a report alone: the report draws each run's latency CDFs from them
        root = Path(args.out) if args.out else (Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix="servesim-compare-"))) if args.report else None)
        try:
            doc = run_compare(base, grid, jobs=args.jobs, on_progress=bar.update if bar else None,
                              runs_dir=root / "runs" if root is not None else None)
        finally:
            if bar is not None:
                bar.close()
        text = compare_json(doc)
        write_document(text, "compare.json", out=args.out, report=args.report,
                       render=lambda docs, path: write_report([{**d, "_source_dir": str(root)} for d in docs], path))
    if args.json:
        print(text)
    else:
        print(format_compare(doc))
        if args.out:
            print(f"wrote {Path(args.out) / 'compare.json'}")
        if args.report:
            print(f"wrote {args.report}")
    return 0
