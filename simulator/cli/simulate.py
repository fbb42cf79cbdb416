"""`servesim simulate`: one scenario (built-in default, --scenario FILE, and option overrides)."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from pathlib import Path

from simulator.errors import ServesimError
from simulator.scenario import (
    KV_POLICY_NAMES,
    ROUTER_NAMES,
    SCHEDULER_NAMES,
    Scenario,
    load_scenario,
)

# option -> (Scenario field, type, help)
OPTIONS = {
    "--model": ("model", str, "catalog name (see `servesim models`) or path to a config.json"),
    "--hardware": ("hardware", str, "catalog device name or path to a device .toml"),
    "--dtype": ("dtype", str, "weight/activation (and by default KV) dtype: bf16, fp16, fp8, fp32"),
    "--kv-cache-dtype": ("kv_cache_dtype", str, "KV cache element type when narrower than --dtype (vLLM's): fp8"),
    "--allow-unknown-architecture": ("allow_unknown_architecture", bool,
                                     "read a config.json whose model_type is not supported the Llama way (said so)"),
    "--tp": ("tp", int, "tensor-parallel GPUs per replica"),
    "--replicas": ("replicas", int, "number of replicas"),
    "--router": ("router", str, f"replica router: {', '.join(ROUTER_NAMES)}"),
    "--pp": ("pp", int, "pipeline-parallel stages per replica (vLLM pipeline_parallel_size)"),
    "--pp-microbatches": ("pp_microbatches", int, "micro-batches per pipelined step (default: pp)"),
    "--data-parallel-size": ("data_parallel_size", int, "attention DP ranks per replica (with --enable-expert-parallel)"),
    "--enable-expert-parallel": ("enable_expert_parallel", bool, "MoE: experts sharded over tp x data-parallel-size GPUs"),
    "--gpu-link": ("gpu_link", str, "link for pipeline sends and all-to-all (hardware/data/links; default: the device's)"),
    "--num-prefill-instances": ("num_prefill_instances", int, "P/D disaggregation: prefill instances"),
    "--num-decode-instances": ("num_decode_instances", int, "P/D disaggregation: decode instances (default 1)"),
    "--prefill-tp": ("prefill_tp", int, "tp of a prefill instance (default --tp)"),
    "--decode-tp": ("decode_tp", int, "tp of a decode instance (default --tp)"),
    "--kv-transfer-link": ("kv_transfer_link", str, "prefill->decode KV link: nvlink4, infiniband-ndr, roce-400g, pcie5, ..."),
    "--kv-transfer-overlap": ("kv_transfer_overlap", str, "async (decode goes on during transfers) or blocking"),
    "--scheduler": ("scheduler", str, f"batching: {', '.join(SCHEDULER_NAMES)}"),
    "--max-num-seqs": ("max_num_seqs", int, "max running sequences per replica"),
    "--max-num-batched-tokens": ("max_num_batched_tokens", int, "token budget per step (default: sarathi: --chunk-size; vllm: max(max_model_len, 2048))"),
    "--chunk-size": ("chunk_size", int, "largest prefill chunk (sarathi)"),
    "--block-size": ("block_size", int, "KV cache block size in tokens"),
    "--gpu-memory-utilization": ("gpu_memory_utilization", float, "fraction of device memory used"),
    "--preemption-mode": ("preemption_mode", str, "recompute or swap"),
    "--swap-space-gib": ("swap_space_gib", float, "CPU swap space per GPU for swap preemption"),
    "--enable-prefix-caching": ("enable_prefix_caching", bool, "automatic prefix caching (vLLM APC): reuse cached "
                                "KV blocks of shared prompt prefixes"),
    "--prefix-caching-policy": ("prefix_caching_policy", str, "prefix cache eviction: vllm (LRU free queue) or sglang "
                                "(free blocks first, then LRU cached leaves)"),
    "--kv-offloading-size-gib": ("kv_offloading_size_gib", float, "prefix caching: host memory (GiB, summed over a "
                                 "replica's GPUs, as vLLM's) holding evicted prefix blocks, fetched back over the host "
                                 "link on a hit"),
    "--max-model-len": ("max_model_len", int, "longest prompt+output (default: the model's)"),
    "--num-requests": ("num_requests", int, "requests to simulate (default: 1000 synthetic, or the whole trace)"),
    "--rate": ("rate", float, "requests/s (inf = all at t=0)"),
    "--arrival": ("arrival", str, "poisson or gamma"),
    "--burstiness": ("burstiness", float, "gamma shape (1 = Poisson, <1 burstier)"),
    "--prompt-tokens": ("prompt_tokens", str, "N, uniform:LO:HI, normal:MEAN:STD, lognormal:MEAN:SIGMA, zipf:A:MAX"),
    "--output-tokens": ("output_tokens", str, "as --prompt-tokens"),
    "--trace": ("trace", str, "replay a trace file (splitwise/vidur CSV, Azure, BurstGPT, Mooncake, ShareGPT)"),
    "--trace-format": ("trace_format", str, "trace format when it cannot be detected"),
    "--trace-arrivals": ("trace_arrivals", str, "trace: the file's timestamps; rate: its lengths with --rate/--arrival"),
    "--trace-skip-failed": ("trace_skip_failed", bool, "BurstGPT: skip rows with 0 output tokens (failed requests)"),
    "--sharegpt-multi-turn": ("sharegpt_multi_turn", bool, "ShareGPT: each turn's prompt is the conversation so far"),
    "--shared-prefix-tokens": ("shared_prefix_tokens", int, "synthetic: a shared system prompt of this many tokens "
                               "before every prompt (vLLM bench --random-prefix-len)"),
    "--shared-prefix-groups": ("shared_prefix_groups", int, "synthetic: distinct shared prefixes (request i uses i mod N)"),
    "--closed-loop-users": ("closed_loop_users", int, "N concurrent users instead of an arrival rate"),
    "--samples-per-prompt": ("samples_per_prompt", int, "Best-of-N: samples per prompt, sharing its KV"),
    "--output-budget-tokens": ("output_budget_tokens", int, "cap every output at this many tokens"),
    "--seed": ("seed", int, "random seed"),
    "--slo-ttft-ms": ("slo_ttft_ms", float, "TTFT SLO for request_goodput"),
    "--slo-tpot-ms": ("slo_tpot_ms", float, "TPOT SLO for request_goodput"),
    "--slo-e2el-ms": ("slo_e2el_ms", float, "end-to-end latency SLO for request_goodput"),
    "--price-usd-per-hour": ("price_usd_per_hour", float, "USD per GPU-hour (default: the hardware catalog's)"),
    "--expert-routing": ("expert_routing", str, "MoE routing: uniform, zipf:S, or an expert-popularity JSON file"),
    "--expert-placement": ("expert_placement", str, "MoE experts on the GPU: all_gpu, static (most popular), lru"),
    "--gpu-expert-slots": ("gpu_expert_slots", int, "experts per MoE layer kept on the GPU (default: as many as fit)"),
    "--expert-exec": ("expert_exec", str, "non-resident expert: fetch (over PCIe), cpu, fiddler (CPU below threshold), auto (default; lru: fetch)"),
    "--expert-cpu-threshold": ("expert_cpu_threshold", int, "fiddler: run on CPU when an expert has fewer tokens"),
    "--expert-prefetch-hit-rate": ("expert_prefetch_hit_rate", float, "fraction of fetches prefetched during the previous layer"),
    "--host": ("host", str, "host CPU (MoE expert offloading; its memory bounds swap space and the KV offload "
                       "tier): catalog name (see `servesim models`) or a host .toml"),
    "--host-link-sharing": ("host_link_sharing", int, "replicas sharing one host link (transfers contend)"),
    "--moe-kv-reserve-tokens": ("moe_kv_reserve_tokens", int, "KV tokens kept on the GPU when sizing expert slots"),
    "--kv-policy": ("kv_policy", str, f"KV cache policy: {', '.join(KV_POLICY_NAMES)}"),
    "--kv-budget": ("kv_budget", float, "KV budget per sequence: tokens (>= 1) or fraction of prompt+output (< 1)"),
    "--kv-heavy-fraction": ("kv_heavy_fraction", float, "h2o: heavy-hitter share of the budget (default 0.5)"),
    "--kv-drop": ("kv_drop", float, "scissorhands m: fraction of the budget (< 1) or tokens (default 0.4)"),
    "--kv-history-window": ("kv_history_window", int, "scissorhands history window w (default 400)"),
    "--kv-protect-recent": ("kv_protect_recent", int, "scissorhands protected recent tokens r (default 10)"),
    "--kv-compaction": ("kv_compaction", str, "inplace (overwrite evicted slots) or gather (copy; frees blocks)"),
    "--kv-select-block": ("kv_select_block", int, "block_topk: tokens per selectable block (default 16)"),
    "--draft-model": ("draft_model", str, "speculative decoding: draft model (catalog name or config.json)"),
    "--draft-hardware": ("draft_hardware", str, "device of the draft (default: shares the target's GPUs)"),
    "--num-speculative-tokens": ("num_speculative_tokens", int, "gamma: draft tokens per iteration (max if adaptive)"),
    "--spec-gamma-policy": ("spec_gamma_policy", str, "fixed, or adaptive (per-iteration gamma maximising tokens/s)"),
    "--acceptance-rate": ("acceptance_rate", float, "i.i.d. per-token acceptance probability alpha"),
    "--acceptance-position-rates": ("acceptance_position_rates", str, "per-position acceptance rates, e.g. 0.9,0.8,0.7"),
    "--acceptance-histogram": ("acceptance_histogram", str, "file of accepted-length counts (JSON list or CSV)"),
    "--spec-advance": ("spec_advance", str, "ragged (per sequence) or min (batch advances by its minimum)"),
    "--spec-realign-overhead": ("spec_realign_overhead", float, "padded-batch realignment, fraction of iteration time"),
    "--engine": ("engine", str, "serving engine: vllm (GPU default), trtllm, sglang, lmdeploy, gpt-fast, hf (CPU default), "
                 "kernels (no engine cost), ideal (the pre-calibration kernels-only model), or an engine .toml"),
    "--frontend": ("frontend", str, "server (requests pass the engine's HTTP frontend) or offline (LLM API)"),
    "--profile": ("profile", str, "measured profile (table dir, table.csv or fit .json); default: a shipped "
                  "one for the device and model if any, over the device calibration; 'none' = ideal roofline"),
    "--profile-mismatch-ok": ("profile_mismatch_ok", bool, "use a --profile measured on another device/dtype"),
}


def add_scenario_arguments(p: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """The scenario options; `exclude` leaves flags out for a command that redefines them."""
    p.add_argument("--scenario", metavar="FILE.toml", help="scenario file; options below override it")
    defaults = {f.name: f.default for f in dataclasses.fields(Scenario)}
    for flag, (field, typ, help_text) in OPTIONS.items():
        if flag in exclude:
            continue
        if defaults.get(field) not in (None, False, dataclasses.MISSING) and "(default" not in help_text:
            help_text = f"{help_text} (default: {defaults[field]})".replace("%", "%%")  # the built-in Scenario's
        if typ is bool:
            p.add_argument(flag, dest=field, action="store_const", const=True, default=None, help=help_text)
        else:
            p.add_argument(flag, dest=field, type=typ, default=None, help=help_text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_scenario_arguments(p)
    p.add_argument("--json", action="store_true", help="print the summary JSON to stdout")
    p.add_argument("--out", metavar="DIR", help="write summary.json, requests.csv, steps.csv (and trace.json)")
    p.add_argument("--chrome-trace", action="store_true", help="also write trace.json (Perfetto) to --out")
    p.add_argument("--report", metavar="FILE.html", help="also render an HTML report (needs the `report` extra)")
    p.add_argument("--out-format", choices=("auto", "csv", "parquet"), default="auto", type=str.lower,
                   help="requests/steps tables as csv or parquet (the `parquet` extra); auto (default): csv up "
                        "to 100,000 requests, parquet above when pyarrow is installed")
    p.add_argument("--compare-baseline", action="store_true",
                   help="with --draft-model: also run without speculation and report the speedup")


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    base = load_scenario(args.scenario) if args.scenario else Scenario()
    overrides = {field: getattr(args, field) for field, _, _ in OPTIONS.values() if getattr(args, field, None) is not None}
    return base.replace(**overrides) if overrides else base


def progress_bar(enabled: bool):
    """A tqdm bar on stderr (shown once a run has taken a second): requests finished of all, the
    simulated time reached, and tqdm's ETA from the finishing rate so far."""
    if not enabled:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=0, unit="req", desc="simulating", delay=1.0, file=sys.stderr, leave=False,
               unit_scale=True, dynamic_ncols=True)

    def update(done: int, total: int, sim_time_s: float | None = None) -> None:
        bar.total = total
        if sim_time_s is not None:
            bar.set_postfix_str(f"simulated {_sim_time(sim_time_s)}", refresh=False)
        bar.update(done - bar.n)

    return update, bar


