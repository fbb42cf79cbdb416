"""`servesim profile`: measure a model's kernels on this machine into a profile table, or import
Vidur compute CSVs into the same format. torch is imported only inside run()."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simulator.cli.arg_types import positive_int
from simulator.errors import ServesimError
from simulator.validation import model_config, profile_model


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="catalog name or config.json path (its layer shapes are profiled)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to run the kernels")
    p.add_argument("--device-name", help="catalog device the table is for (default: cpu, or asked for on cuda)")
    p.add_argument("--dtype", default=None, help="fp32 (CPU default), bf16 (CUDA default), fp16")
    p.add_argument("--tp", type=positive_int, default=1, help="profile per-rank shapes of this tensor-parallel degree")
    p.add_argument("--quick", action="store_true", help="small grid, few repeats (under a minute for tiny models)")
    p.add_argument("--timing", choices=("quick", "full"), help="repeat plan (default: quick with --quick, else full)")
    p.add_argument("--gemm-layout", choices=("fused", "split"), default="fused",
                   help="fused: one QKV and one gate/up GEMM (vLLM); split: separate ones (Hugging Face)")
    p.add_argument("--passes", type=positive_int, default=1,
                   help="time the grid this many times, spread over time (shared machines)")
    p.add_argument("--keep", choices=("middle", "fastest"), default="middle",
                   help="with --passes: each shape's middle pass, or its fastest (the uncontended estimate)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (fixed and recorded)")
    p.add_argument("--max-tokens", type=positive_int, help="largest token count in the GEMM grid")
    p.add_argument("--engine-overhead", action="store_true",
                   help="also time the real model's whole steps in Hugging Face transformers (random weights) "
                        "for the engine's per-step overhead beyond its kernels (needs transformers)")
    p.add_argument("--import-vidur", metavar="CSV", help="convert a Vidur compute CSV instead of measuring")
    p.add_argument("--out", metavar="DIR", help="output directory (default profiles/data/<device>/<model>)")


def needs_profile_extra(impl):
    """Wrap a command that needs torch/transformers: an ImportError becomes one clear line
    (the profiler's import helpers name the extra to install)."""
    def run(args: argparse.Namespace) -> int:
        try:
            return impl(args)
        except ImportError as exc:
            raise ServesimError(str(exc)) from None

    return run


def _run(args: argparse.Namespace) -> int:
    from profiles.table import save_profile

    if args.import_vidur:
        from profiles.vidur import import_vidur_csv, vidur_metadata

        name = args.device_name or "a100-80gb"
        rows = import_vidur_csv(args.import_vidur)
        out = Path(args.out or f"vidur-{Path(args.import_vidur).parent.name.lower()}")
        save_profile(rows, vidur_metadata(args.import_vidur, device=name), out)
        print(f"imported {len(rows)} rows from {args.import_vidur} -> {out}")
        return 0
    if not args.model:
        raise ServesimError("--model is required (or --import-vidur CSV)")
    from simulator.models import load_model

    model = load_model(args.model)
    dtype = args.dtype or ("fp32" if args.device == "cpu" else "bf16")
    device_name = args.device_name or ("cpu" if args.device == "cpu" else None)
    if device_name is None:
        raise ServesimError("--device cuda needs --device-name (the catalog name, e.g. h100-sxm)")
    rows, meta = profile_model(model, device=args.device, device_name=device_name, dtype=dtype, tp=args.tp,
                               quick=args.quick, threads=args.threads, max_tokens=args.max_tokens,
                               engine_config=model_config(args.model) if args.engine_overhead else None,
                               show_progress=sys.stderr.isatty(),
                               timing=args.timing, gemm_layout=args.gemm_layout, passes=args.passes,
                               keep=args.keep)
    out = Path(args.out or Path("profiles/data") / device_name / f"{model.name}-{dtype}-tp{args.tp}")
    save_profile(rows, meta, out)
    print(f"profiled {len(rows)} shapes of {model.name} on {meta['device_name']} ({dtype}) -> {out}")
    for step in meta.get("engine_steps", []):
        note = "" if step["source"] == "profile" else f" (kernels priced from {step['source']}: outside the grid)"
        print(f"engine {step['step']} batch {step['batch_size']} x {step['tokens']} tokens: forward "
              f"{step['forward_us'] / 1e3:.2f} ms, kernels {step['kernels_us'] / 1e3:.2f} ms, "
              f"overhead {step['overhead_us'] / 1e3:+.2f} ms{note}")
    for item in meta["not_recorded"]:
        print(f"not recorded: {item}")
    return 0


run = needs_profile_extra(_run)
