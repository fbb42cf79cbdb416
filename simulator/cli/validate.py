"""`servesim validate`: the simulator against real runs.

`--bench FILE ...`: one's own `vllm bench serve --save-result` files (or SGLang bench_serving
JSONL), each replayed request by request and compared metric by metric
(simulator/validation/bench.py). No torch needed.

`--published`: every point of the shipped dataset of published measurements
(simulator/validation/data/published.csv, or a CSV of the same columns) simulated and compared,
with summaries by device, regime, engine and split (held-out points apart) and cross-device
ratios (simulator/validation/fidelity.py). No torch needed.

Otherwise: a real batched serving run vs the simulator's prediction, side by side.

Builds the validation model (random weights, Hugging Face transformers) on this machine, serves a
fixed workload with static batching at several batch sizes and measures TTFT, TPOT, output
throughput and per-step times. In rounds: serve every batch size, then run one profiling pass of
the kernels the workload's steps use plus the engine's calibration steps (grids.ENGINE_*_POINTS,
other shapes than the workload's), so the real runs and the profile sample the same spells of a
shared machine's contention. Each round is predicted from its own pass (the workload simulated
with `--scheduler static`); the report gives medians over rounds of the measured and predicted
figures and of the per-round errors, with the errors' range and the measured spread. Both sides
are summarised by the same function (validation/static_batch.py). torch/transformers are imported in run().
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from simulator.cli.arg_types import positive_int
from simulator.cli.bench_args import add_bench_target, base_scenario
from simulator.cli.profile import needs_profile_extra
from simulator.errors import ServesimError
from simulator.validation import (
    compare_rounds,
    cuda_device_name,
    format_report,
    measured_metrics,
    progress_bar,
    validation_grid,
)

DEFAULT_MODEL = "tiny-llama-validate"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--published", nargs="?", const="", metavar="CSV",
                   help="check against published measurements: the shipped set, or a CSV with the same columns")
    p.add_argument("--bench", nargs="+", metavar="FILE", help="check against your own `vllm bench serve "
                                                              "--save-result` files (needs --hardware)")
    add_bench_target(p, with_model=False)
    p.add_argument("--engine", help="with --published: price every point with this engine instead of its own "
                                    "(e.g. ideal: the pre-calibration kernels-only model); with --bench: the engine")
    p.add_argument("--only", metavar="TEXT", help="with --published: only points whose id, device, model or engine "
                                                  "contains TEXT")
    p.add_argument("--summary-only", action="store_true", help="with --published: omit the per-point lines")
    p.add_argument("--model", help=f"a Llama-family config (catalog name or config.json; default {DEFAULT_MODEL}); "
                                   "with --bench: the served model (default: the file's model_id)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--batch-sizes", default="1,4,8", help="comma-separated static batch sizes")
    p.add_argument("--prompt-tokens", type=positive_int, default=64)
    p.add_argument("--output-tokens", type=positive_int, default=32)
    p.add_argument("--batches", type=positive_int, default=2, help="batches per batch size (requests = batches x size)")
    p.add_argument("--runs", type=positive_int, default=None,
                   help="rounds of serving every batch size, each followed by a profiling pass that "
                        "predicts it; medians over rounds are reported (default 5, --quick 3)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads for the run and the profile")
    p.add_argument("--quick", action="store_true", help="3 rounds and the quick timing plan (about a minute)")
    p.add_argument("--profile", help="predict from this profile table/fit instead of profiling between the runs")
    p.add_argument("--out", default="out/validate-profile", metavar="DIR",
                   help="where the profiles measured between the runs are written (one per round, and combined)")
    p.add_argument("--json", action="store_true")


def _run(args: argparse.Namespace) -> int:
    from profiles.hf_engine import build_model, serve_static
    from profiles.profiler import check_device, import_torch
    from profiles.timers import FULL_PLAN, QUICK_PLAN
    from simulator.models import load_model
    from simulator.validation import Profiler, model_config, model_dims

    torch = import_torch()
    check_device(torch, args.device)
    sizes = _batch_sizes(args.batch_sizes)
    runs = args.runs or (3 if args.quick else 5)
    if runs < 1 or args.batches < 1 or args.prompt_tokens < 1 or args.output_tokens < 2:
        raise ServesimError("need --runs >= 1, --batches >= 1, --prompt-tokens >= 1 and --output-tokens >= 2")
    spec = load_model(args.model)
    config = model_config(args.model)
    dtype = "fp32" if args.device == "cpu" else "bf16"
    device_name = "cpu" if args.device == "cpu" else cuda_device_name(torch)
    torch.set_num_threads(args.threads)
    model = build_model(config, dtype=dtype, device=args.device)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    profiler, profile = None, args.profile
    if args.profile:
        profile, profile_note = args.profile, f"given: {args.profile}"
    else:
        grid = validation_grid(model_dims(spec, 1), sizes, args.prompt_tokens, args.output_tokens)
        profiler = Profiler(spec, device=args.device, device_name=device_name, dtype=dtype, tp=1, grid=grid,
                            plan=QUICK_PLAN if args.quick else FULL_PLAN, threads=args.threads,
                            gemm_layout="split", engine=model)  # the served model is the engine
    measured: list[dict[int, dict]] = []  # per round, per batch size
    bar = progress_bar(not args.json and sys.stderr.isatty(), runs, unit="round", desc="serve + profile")
    for _ in range(runs):  # serving and profiling alternate: both see the same spells of contention
        measured.append({})
        for b in sizes:
            served = serve_static(model, num_requests=b * args.batches, batch_size=b, prompt_tokens=args.prompt_tokens,
                                  output_tokens=args.output_tokens, sync=sync)
            measured[-1][b] = measured_metrics(served, prompt=args.prompt_tokens, output=args.output_tokens)
        if profiler:
            profiler.run_pass()
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    profiles = [profile] * runs
    if profiler:  # each round's own pass, and all passes combined (each shape's middle) for reuse
        out = Path(args.out).resolve()  # printed below: where the profiles went, from any directory
        profiles = [_save(profiler.result(only=r), out / f"round-{r + 1}") for r in range(runs)]
        profile = _save(profiler.result("middle"), out)
        profile_note = (f"measured after each serving round ({len(grid)} kernel shapes + engine steps, "
                        f"{'quick' if args.quick else 'full'} timing) -> {out}/round-N; all {runs} combined -> {out}")
    rows = [compare_rounds(b, [m[b] for m in measured], profiles, model=args.model, batches=args.batches,
                           prompt=args.prompt_tokens, output=args.output_tokens, device_name=device_name, dtype=dtype)
            for b in sizes]
    report = {"model": spec.name, "device": args.device, "threads": args.threads, "dtype": dtype, "runs": runs,
              "prompt_tokens": args.prompt_tokens, "output_tokens": args.output_tokens,
              "profile": profile_note, "results": rows}
    print(json.dumps(report, indent=2, sort_keys=True, default=float) if args.json else format_report(report))
    return 0


def _save(result: tuple[list, dict], out: Path) -> str:
    from profiles.table import save_profile

    save_profile(*result, out)
    return str(out)


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        sizes = []
    if not sizes or sizes[0] < 1:
        raise ServesimError(f"--batch-sizes {text!r}: need comma-separated positive integers, e.g. 1,4,8")
    return sizes


def _bench(args: argparse.Namespace) -> int:
    from simulator.validation import compare_bench, format_bench_compare
    from simulator.workload import read_bench_result

    reports = []
    for f in args.bench:
        b = read_bench_result(f)
        base = base_scenario(args, b.identity.get("model_id"), engine=args.engine, profile=args.profile)
        reports.append(compare_bench(b, base))
    if args.json:
        print(json.dumps(reports, indent=2, default=float))
    else:
        print("\n\n".join(format_bench_compare(r) for r in reports))
    return 0


def _published(args: argparse.Namespace) -> int:
    from simulator.validation import PUBLISHED_DATA, evaluate, format_fidelity, read_points, report

    points = read_points(args.published or PUBLISHED_DATA)
    if args.only:
        text = args.only.lower()
        points = [p for p in points if any(text in v.lower() for v in (p.id, p.gpu, p.model, p.engine))]
        if not points:
            raise ServesimError(f"--only {args.only!r}: no published point's id, device, model or engine contains it")
    todo = sum(p.split != "excluded" for p in points)
    bar = progress_bar(not args.json and sys.stderr.isatty(), todo, unit="point", desc="simulating published points")
    outcomes = evaluate(points, engine=args.engine,
                        progress=(lambda done, total: bar.update(done - bar.n)) if bar else None)
    if bar:
        bar.close()
    r = report(points, outcomes)
    if args.json:
        print(json.dumps(r, indent=2, default=float))
    else:
        print(format_fidelity(r, points=not args.summary_only))
    return 0


_measured_run = needs_profile_extra(_run)


BENCH_ONLY = ("hardware", "tp", "dtype", "scenario")


def run(args: argparse.Namespace) -> int:
    if args.bench and args.published is not None:
        raise ServesimError("--bench and --published check against different data: use one")
    if args.bench:
        return _bench(args)
    if given := [f"--{k}" for k in BENCH_ONLY if getattr(args, k) is not None]:
        raise ServesimError(f"{', '.join(given)} go with --bench")
    if args.published is not None:
        return _published(args)
    if args.engine or args.only or args.summary_only:
        raise ServesimError("--engine, --only and --summary-only go with --published or --bench")
    args.model = args.model or DEFAULT_MODEL
    return _measured_run(args)