def _sim_time(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def expected_requests(s: Scenario) -> int:
    """Requests the run will have, as far as known before it starts (a whole trace: 0, unknown)."""
    from simulator.scenario import DEFAULT_NUM_REQUESTS

    if s.num_requests is not None:
        return s.num_requests * s.samples_per_prompt
    return 0 if s.trace else DEFAULT_NUM_REQUESTS * s.samples_per_prompt


def run(args: argparse.Namespace) -> int:
    from simulator.results import (
        OutputStage,
        build_summary,
        check_out_dir,
        check_out_file,
        format_summary,
        summary_json,
    )
    from simulator.run import simulate

    if args.chrome_trace and not args.out:
        raise ServesimError("--chrome-trace needs --out DIR")
    out_format = getattr(args, "out_format", None) or "auto"
    if out_format != "auto" and not args.out:
        raise ServesimError(f"--out-format {out_format} needs --out DIR")
    if out_format == "parquet":
        from simulator.results import require_parquet

        require_parquet()
    if args.out and args.report and Path(args.out).absolute() == Path(args.report).absolute():
        raise ServesimError(f"--out {args.out} and --report {args.report} are the same path; allowed: a directory "
                            "for --out and a file elsewhere for --report")
    if args.out:  # destinations are checked before the run, not after it
        check_out_dir(args.out)
    if args.report:
        check_out_file(args.report)
    scenario = scenario_from_args(args)
    from simulator.cli.inert_flags import refuse_inert_flags  # it reads this module's OPTIONS

    refuse_inert_flags(args, [scenario])
    if args.report:
        from simulator.cli.report import require_report_extra

        require_report_extra()  # before the run, not after it
    with contextlib.ExitStack() as stack:
        stage = None
        if args.out or args.report:  # the step table streams into the staged output as the run goes
            out_dir = Path(args.out) if args.out else Path(stack.enter_context(_temp_dir())) / "run"
            stage = OutputStage(out_dir, num_requests=expected_requests(scenario), trace=args.chrome_trace,
                                out_format=out_format)
        update, bar = progress_bar(not args.json and sys.stderr.isatty())
        try:
            result = simulate(scenario, progress=update, step_sinks=stage.sinks() if stage else ())
            summary = build_summary(result)
            if args.compare_baseline:
                from simulator.speculative import baseline_comparison

                if not scenario.draft_model:
                    raise ServesimError("--compare-baseline needs --draft-model (speculative decoding)")
                base = build_summary(simulate(scenario.replace(draft_model=None)))
                summary["speculative"].update(baseline_comparison(summary["metrics"], base["metrics"]))
        except BaseException:
            if stage is not None:
                stage.abort()
            raise
        finally:
            if bar is not None:
                bar.close()
        written = stage.commit(result, summary) if stage is not None else []
        if not args.out:
            written = []
        if args.report:
            written = written + [_write_report(stage.out_dir, args)]
    if args.json:
        print(summary_json(summary))
    else:
        print(format_summary(summary))
        if args.out or args.report:
            print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _temp_dir():
    import tempfile

    return tempfile.TemporaryDirectory(prefix="servesim-")


def _write_report(run_dir: Path, args: argparse.Namespace) -> Path:
    """The report reads the run's result files (--out's, or a temporary directory's); the HTML
    goes to a temporary name beside --report and replaces it when complete."""
    from simulator.cli.report import write_report
    from simulator.results import atomic_path

    report = Path(args.report)
    with atomic_path(report) as tmp_html:
        write_report([run_dir], tmp_html)
    return report
