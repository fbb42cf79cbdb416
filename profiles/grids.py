"""Which shapes to profile for a model: per-op grids chosen from the model's dimensions.

Owns ModelDims (the few config numbers the kernels need, per tensor-parallel rank; built by the
CLI from a ModelSpec, since profiles/ cannot import simulator/) and the quick/full grids: GEMMs
and elementwise ops over a token-count grid, prefill attention over (chunk, context), decode
attention and KV append over (batch, context), MoE experts over tokens per expert, host<->device
copies over sizes (CUDA only) and CPU GEMMs over small token counts; the engine calibration steps
(ENGINE_*_POINTS) and their kernel shapes; grid completion, so that every interpolation cell has
all its corners. No torch here.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from profiles.table import make_shape

QUICK_TOKENS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
FULL_TOKENS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048,
               3072, 4096, 6144, 8192)
QUICK_DECODE = ((1, 2, 4, 8, 16), (16, 64, 128, 256, 512))
FULL_DECODE = ((1, 2, 4, 8, 16, 32, 64, 128, 256), (16, 128, 512, 1024, 2048, 4096, 8192))
QUICK_PREFILL = ((16, 32, 64, 128, 256), (0, 256))
FULL_PREFILL = ((16, 32, 64, 128, 256, 512, 1024, 2048, 4096), (0, 512, 2048, 8192))
COPY_BYTES = tuple(2**k for k in range(12, 31, 2))
# Where the engine's whole steps are timed for its per-step overhead (profiles/hf_engine.py): away
# from `servesim validate`'s default workload (batches 1, 4, 8; prompt 64; contexts 64-95), so that
# validation checks the overhead at shapes it was not measured at. Batch 1 is measured on its own:
# single-row GEMMs take another path (GEMV), so its step is not read off the batch >= 2 trend.
# Batches 4 and 8 are timed at another context (160) than the workload's: without them, one noisy
# point at batch 2 set the overhead of every batch up to 16 (a new config predicted 14% fast).
ENGINE_DECODE_POINTS = ((1, 16), (2, 16), (4, 160), (8, 160), (16, 16))  # (batch, KV context before the step)
ENGINE_PREFILL_POINTS = ((1, 32), (4, 32), (4, 192))  # (batch, prompt tokens)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelDims:
    """Per-rank dimensions of one decoder layer (tp already applied)."""

    name: str
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int  # dense MLP width per rank (0 if none)
    vocab_size: int  # per rank
    gated_mlp: bool = True
    num_experts: int = 0
    moe_intermediate_size: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden_size", "num_heads", "num_kv_heads", "head_dim", "vocab_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelDims.{name} must be >= 1, got {getattr(self, name)!r}")


def kernel_grid(m: ModelDims, *, quick: bool, device_kind: str, max_tokens: int | None = None) -> list:
    """[(op, shape)] in profiling order: the quick or full grid."""
    tokens = [t for t in (QUICK_TOKENS if quick else FULL_TOKENS) if max_tokens is None or t <= max_tokens]
    grid = shapes_grid(m, tokens=tokens, prefill=QUICK_PREFILL if quick else FULL_PREFILL,
                       decode=QUICK_DECODE if quick else FULL_DECODE)
    if device_kind == "cuda":
        sizes = COPY_BYTES[:6] if quick else COPY_BYTES
        grid += [(op, make_shape(num_bytes=n)) for op in ("copy_h2d_pinned", "copy_h2d_pageable",
                                                          "copy_d2h_pinned", "copy_d2h_pageable") for n in sizes]
        width = m.moe_intermediate_size or m.intermediate_size
        grid += [("cpu_gemm", make_shape(num_tokens=t, in_dim=m.hidden_size, out_dim=width))
                 for t in (1, 2, 4, 8, 16, 32)]
    return grid


def engine_step_grid(m: ModelDims) -> list:
    """The kernel shapes of the engine calibration steps, as the cost model prices them (token ops
    at the step's tokens, lm_head at one logit per sequence, prefill attention per sequence,
    decode attention over the cache plus the new token, KV append over the cache)."""
    decode, prefill = ENGINE_DECODE_POINTS, ENGINE_PREFILL_POINTS
    batches = {b for b, _ in decode} | {b for b, _ in prefill}
    return shapes_grid(m, tokens=batches | {b * p for b, p in prefill}, prefill=({p for _, p in prefill}, (0,)),
                       decode=({b for b, _ in decode}, {c for _, c in decode} | {c + 1 for _, c in decode}))


def with_engine_steps(grid: list, m: ModelDims) -> list:
    """grid plus the engine steps' kernel shapes, completed so every interpolation cell is whole."""
    return complete_grid(grid + engine_step_grid(m))


