"""`servesim cost`: the Kinetics eFLOPs of one prompt (simulator/accounting/kinetics.py), for one model or
a comma-separated list, as a table or JSON. Intensity: --hardware H (its dense peak FLOP/s for
--dtype over its bandwidth), --intensity I, or by default the paper's 562.5 (B200, 4.5 PFLOP/s).
"""
from __future__ import annotations

import argparse
import json

from simulator.accounting import (
    ATTENTION_MODES,
    COUNTINGS,
    PAPER_INTENSITY,
    PAPER_PEAK_FLOPS,
    PARAMS_CONVENTIONS,
    KineticsInputs,
    kinetics_cost,
    params_per_token,
)
from simulator.cli.arg_types import positive_float, positive_int
from simulator.errors import ServesimError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="catalog name, config.json path, or a comma-separated list")
    p.add_argument("--prompt-tokens", type=positive_int, required=True, help="L_in: prompt length (tokens)")
    p.add_argument("--output-tokens", type=positive_int, required=True, help="L: generated tokens per sample")
    p.add_argument("--samples", type=positive_int, default=1, help="N: samples per prompt (share the prompt's KV)")
    p.add_argument("--hardware", help="device whose F_peak/BW sets the intensity and the seconds")
    p.add_argument("--intensity", type=positive_float, help="FLOPs per byte (default: the paper's 562.5)")
    p.add_argument("--dtype", default="bf16", help="KV/weight dtype for bytes and peak FLOP/s (default bf16)")
    p.add_argument("--attention", default="dense", choices=ATTENTION_MODES, type=str.lower,
                   help="dense, or sparse: topk (needs --budget) or block_topk (needs --budget and --block-size)")
    p.add_argument("--budget", type=positive_int, help="topk/block_topk: attended tokens per query")
    p.add_argument("--block-size", type=positive_int, help="block_topk: tokens per block (one key scored per block)")
    p.add_argument("--counting", default="exact", choices=COUNTINGS, type=str.lower,
                   help=f"{' | '.join(COUNTINGS)}: dense attended total L*L_in + L(L-1)/2, or the paper's "
                        "(2*L_in + L)*L/2 (default exact)")
    p.add_argument("--params-per-token", type=positive_int, help="P (default: by --params-convention)")
    p.add_argument("--params-convention", default="exact", choices=PARAMS_CONVENTIONS,
                   help="P: exact = the active matmul parameters (default); kinetics = the model card's total "
                        "count with embeddings, at 3 significant figures, as the Kinetics authors count")
    p.add_argument("--include-prefill", action="store_true", help="add the prompt's prefill work (once per prompt)")
    p.add_argument("--include-weight-traffic", action="store_true",
                   help="add weight bytes read once per forward pass, shared by the samples")
    p.add_argument("--json", action="store_true", help="print JSON")


def _intensity(args: argparse.Namespace) -> tuple[float, float | None, str]:
    if args.hardware and args.intensity is not None:
        raise ValueError("give --hardware or --intensity, not both")
    if args.hardware:
        from hardware import load_device

        dev = load_device(args.hardware)
        peak = dev.peak_flops(args.dtype)
        return peak / dev.memory_bandwidth_bytes_per_s, peak, f"{dev.name} {args.dtype}"
    if args.intensity is not None:
        return args.intensity, None, "--intensity"
    return PAPER_INTENSITY, PAPER_PEAK_FLOPS, "paper (B200: 4.5 PFLOP/s over 8 TB/s)"


def check_attention_flags(args: argparse.Namespace) -> None:
    """--budget with a sparse --attention only and required there; --block-size with block_topk only
    and required there. Raises ServesimError naming the flags."""
    sparse = args.attention != "dense"
    if sparse and args.budget is None:
        raise ServesimError(f"--attention {args.attention} needs --budget N (attended tokens per query)")
    if not sparse and args.budget is not None:
        raise ServesimError(f"--budget {args.budget} applies to --attention topk or block_topk only "
                            f"(got --attention {args.attention})")
    if args.attention == "block_topk" and args.block_size is None:
        raise ServesimError("--attention block_topk needs --block-size N (tokens per block)")
    if args.attention != "block_topk" and args.block_size is not None:
        raise ServesimError(f"--block-size {args.block_size} applies to --attention block_topk only "
                            f"(got --attention {args.attention})")


def run(args: argparse.Namespace) -> int:
    from simulator.models import load_model

    check_attention_flags(args)
    intensity, peak, source = _intensity(args)
    rows = []
    for name in [n.strip() for n in args.model.split(",") if n.strip()]:
        model = load_model(name)
        inputs = KineticsInputs(
            model=model, prompt_tokens=args.prompt_tokens, output_tokens=args.output_tokens,
            num_samples=args.samples, intensity=intensity, peak_flops=peak, attention=args.attention,
            budget=args.budget, block_size=args.block_size, counting=args.counting, dtype=args.dtype,
            params_per_token=args.params_per_token, params_convention=args.params_convention,
            include_prefill=args.include_prefill,
            include_weight_traffic=args.include_weight_traffic,
        )
        p = params_per_token(model, args.params_convention, args.params_per_token)
        rows.append({"model": model.name, "params_per_token": p, **kinetics_cost(inputs).as_dict()})
    if not rows:
        raise ValueError("--model names no model")
    header = {"prompt_tokens": args.prompt_tokens, "output_tokens": args.output_tokens, "samples": args.samples,
              "attention": args.attention, "budget": args.budget, "block_size": args.block_size,
              "counting": args.counting, "params_convention": args.params_convention, "dtype": args.dtype, "intensity": intensity,
              "intensity_source": source, "include_prefill": args.include_prefill,
              "include_weight_traffic": args.include_weight_traffic}
    if args.json:
        print(json.dumps({"inputs": header, "results": rows}, indent=2, sort_keys=True))
    else:
        print(format_table(header, rows))
    return 0


def format_table(header: dict, rows: list[dict]) -> str:
    attn = header["attention"] + (f" B={header['budget']}" if header["budget"] else "") + (
        f" block={header['block_size']}" if header["block_size"] else "")
    lines = [
        f"Kinetics cost per prompt: L_in={header['prompt_tokens']} L={header['output_tokens']} "
        f"N={header['samples']} attention={attn} counting={header['counting']} {header['dtype']}",
        f"intensity I={header['intensity']:.1f} FLOPs/byte ({header['intensity_source']})"
        + (" +prefill" if header["include_prefill"] else "") + (" +weights" if header["include_weight_traffic"] else ""),
        f"{'model':<14} {'P (B)':>7} {'C_comp FLOPs':>13} {'C_mem bytes':>12} {'eFLOPs comp':>12} "
        f"{'eFLOPs mem':>12} {'eFLOPs total':>13} {'mem %':>6} {'seconds':>9}",
    ]
    for r in rows:
        secs = "n/a" if r["seconds_on_device"] is None else f"{r['seconds_on_device']:.3f}"
        share = r["eflops_memory"] / r["eflops_total"]
        lines.append(
            f"{r['model']:<14} {r['params_per_token'] / 1e9:7.3f} {r['c_comp_flops']:13.4e} {r['c_mem_bytes']:12.4e} "
            f"{r['eflops_compute']:12.4e} {r['eflops_memory']:12.4e} {r['eflops_total']:13.4e} "
            f"{share:6.1%} {secs:>9}")
    return "\n".join(lines)
