"""Measuring one model's profile: its grid shapes through the profiler, in passes, plus the engine steps.

Owns the model -> profiler glue that `servesim profile` and `servesim validate` share: per-rank
dimensions of a ModelSpec, the config.json behind a --model argument (to build the real model),
the Profiler (passes that callers may interleave with other work; each shape's middle or fastest
pass; engine steps turned into overhead rows by simulator/cost/engine_overhead.py) and profile_model,
the one-shot form with a progress bar. torch is imported only when measuring.
"""
from __future__ import annotations

import sys
from pathlib import Path

from simulator.errors import ServesimError


def model_dims(model, tp: int):
    from profiles.grids import ModelDims
    from simulator.models import kv_heads_per_rank

    return ModelDims(name=model.name, hidden_size=model.hidden_size, num_heads=model.num_heads // tp,
                     num_kv_heads=kv_heads_per_rank(model, tp), head_dim=model.head_dim,
                     intermediate_size=model.intermediate_size // tp, vocab_size=model.vocab_size // tp,
                     gated_mlp=model.gated_mlp, num_experts=model.num_experts,
                     moe_intermediate_size=model.moe_intermediate_size // tp)


def model_config_file(name_or_path: str) -> Path:
    """The config.json behind a --model argument: the file itself, or the catalog entry's."""
    from simulator.models import config_path

    return config_path(name_or_path)[0]


def model_config(name_or_path: str) -> dict:
    """The config.json contents behind a --model argument, less comment keys, to build the model."""
    import json

    raw = json.loads(model_config_file(name_or_path).read_text())
    return {k: v for k, v in raw.items() if not k.startswith("_")}


class Profiler:
    """One model's profile, measured in passes that callers may interleave with other work
    (`servesim validate` serves between them, so both sample the same spells of a shared machine's
    contention). result() keeps each shape's middle or fastest pass, or one pass; given the real
    model (`engine`, built by profiles.hf_engine.build_model), its whole steps are timed in every
    pass too and become overhead rows."""

    def __init__(self, model, *, device: str, device_name: str, dtype: str, tp: int, grid: list, plan,
                 threads: int, gemm_layout: str, engine=None):
        self.model, self.device, self.device_name, self.dtype, self.tp = model, device, device_name, dtype, tp
        self.grid, self.plan, self.threads, self.gemm_layout = grid, plan, threads, gemm_layout
        self.kernel_passes: list[list] = []
        self.engine_passes: list[list] = []
        self.meta: dict = {}
        self.engine, self.sync = engine, None
        if engine is not None:
            from profiles.profiler import import_torch

            self.sync = import_torch().cuda.synchronize if device == "cuda" else (lambda: None)

    def run_pass(self, progress=None) -> None:
        from profiles.profiler import run_profile

        rows, self.meta = run_profile(self.grid, dtype=self.dtype, device=self.device, plan=self.plan,
                                      num_threads=self.threads, gemm_layout=self.gemm_layout, progress=progress)
        self.kernel_passes.append(rows)
        if self.engine is not None:
            from profiles import grids
            from profiles.hf_engine import time_engine_steps

            self.engine_passes.append(time_engine_steps(self.engine, decode_points=grids.ENGINE_DECODE_POINTS,
                                                        prefill_points=grids.ENGINE_PREFILL_POINTS, plan=self.plan,
                                                        sync=self.sync))

    def result(self, which: str = "middle", only: int | None = None) -> tuple[list, dict]:
        """(rows, metadata): kernels, then the overheads derived from the engine steps; each shape
        from its middle or fastest pass (profiles.profiler.pick_pass), or all from pass `only`."""
        from profiles.profiler import pick_pass

        if not self.kernel_passes:
            raise ValueError("no profiling pass was run")
        kernel_passes, engine_passes = self.kernel_passes, self.engine_passes
        if only is not None:
            kernel_passes, engine_passes = [kernel_passes[only]], engine_passes[only:only + 1]
        rows = pick_pass(kernel_passes, which)
        meta = dict(self.meta, device=self.device_name, model=self.model.name, tp=self.tp,
                    passes=len(kernel_passes), pass_kept=which if only is None else f"pass {only + 1}",
                    engine_overhead=None)
        if engine_passes:
            from hardware.catalog import load_device
            from simulator.cost import overhead_rows

            extra, records = overhead_rows(rows, pick_pass(engine_passes, which), model=self.model,
                                           device=load_device(self.device_name), dtype=self.dtype, tp=self.tp)
            rows = rows + extra
            meta.update(engine_overhead="hf transformers: whole forwards of the real model minus their kernels",
                        engine_steps=records)
        return rows, meta


def profile_model(model, *, device: str, device_name: str, dtype: str, tp: int, quick: bool, threads: int,
                  max_tokens: int | None, engine_config: dict | None, show_progress: bool,
                  timing: str | None = None, gemm_layout: str = "fused", passes: int = 1, keep: str = "middle"):
    """(rows, metadata) of a measured profile of `model` (a ModelSpec); with its config.json
    contents as engine_config, also the engine's per-step overhead."""
    from profiles.grids import kernel_grid, with_engine_steps
    from profiles.timers import FULL_PLAN, QUICK_PLAN

    if passes < 1:
        raise ServesimError(f"--passes must be >= 1, got {passes}")
    dims = model_dims(model, tp)
    grid = kernel_grid(dims, quick=quick, device_kind=device, max_tokens=max_tokens)
    if engine_config is not None:  # the engine steps' own kernels are always measured
        grid = with_engine_steps(grid, dims)
    plan = QUICK_PLAN if (timing or ("quick" if quick else "full")) == "quick" else FULL_PLAN
    engine = None
    if engine_config is not None:
        from profiles.hf_engine import build_model

        engine = build_model(engine_config, dtype=dtype, device=device)
    profiler = Profiler(model, device=device, device_name=device_name, dtype=dtype, tp=tp, grid=grid, plan=plan,
                        threads=threads, gemm_layout=gemm_layout, engine=engine)
    bar = progress_bar(show_progress, len(grid) * passes)
    for start in range(0, passes * len(grid), len(grid)):
        profiler.run_pass(progress=(lambda i, n, op, at=start: (bar.update(at + i - bar.n), bar.set_postfix_str(op)))
                          if bar else None)
    if bar:
        bar.close()
    rows, meta = profiler.result(keep)
    meta.update(grid="quick" if quick else "full", timing_plan="quick" if plan is QUICK_PLAN else "full")
    return rows, meta


def progress_bar(enabled: bool, total: int, *, unit: str = "shape", desc: str = "profiling"):
    """A tqdm bar on stderr, or None when disabled (not a terminal, --json)."""
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr)
