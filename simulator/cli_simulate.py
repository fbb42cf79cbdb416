"""`servesim simulate`: one scenario (built-in default, --scenario FILE, and option overrides)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from simulator.errors import ServesimError
from simulator.scenario import SCHEDULER_NAMES, ROUTER_NAMES, Scenario, load_scenario

# option -> (Scenario field, type, help)
OPTIONS = {
    "--model": ("model", str, "catalog name (see `servesim models`) or path to a config.json"),
    "--hardware": ("hardware", str, "catalog device name or path to a device .toml"),
    "--dtype": ("dtype", str, "weight/KV dtype: bf16, fp16, fp8, fp32"),
    "--tp": ("tp", int, "tensor-parallel GPUs per replica"),
    "--replicas": ("replicas", int, "number of replicas"),
    "--router": ("router", str, f"replica router: {', '.join(ROUTER_NAMES)}"),
    "--scheduler": ("scheduler", str, f"batching: {', '.join(SCHEDULER_NAMES)}"),
    "--max-num-seqs": ("max_num_seqs", int, "max running sequences per replica"),
    "--max-num-batched-tokens": ("max_num_batched_tokens", int, "token budget per step"),
    "--chunk-size": ("chunk_size", int, "largest prefill chunk (sarathi)"),
    "--block-size": ("block_size", int, "KV cache block size in tokens"),
    "--gpu-memory-utilization": ("gpu_memory_utilization", float, "fraction of device memory used"),
    "--preemption-mode": ("preemption_mode", str, "recompute or swap"),
    "--swap-space-gib": ("swap_space_gib", float, "CPU swap space per GPU for swap preemption"),
    "--max-model-len": ("max_model_len", int, "longest prompt+output (default: the model's)"),
    "--num-requests": ("num_requests", int, "requests to simulate (a trace is cut to this many)"),
    "--rate": ("rate", float, "requests/s (inf = all at t=0)"),
    "--arrival": ("arrival", str, "poisson or gamma"),
    "--burstiness": ("burstiness", float, "gamma shape (1 = Poisson, <1 burstier)"),
    "--prompt-tokens": ("prompt_tokens", str, "N, uniform:LO:HI, normal:MEAN:STD, lognormal:MEAN:SIGMA, zipf:A:MAX"),
    "--output-tokens": ("output_tokens", str, "as --prompt-tokens"),
    "--trace": ("trace", str, "replay a trace file (splitwise/vidur CSV, Azure, BurstGPT, Mooncake, ShareGPT)"),
    "--trace-format": ("trace_format", str, "trace format when it cannot be detected"),
    "--trace-arrivals": ("trace_arrivals", str, "trace: the file's timestamps; rate: its lengths with --rate/--arrival"),
    "--closed-loop-users": ("closed_loop_users", int, "N concurrent users instead of an arrival rate"),
    "--seed": ("seed", int, "random seed"),
    "--slo-ttft-ms": ("slo_ttft_ms", float, "TTFT SLO for request_goodput"),
    "--slo-tpot-ms": ("slo_tpot_ms", float, "TPOT SLO for request_goodput"),
    "--slo-e2el-ms": ("slo_e2el_ms", float, "end-to-end latency SLO for request_goodput"),
    "--profile": ("profile", str, "measured profile (table dir, table.csv or fit .json); default: a shipped "
                  "one for the device and dtype if any; 'none' = roofline"),
    "--profile-mismatch-ok": ("profile_mismatch_ok", bool, "use a --profile measured on another device/dtype"),
}


def add_scenario_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", metavar="FILE.toml", help="scenario file; options below override it")
    for flag, (field, typ, help_text) in OPTIONS.items():
        if typ is bool:
            p.add_argument(flag, dest=field, action="store_const", const=True, default=None, help=help_text)
        else:
            p.add_argument(flag, dest=field, type=typ, default=None, help=help_text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_scenario_arguments(p)
    p.add_argument("--json", action="store_true", help="print the summary JSON to stdout")
    p.add_argument("--out", metavar="DIR", help="write summary.json, requests.csv, steps.csv (and trace.json)")
    p.add_argument("--chrome-trace", action="store_true", help="also write trace.json (Perfetto) to --out")


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    base = load_scenario(args.scenario) if args.scenario else Scenario()
    overrides = {field: getattr(args, field) for field, _, _ in OPTIONS.values() if getattr(args, field) is not None}
    return base.replace(**overrides) if overrides else base


def progress_bar(enabled: bool):
    if not enabled:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=0, unit="req", desc="simulating", delay=1.0, file=sys.stderr, leave=False)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar


def run(args: argparse.Namespace) -> int:
    from simulator.outputs import build_summary, summary_json, write_outputs
    from simulator.run import simulate
    from simulator.summary_table import format_summary

    if args.chrome_trace and not args.out:
        raise ServesimError("--chrome-trace needs --out DIR")
    scenario = scenario_from_args(args)
    update, bar = progress_bar(not args.json and sys.stderr.isatty())
    try:
        result = simulate(scenario, progress=update)
    finally:
        if bar is not None:
            bar.close()
    summary = build_summary(result)
    if args.out:
        written = write_outputs(result, summary, Path(args.out), trace=args.chrome_trace)
    if args.json:
        print(summary_json(summary))
    else:
        print(format_summary(summary))
        if args.out:
            print("wrote " + ", ".join(str(p) for p in written))
    return 0
