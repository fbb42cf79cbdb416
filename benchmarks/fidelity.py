"""Fidelity: the simulator against published measurements (issue 13).

Simulates every included point of simulator/validation/data/published.csv with its own engine
(or --engine NAME for all of them, e.g. ideal = the pre-calibration model) and prints the same
table as `servesim validate --published`: per point measured, predicted, error and cost model,
then summaries by split (held-out points apart from the declared calibration points), device,
regime and engine, the cross-device speed ratios, failures and the excluded points with reasons.
Targets (issue 13): median |error| <= 10%, no point beyond 25%, cross-device ratios within 10%.

--write also records the held-out errors per device / engine / calibration kind in
profiles/data/fidelity.json, the known error every prediction then quotes.

    python benchmarks/fidelity.py [--engine NAME] [--summary-only] [--write]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from simulator.cost.known_error import FIDELITY
    from simulator.validation import evaluate, format_fidelity, read_points, report
    from simulator.validation.fidelity import known_errors

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", help="price every point with this engine (default: each point's own)")
    ap.add_argument("--summary-only", action="store_true")
    ap.add_argument("--write", action="store_true", help=f"write the held-out errors to {FIDELITY.relative_to(ROOT)}")
    args = ap.parse_args()
    if args.write and args.engine:
        ap.error("--write records the shipped engines' errors: drop --engine")
    points = read_points()
    t0 = time.perf_counter()
    outcomes = evaluate(points, engine=args.engine)
    wall = time.perf_counter() - t0
    print(format_fidelity(report(points, outcomes), points=not args.summary_only))
    print(f"\n{sum(o.ok for o in outcomes)} points simulated in {wall:.1f} s")
    if args.write:
        FIDELITY.write_text(json.dumps(known_errors(outcomes), indent=1, sort_keys=True) + "\n")
        print(f"wrote {FIDELITY.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