def complete_grid(grid: list) -> list:
    """Distinct (op, shape) pairs in first-seen order, plus the missing points of each op's grid
    (the product of the values seen on each interpolation axis), which interpolation needs."""
    from profiles.interp import grid_key
    from profiles.work import axes_of

    seen, groups = {}, {}
    for op, shape in grid:
        seen.setdefault((op, tuple(sorted(shape.items()))), (op, shape))
        axes = axes_of(op)
        group = groups.setdefault(grid_key(op, shape, ""), (op, shape, [set() for _ in axes]))
        for values, axis in zip(group[2], axes):
            values.add(shape.get(axis, 0))
    for op, shape, values in groups.values():
        axes = axes_of(op)
        for point in itertools.product(*(sorted(v) for v in values)):
            full = dict(shape, **dict(zip(axes, point)))
            seen.setdefault((op, tuple(sorted(full.items()))), (op, full))
    return list(seen.values())


def shapes_grid(m: ModelDims, *, tokens, prefill: tuple, decode: tuple) -> list:
    """[(op, shape)]: token ops at each token count, prefill attention over (chunks x contexts),
    decode attention and KV append over (batches x contexts)."""
    h, d = m.hidden_size, m.head_dim
    qkv_out = (m.num_heads + 2 * m.num_kv_heads) * d
    heads = dict(num_heads=m.num_heads, num_kv_heads=m.num_kv_heads, head_dim=d)
    grid = []
    for t in sorted(set(tokens)):
        grid += [("attn_qkv", make_shape(num_tokens=t, in_dim=h, out_dim=qkv_out, **heads)),
                 ("attn_out", make_shape(num_tokens=t, in_dim=m.num_heads * d, out_dim=h)),
                 ("rms_norm", make_shape(num_tokens=t, in_dim=h)),
                 ("residual_add", make_shape(num_tokens=t, in_dim=h)),
                 ("rotary", make_shape(num_tokens=t, **heads)),
                 ("embedding", make_shape(num_tokens=t, in_dim=h, out_dim=m.vocab_size)),
                 ("lm_head", make_shape(num_tokens=t, in_dim=h, out_dim=m.vocab_size)),
                 ("sampling", make_shape(num_tokens=t, out_dim=m.vocab_size))]
        if m.intermediate_size:
            w = m.intermediate_size
            grid += [("mlp_up", make_shape(num_tokens=t, in_dim=h, out_dim=2 * w if m.gated_mlp else w)),
                     ("activation", make_shape(num_tokens=t, out_dim=w)),
                     ("mlp_down", make_shape(num_tokens=t, in_dim=w, out_dim=h))]
        if m.num_experts:
            grid += [("moe_router", make_shape(num_tokens=t, in_dim=h, out_dim=m.num_experts)),
                     ("moe_expert", make_shape(num_tokens=t, in_dim=h, out_dim=m.moe_intermediate_size))]
    chunks, prefill_ctx = prefill
    grid += [("attn_prefill", make_shape(batch_size=1, chunk_tokens=n, context_tokens=c, **heads))
             for n in sorted(set(chunks)) for c in sorted(set(prefill_ctx))]
    batches, ctxs = decode
    for op in ("attn_decode", "kv_append"):
        grid += [(op, make_shape(batch_size=b, context_tokens=c, **heads))
                 for b in sorted(set(batches)) for c in sorted(set(ctxs))]
    return grid
