"""The options `validate --bench` and `calibrate` share: which model, device and engine replay a
user's benchmark files (everything else about the workload comes from the files)."""
from __future__ import annotations

import argparse
from pathlib import Path

from simulator.cli.arg_types import positive_int
from simulator.errors import ServesimError
from simulator.scenario import Scenario, load_scenario


def add_bench_target(p: argparse.ArgumentParser, *, with_model: bool = True) -> None:
    if with_model:
        p.add_argument("--model", help="the served model (catalog name or config.json); default: the file's model_id "
                                       "when it names a catalog model")
    p.add_argument("--hardware", help="the device the benchmark ran on (catalog name or device .toml)")
    p.add_argument("--tp", type=positive_int, help="tensor-parallel GPUs of the served engine (default 1)")
    p.add_argument("--dtype", help="weight/KV dtype of the served model (default bf16)")
    p.add_argument("--scenario", metavar="FILE.toml", help="any other engine settings (max_num_seqs, "
                                                           "max_num_batched_tokens, gpu_memory_utilization, ...)")


def base_scenario(args: argparse.Namespace, model_id: str | None, **extra) -> Scenario:
    """The Scenario the files are replayed on: --scenario, then the options, then `extra`."""
    from simulator.models import model_names

    base = load_scenario(args.scenario) if args.scenario else Scenario()
    model = args.model
    if model is None and model_id:
        guess = Path(str(model_id)).name.lower()
        model = guess if guess in model_names() else None
        if model is None:
            raise ServesimError(f"the benchmark file's model_id {model_id!r} is not a catalog model; pass --model "
                                "(a catalog name or the model's config.json)")
    if not args.hardware and not args.scenario:
        raise ServesimError("pass --hardware: the device the benchmark ran on (e.g. h100-sxm, or a device .toml)")
    kw = {k: v for k, v in (("model", model), ("hardware", args.hardware), ("tp", args.tp), ("dtype", args.dtype))
          if v is not None}
    return base.replace(**kw, **{k: v for k, v in extra.items() if v is not None})
