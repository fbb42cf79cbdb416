"""`servesim plan`: capacity planning. For each candidate (cross product of --models, --hardware,
--tp, --scheduler and --vary lists over the base scenario) find the highest per-replica rate
meeting the SLOs, then the replicas and price for --target-rate; print the cheapest feasible
configurations and the Pareto frontier. Resumable: finished candidates live in --store."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simulator.cli.arg_types import positive_float, positive_int
from simulator.cli.inert_flags import refuse_inert_flags
from simulator.cli.report import require_report_extra, write_report
from simulator.cli.simulate import add_scenario_arguments, scenario_from_args
from simulator.errors import ServesimError

GRID_FLAGS = (("--models", "model"), ("--hardware", "hardware"), ("--tp", "tp"), ("--scheduler", "scheduler"))


EPILOG = ("A probe (one replica, --probe-requests requests at one rate) is sustainable when completions keep "
          "up with arrivals (>= 90% of the arrival rate after the first third of requests) and median TTFT "
          "does not rise by more than 0.1 s per s between the first and last thirds; it is ok when it is "
          "sustainable and the SLO percentile of TTFT/TPOT is within the SLOs. The search starts at the "
          "saturation throughput, doubles while ok, then bisects. Other scenario options set the base; "
          "--rate, --replicas, --num-requests and --trace-arrivals are the search's own, and --router has "
          "nothing to route (a probe runs one replica): typed, each is refused; in a --scenario file, a "
          "warning says the file's value is not used.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    add_scenario_arguments(p, exclude=tuple(flag for flag, _ in GRID_FLAGS))
    p.add_argument("--target-rate", type=target_rate, required=True, help="requests/s the deployment must serve")
    p.add_argument("--slo-percentile", type=float, default=99.0, help="percentile the SLOs apply to (default 99)")
    for flag, field in GRID_FLAGS:
        p.add_argument(flag, dest=f"grid_{field}", metavar="A,B", help=f"candidate {field} values (comma list)")
    p.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2", help="more candidate dimensions")
    p.add_argument("--probe-requests", type=positive_int, default=400, help="requests per probe run (default 400)")
    p.add_argument("--max-probes", type=positive_int, default=8, help="simulations per candidate search (default 8)")
    p.add_argument("--jobs", type=positive_int, default=None, help="local processes (default: min(cpus, candidates))")
    p.add_argument("--ray", action="store_true", help="run candidate searches as Ray tasks")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local one)")
    p.add_argument("--store", metavar="DIR",
                   help="resumable result store (default: ~/.cache/servesim/sweeps/<plan hash>, or under "
                        "$XDG_CACHE_HOME or $SERVESIM_CACHE_DIR; the run prints it)")
    p.add_argument("--top", type=positive_int, default=10, help="feasible configurations to list (default 10)")
    p.add_argument("--json", action="store_true", help="print plan.json to stdout")
    p.add_argument("--out", metavar="DIR", help="write plan.json to DIR")
    p.add_argument("--report", metavar="FILE.html", help="also render the plan as an HTML report")
    p.add_argument("--disaggregated", action="store_true",
                   help="cheapest prefill:decode split (--prefill-tp/--decode-tp) meeting the SLOs at --target-rate, "
                        "next to the cheapest colocated replicas (studies/plan/disaggregated.py)")
    p.add_argument("--max-instances", type=positive_int, default=None,
                   help=f"--disaggregated: most instances, P + D (default {DEFAULT_MAX_INSTANCES}, at most "
                        f"{MAX_INSTANCES})")


DEFAULT_MAX_INSTANCES, MAX_INSTANCES = 8, 64


def build_grid(args: argparse.Namespace) -> dict[str, list]:
    from simulator.studies import merge_varies

    specs = [f"{field}={getattr(args, f'grid_{field}')}" for _, field in GRID_FLAGS
             if getattr(args, f"grid_{field}") is not None]
    grid = merge_varies(specs + list(args.vary))
    if getattr(args, "model", None) is not None and "model" in grid:
        given = "--models" if args.grid_model is not None else "--vary model=..."
        raise ServesimError(f"--model {args.model} and {given} both name models; list every candidate in one "
                            f"option: --models {','.join(dict.fromkeys([args.model, *map(str, grid['model'])]))}")
    return grid


def target_rate(text: str) -> float:
    """A deployment's request rate: > 0 and at most 1e7 requests/s (beyond it a typo)."""
    v = positive_float(text)
    if v > 1e7:
        raise argparse.ArgumentTypeError(f"{text} is invalid (allowed: requests/s in (0, 1e7])")
    return v


def check_names(grid: dict[str, list], base) -> None:
    """Every model and device the grid names exists (a typo is an error, not an infeasible candidate)."""
    from hardware import load_device
    from simulator.models import load_model

    for model in grid.get("model", [base.model]):
        load_model(model, allow_unknown_architecture=base.allow_unknown_architecture)
    for device in grid.get("hardware", [base.hardware]):
        load_device(device)


