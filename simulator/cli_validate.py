"""`servesim validate`: a real batched serving run vs the simulator's prediction, side by side.

Builds the validation model (random weights, Hugging Face transformers) on this machine, serves a
fixed workload with static batching at several batch sizes and measures TTFT, TPOT, output
throughput and per-step times; profiles the same model with our profiler (or, with --quick, uses
the shipped CPU profile measured on this machine kind); simulates the same workload with
`--scheduler static`; prints measured vs predicted with the percentage error. Both runs are
summarised by simulator.metrics.summarise_requests. torch/transformers are imported in run().
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from simulator.cli_profile import needs_profile_extra, profile_model
from simulator.errors import ServesimError

DEFAULT_MODEL = "tiny-llama-validate"
SHIPPED_CPU_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "data" / "cpu" / "tiny-llama-validate-fp32"
METRICS = ("mean_ttft_ms", "mean_tpot_ms", "output_throughput", "mean_prefill_step_ms", "mean_decode_step_ms")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, help="a Llama-family config (catalog name or config.json)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--batch-sizes", default="1,4,8", help="comma-separated static batch sizes")
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--output-tokens", type=int, default=32)
    p.add_argument("--batches", type=int, default=2, help="batches per batch size (requests = batches x size)")
    p.add_argument("--runs", type=int, default=3,
                   help="serve the workload this many times per batch size and keep the run of median duration")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for the run and the profile")
    p.add_argument("--quick", action="store_true", help="use the shipped CPU profile instead of profiling now")
    p.add_argument("--profile", help="use this profile table/fit instead of profiling now")
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




def _run(args: argparse.Namespace) -> int:
    from profiles.hf_engine import build_model, serve_static
    from profiles.profiler import check_device, import_torch
    from profiles.table import load_profile, save_profile
    from simulator.model_spec import CONFIG_DIR, load_model

    torch = import_torch()
    check_device(torch, args.device)
    sizes = [int(x) for x in args.batch_sizes.split(",") if x.strip()]
    if not sizes or min(sizes) < 1:
        raise ServesimError(f"--batch-sizes {args.batch_sizes!r}: need positive integers")
    spec = load_model(args.model)
    config_path = Path(args.model) if Path(args.model).is_file() else CONFIG_DIR / f"{spec.name}.json"
    config = json.loads(config_path.read_text())
    dtype, device_name = ("fp32", "cpu") if args.device == "cpu" else ("bf16", None)
    torch.set_num_threads(args.threads)
    profile, profile_note = _choose_profile(args, spec, dtype, load_profile)
    model = build_model(config, dtype=dtype, device=args.device)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    rows = []
    for b in sizes:
        n = b * args.batches
        runs = sorted((serve_static(model, num_requests=n, batch_size=b, prompt_tokens=args.prompt_tokens,
                                    output_tokens=args.output_tokens, sync=sync) for _ in range(max(args.runs, 1))),
                      key=lambda r: max(r.finish_s))
        served = runs[(len(runs) - 1) // 2]
        rows.append({"batch_size": b, "num_requests": n,
                     "measured": _measured(served, prompt=args.prompt_tokens, output=args.output_tokens)})
    if profile is None:  # profile now, same threads, after the serving run
        device_name = device_name or _cuda_device_name(torch)
        prof_rows, meta = profile_model(spec, device=args.device, device_name=device_name, dtype=dtype, tp=1,
                                        quick=True, threads=args.threads, max_tokens=None, engine_overhead=True,
                                        gemm_layout="split", passes=3,
                                        show_progress=not args.json and sys.stderr.isatty())
        out = Path("out") / "validate-profile"
        save_profile(prof_rows, meta, out)
        profile, profile_note = str(out), f"measured now ({len(prof_rows)} shapes) -> {out}"
    for row in rows:
        pred, cost = _predicted(str(config_path), profile, batch=row["batch_size"], num_requests=row["num_requests"],
                                prompt=args.prompt_tokens, output=args.output_tokens,
                                device_name=device_name or _cuda_device_name(torch), dtype=dtype)
        row["predicted"] = pred
        row["error_pct"] = {k: (pred[k] / row["measured"][k] - 1) * 100 for k in METRICS}
        row["step_sources"] = cost.get("op_sources")
    report = {"model": spec.name, "device": args.device, "threads": args.threads, "dtype": dtype, "runs": args.runs,
              "prompt_tokens": args.prompt_tokens, "output_tokens": args.output_tokens,
              "profile": profile_note, "results": rows}
    print(json.dumps(report, indent=2, sort_keys=True, default=float) if args.json else format_report(report))
    return 0


def _cuda_device_name(torch) -> str:
    name = torch.cuda.get_device_name(0).lower()
    for key, catalog in (("h100", "h100-sxm"), ("h200", "h200"), ("a100", "a100-80gb"), ("l40s", "l40s"),
                         ("l4", "l4"), ("b200", "b200")):
        if key in name:
            return catalog
    raise ServesimError(f"GPU {name!r} has no catalog entry; add one under hardware/data/")


def _choose_profile(args, spec, dtype, load_profile) -> tuple[str | None, str]:
    if args.profile:
        return args.profile, f"given: {args.profile}"
    if not args.quick:
        return None, ""
    if args.device != "cpu" or spec.name != DEFAULT_MODEL:
        raise ServesimError("--quick uses the shipped CPU profile of the default model; drop --quick to profile")
    meta = load_profile(SHIPPED_CPU_PROFILE).metadata
    if meta.get("num_threads") != args.threads:
        raise ServesimError(f"the shipped profile was measured with {meta.get('num_threads')} thread(s), "
                            f"--threads is {args.threads}; drop --quick to profile with {args.threads}")
    rel = SHIPPED_CPU_PROFILE.relative_to(SHIPPED_CPU_PROFILE.parents[3])
    return str(SHIPPED_CPU_PROFILE), f"shipped: {rel} (measured {meta.get('date')}, {meta.get('cpu_model')})"


def format_report(r: dict) -> str:
    lines = [f"validate {r['model']} on {r['device']} ({r['dtype']}, {r['threads']} thread(s)), "
             f"static batching, prompt {r['prompt_tokens']} / output {r['output_tokens']} tokens, "
             f"median-duration run of {r['runs']} per batch size",
             f"profile: {r['profile']}",
             f"{'batch':>5} {'metric':<22}{'measured':>12}{'predicted':>12}{'error %':>9}"]
    for row in r["results"]:
        for k in METRICS:
            lines.append(f"{row['batch_size']:>5} {k:<22}{row['measured'][k]:>12.2f}{row['predicted'][k]:>12.2f}"
                         f"{row['error_pct'][k]:>+9.1f}")
    return "\n".join(lines)


run = needs_profile_extra(_run)
