"""`servesim calibrate --bench FILE [FILE ...] --hardware H --out DIR`: fit the device's
efficiencies and the engine's CPU time to one's own `vllm bench serve` results
(simulator/validation/bench.py) and write a profile directory `simulate --profile DIR` uses."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from simulator.cli.bench_args import add_bench_target, base_scenario
from simulator.errors import ServesimError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bench", nargs="+", required=True, metavar="FILE",
                   help="`vllm bench serve --save-result` JSON (or SGLang bench_serving JSONL with --output-details)")
    add_bench_target(p)
    p.add_argument("--engine", help="the engine whose CPU-time model is fitted (default vllm)")
    p.add_argument("--fit", metavar="NAMES", help="comma-separated numbers to fit (default "
                                                  "compute_scale,memory_scale,step_overhead_ms; also per_seq_us, "
                                                  "request_overhead_ms or any engine field)")
    p.add_argument("--bounds", nargs="*", default=[], metavar="NAME=LO:HI", help="search range of a fitted number")
    p.add_argument("--no-hold-out", action="store_true", help="skip the leave-one-file-out error (faster)")
    p.add_argument("--out", required=True, metavar="DIR", help="where to write device.json, engine.toml, calibration.json")
    p.add_argument("--json", action="store_true")


def _bounds(items: list[str]) -> dict:
    out = {}
    for item in items:
        name, _, rng = item.partition("=")
        lo, _, hi = rng.partition(":")
        try:
            out[name.strip()] = (float(lo), float(hi))
        except ValueError:
            raise ServesimError(f"--bounds {item!r}: expected NAME=LO:HI, e.g. step_overhead_ms=0:20") from None
        if not out[name.strip()][0] < out[name.strip()][1]:
            raise ServesimError(f"--bounds {item!r}: LO must be below HI")
    return out


def run(args: argparse.Namespace) -> int:
    from simulator.validation import BENCH_FIT_METRICS as FIT_METRICS
    from simulator.validation import calibrate_to_bench, write_calibration
    from simulator.workload import read_bench_result

    benches = [read_bench_result(f) for f in args.bench]
    base = base_scenario(args, benches[0].identity.get("model_id"), engine=args.engine)
    numbers = [n.strip() for n in args.fit.split(",") if n.strip()] if args.fit else None
    result = calibrate_to_bench(benches, base, numbers=numbers, bounds=_bounds(args.bounds), hold_out=not args.no_hold_out)
    out = write_calibration(result, benches, base, Path(args.out))
    record = json.loads((out / "calibration.json").read_text())
    if args.json:
        print(json.dumps(record, indent=2, sort_keys=True))
        return 0
    print(f"calibrated {base.model} on {base.hardware} to {len(benches)} file(s) ({result.evaluations} simulations)")
    for k, v in result.values.items():
        print(f"  {k:<22} {v:.4g}")
    print(f"{'file':<40} {'metric':<20} {'before':>9} {'after':>9} {'held out':>9}")
    for f in record["error_after_pct"]:
        for m in FIT_METRICS:
            held = record["held_out_error_pct"].get(f, {}).get(m, math.nan)
            print(f"{Path(f).name[:40]:<40} {m:<20} {record['error_before_pct'][f][m]:>+8.1f}% "
                  f"{record['error_after_pct'][f][m]:>+8.1f}% " + (f"{held:>+8.1f}%" if math.isfinite(held) else f"{'n/a':>9}"))
    print(f"known error: {record['known_error']}")
    print(f"wrote {out}/ (device.json, engine.toml, calibration.json): servesim simulate --profile {out} ...")
    return 0