# typed flags the search replaces (studies/plan/sweep.py planning_base and plan/disaggregated.py)
PLAN_SETS = {
    "rate": "the search probes rates itself, up to --target-rate",
    "replicas": "plan computes the replicas (each probe runs one)",
    "num_requests": "each probe runs --probe-requests requests",
    "trace_arrivals": "probes draw arrivals at each probed rate (trace lengths only)",
    "router": "each probe runs one replica; plan multiplies replicas by the rate one sustains",
}


def run(args: argparse.Namespace) -> int:
    from simulator.studies import (
        SearchSettings,
        Slo,
        SweepStore,
        default_store,
        import_ray,
        plan_document,
        plan_json,
        plan_tasks,
        planning_base,
        run_sweep,
        variant_scenarios,
    )

    if args.report:
        require_report_extra()
    if args.ray_address and not args.ray:
        raise ServesimError("--ray-address needs --ray")
    if args.ray:
        import_ray()
    from simulator.results import check_destinations, write_document

    check_destinations(args.out, args.report)  # before any work starts
    base = scenario_from_args(args)
    slo = Slo(ttft_ms=base.slo_ttft_ms, tpot_ms=base.slo_tpot_ms, percentile=args.slo_percentile)
    settings = SearchSettings(probe_requests=args.probe_requests, max_probes=args.max_probes)
    if args.max_instances is not None and not args.disaggregated:
        raise ServesimError(f"--max-instances {args.max_instances} applies to --disaggregated only; allowed: "
                            "unset without it")
    if args.disaggregated:  # P/D disaggregation: its own search (studies/plan/disaggregated.py)
        from simulator.studies import disaggregated_json, format_disaggregated, plan_disaggregated

        if args.report or args.store:
            flag = "--report" if args.report else "--store"
            raise ServesimError(f"{flag} is not available with --disaggregated (its probes run directly, and "
                                "it has no report page yet); allowed: --out DIR (disaggregated.json) or --json")
        max_instances = DEFAULT_MAX_INSTANCES if args.max_instances is None else args.max_instances
        if max_instances > MAX_INSTANCES:
            raise ServesimError(f"--max-instances {max_instances} is invalid; allowed: 2 to {MAX_INSTANCES}")

        grid = build_grid(args)
        if many := [k for k, v in grid.items() if len(v) != 1]:
            raise ServesimError(f"--disaggregated takes one value of {', '.join(many)}; allowed: one per flag")
        base = base.replace(**{k: v[0] for k, v in grid.items()})
        refuse_inert_flags(args, [planning_base(base, settings, slo, args.target_rate)], grid, replaced=PLAN_SETS)
        doc = plan_disaggregated(base, target_rate=args.target_rate, slo=slo, settings=settings,
                                 max_instances=max_instances)
        text = disaggregated_json(doc)
        write_document(text, "disaggregated.json", out=args.out)
        print(text if args.json else format_disaggregated(doc))
        if args.out and not args.json:
            print(f"wrote {Path(args.out) / 'disaggregated.json'}")
        return 0
    grid = build_grid(args)
    check_names(grid, base)
    pbase = planning_base(base, settings, slo, args.target_rate)
    refuse_inert_flags(args, [s for _, s in variant_scenarios(pbase, grid)], grid, replaced=PLAN_SETS)
    tasks = plan_tasks(base, grid, settings=settings, slo=slo, target_rate=args.target_rate)
    store_dir = Path(args.store) if args.store else default_store(tasks)
    t0 = time.perf_counter()
    bar = None
    if not args.json:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), unit="cand", desc="plan", file=sys.stderr, leave=False, disable=None)
    try:
        candidates, computed, reused = run_sweep(
            tasks, SweepStore(store_dir), backend="ray" if args.ray else "local", jobs=args.jobs,
            ray_address=args.ray_address, on_progress=bar.update if bar else None)
    finally:
        if bar is not None:
            bar.close()
    doc = plan_document(candidates, target_rate=args.target_rate, slo=slo)
    text = plan_json(doc)
    write_document(text, "plan.json", out=args.out, report=args.report, render=write_report)
    if args.json:
        print(text)
        return 0
    from simulator.studies import format_plan

    print(format_plan(doc, top=args.top))
    mixed = mixed_cost_models_note(doc)
    if mixed:
        print(mixed)
    print(f"candidates: {computed} computed, {reused} from the store {store_dir} "
          f"({time.perf_counter() - t0:.1f} s)")
    if args.out:
        print(f"wrote {Path(args.out) / 'plan.json'}")
    if args.report:
        print(f"wrote {args.report}")
    return 0


def mixed_cost_models_note(doc: dict) -> str | None:
    """A warning when candidates are priced by cost models of different known error (a device
    fitted on measured tables next to transferred ones, or the ideal roofline): their capacity
    figures are not equally certain (each candidate's cost model and p90 range are in the table)."""
    from simulator.studies import short_cost_model

    kinds: dict[str, set[str]] = {}
    for c in doc["candidates"]:
        if c.get("prediction"):
            kinds.setdefault(short_cost_model(c).split(",")[0], set()).add(c["scenario"]["hardware"])
    if len(kinds) < 2:
        return None
    parts = "; ".join(f"{kind} for {', '.join(sorted(devs))}" for kind, devs in sorted(kinds.items()))
    return (f"note: candidates are priced by cost models of different known error ({parts}); compare the "
            "replicas p90 ranges, not only the point estimates")
