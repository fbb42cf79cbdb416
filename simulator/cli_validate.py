"""`servesim validate`: a real batched serving run vs the simulator's prediction, side by side.

Builds the validation model (random weights, Hugging Face transformers) on this machine, serves a
fixed workload with static batching at several batch sizes and measures TTFT, TPOT, output
throughput and per-step times. In rounds: serve every batch size, then run one profiling pass of
the kernels the workload's steps use plus the engine's calibration steps (grids.ENGINE_*_POINTS,
other shapes than the workload's), so the real runs and the profile sample the same spells of a
shared machine's contention. Each round is predicted from its own pass (the workload simulated
with `--scheduler static`); the report gives medians over rounds of the measured and predicted
figures and of the per-round errors, with the errors' range and the measured spread. Both sides
are summarised by simulator.metrics.summarise_requests. torch/transformers are imported in run().
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from simulator.cli_profile import needs_profile_extra
from simulator.errors import ServesimError

DEFAULT_MODEL = "tiny-llama-validate"
METRICS = ("mean_ttft_ms", "mean_tpot_ms", "output_throughput", "mean_prefill_step_ms", "mean_decode_step_ms")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help="a Llama-family config (catalog name or config.json)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--batch-sizes", default="1,4,8", help="comma-separated static batch sizes")
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--output-tokens", type=int, default=32)
    p.add_argument("--batches", type=int, default=2, help="batches per batch size (requests = batches x size)")
    p.add_argument("--runs", type=int, default=None,
                   help="rounds of serving every batch size, each followed by a profiling pass that "
                        "predicts it; medians over rounds are reported (default 5, --quick 3)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for the run and the profile")
    p.add_argument("--quick", action="store_true", help="3 rounds and the quick timing plan (about a minute)")
    p.add_argument("--profile", help="predict from this profile table/fit instead of profiling between the runs")
    p.add_argument("--out", default="out/validate-profile", metavar="DIR",
                   help="where the profiles measured between the runs are written (one per round, and combined)")
    p.add_argument("--json", action="store_true")


def _measured(run, *, prompt: int, output: int) -> dict:
    from simulator.metrics import summarise_requests

    n = len(run.first_token_s)
    gaps = np.asarray(run.decode_step_s, dtype=float)
    counts = np.repeat(np.asarray(run.batch_sizes, dtype=np.int64), output - 1)  # each gap: every sequence's token
    m = summarise_requests(arrival_s=np.zeros(n), first_token_s=np.asarray(run.first_token_s),
                           finish_s=np.asarray(run.finish_s), prompt_tokens=np.full(n, prompt),
                           output_tokens=np.full(n, output), ok=np.ones(n, bool), itl_s=gaps,
                           itl_count=counts)
    m["mean_prefill_step_ms"] = float(np.mean(run.prefill_step_s) * 1e3)
    m["mean_decode_step_ms"] = float(np.mean(run.decode_step_s) * 1e3)
    return m


def _predicted(model: str, profile: str, *, batch: int, num_requests: int, prompt: int, output: int,
               device_name: str, dtype: str) -> tuple[dict, dict]:
    from simulator.outputs import build_summary
    from simulator.run import simulate
    from simulator.scenario import Scenario

    s = Scenario(model=model, hardware=device_name, dtype=dtype, scheduler="static", max_num_seqs=batch,
                 num_requests=num_requests, rate=float("inf"), prompt_tokens=str(prompt),
                 output_tokens=str(output), max_model_len=prompt + output, profile=profile)
    result = simulate(s)
    summary = build_summary(result)
    steps = result.recorder.step_arrays()
    prefill = steps["num_prefill_tokens"] > 0
    m = summary["metrics"]
    m["mean_prefill_step_ms"] = float(steps["duration_s"][prefill].mean() * 1e3)
    m["mean_decode_step_ms"] = float(steps["duration_s"][~prefill].mean() * 1e3)
    return m, summary["provenance"]["cost_model"]




def validation_grid(dims, sizes: list[int], prompt: int, output: int) -> list:
    """The kernel shapes this workload's steps run, plus those of the engine calibration steps:
    the prediction then interpolates only between points measured for it, and what validation
    measures is how well kernels plus the engine overhead (measured elsewhere) make whole steps."""
    from profiles.grids import shapes_grid, with_engine_steps

    workload = shapes_grid(dims, tokens={1} | set(sizes) | {b * prompt for b in sizes}, prefill=({prompt}, (0,)),
                           decode=(sizes, {prompt, prompt + output}))
    return with_engine_steps(workload, dims)


def _run(args: argparse.Namespace) -> int:
    from profiles.hf_engine import build_model, serve_static
    from profiles.profiler import check_device, import_torch
    from profiles.timers import FULL_PLAN, QUICK_PLAN
    from simulator.model_spec import load_model
    from simulator.profile_session import (
        Profiler,
        model_config,
        model_dims,
        progress_bar,
    )

    torch = import_torch()
    check_device(torch, args.device)
    sizes = _batch_sizes(args.batch_sizes)
    runs = args.runs or (3 if args.quick else 5)
    if runs < 1 or args.batches < 1 or args.prompt_tokens < 1 or args.output_tokens < 2:
        raise ServesimError("need --runs >= 1, --batches >= 1, --prompt-tokens >= 1 and --output-tokens >= 2")
    spec = load_model(args.model)
    config = model_config(args.model)
    dtype = "fp32" if args.device == "cpu" else "bf16"
    device_name = "cpu" if args.device == "cpu" else _cuda_device_name(torch)
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
            measured[-1][b] = _measured(served, prompt=args.prompt_tokens, output=args.output_tokens)
        if profiler:
            profiler.run_pass()
        if bar:
            bar.update(1)
    if bar:
        bar.close()
    profiles = [profile] * runs
    if profiler:  # each round's own pass, and all passes combined (each shape's middle) for reuse
        out = Path(args.out)
        profiles = [_save(profiler.result(only=r), out / f"round-{r + 1}") for r in range(runs)]
        profile = _save(profiler.result("middle"), out)
        profile_note = (f"measured after each serving round ({len(grid)} kernel shapes + engine steps, "
                        f"{'quick' if args.quick else 'full'} timing) -> {out}/round-N; all {runs} combined -> {out}")
    rows = [_compare(b, [m[b] for m in measured], profiles, args, device_name=device_name, dtype=dtype)
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


def _compare(b: int, rounds: list[dict], profiles: list[str], args, *, device_name: str, dtype: str) -> dict:
    """One batch size: each round's measurement against the prediction from that round's profile
    pass; medians over rounds, and the range of the per-round errors."""
    from simulator.profile_session import model_config_file

    n = b * args.batches
    preds, cost = [], {}
    for profile in profiles:
        pred, cost = _predicted(str(model_config_file(args.model)), profile, batch=b, num_requests=n,
                                prompt=args.prompt_tokens, output=args.output_tokens, device_name=device_name,
                                dtype=dtype)
        preds.append(pred)
    errors = {k: [(p[k] / m[k] - 1) * 100 for p, m in zip(preds, rounds)] for k in METRICS}
    return {"batch_size": b, "num_requests": n,
            "measured": {k: float(np.median([m[k] for m in rounds])) for k in METRICS},
            "predicted": {k: float(np.median([p[k] for p in preds])) for k in METRICS},
            "error_pct": {k: float(np.median(v)) for k, v in errors.items()},
            "error_range_pct": {k: [float(min(v)), float(max(v))] for k, v in errors.items()},
            "measured_spread_pct": {k: float((max(m[k] for m in rounds) - min(m[k] for m in rounds)) / 2
                                             / np.median([m[k] for m in rounds]) * 100) for k in METRICS},
            "step_sources": cost.get("op_sources")}


def _batch_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        sizes = []
    if not sizes or sizes[0] < 1:
        raise ServesimError(f"--batch-sizes {text!r}: need comma-separated positive integers, e.g. 1,4,8")
    return sizes


def _cuda_device_name(torch) -> str:
    name = torch.cuda.get_device_name(0).lower()
    for key, catalog in (("h100", "h100-sxm"), ("h200", "h200"), ("a100", "a100-80gb"), ("l40s", "l40s"),
                         ("l4", "l4"), ("b200", "b200")):
        if key in name:
            return catalog
    raise ServesimError(f"GPU {name!r} has no catalog entry; add one under hardware/data/")


def format_report(r: dict) -> str:
    lines = [(f"validate {r['model']} on {r['device']} ({r['dtype']}, {r['threads']} thread(s)), "
              f"static batching, prompt {r['prompt_tokens']} / output {r['output_tokens']} tokens, "
              f"{r['runs']} rounds"),
             f"profile: {r['profile']}",
             ("medians over rounds; spread: half the measured range, % of the median; error: predicted / "
              "measured - 1 per round (its own profile pass unless --profile), median [min, max]"),
             (f"{'batch':>5} {'metric':<22}{'measured':>11}{'spread %':>9}{'predicted':>11}{'error %':>9}"
              f"{'error range %':>18}")]
    for row in r["results"]:
        for k in METRICS:
            lo, hi = row["error_range_pct"][k]
            lines.append(f"{row['batch_size']:>5} {k:<22}{row['measured'][k]:>11.2f}"
                         f"{row['measured_spread_pct'][k]:>9.1f}{row['predicted'][k]:>11.2f}"
                         f"{row['error_pct'][k]:>+9.1f}{f'[{lo:+.1f}, {hi:+.1f}]':>18}")
    return "\n".join(lines)


run = needs_profile_extra(_run)
