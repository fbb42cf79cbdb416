"""FLOPs and bytes of one call of each profiled kernel, from a table row's shape columns.

Owns the kernel op names and their work counts (one layer, one tensor-parallel rank), which the
fitted roofline divides by achieved FLOP/s and bytes/s. The counts follow simulator/cost/ops.py's
per-layer formulas (formulas.md, "Roofline step time") so a fit made on these rows predicts the
simulator's ops; this module cannot import simulator/ (profiles sits upstream of it).
"""
from __future__ import annotations

DTYPE_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0}

LINEAR_OPS = ("attn_qkv", "attn_out", "mlp_up", "mlp_down", "lm_head", "moe_router", "cpu_gemm")
ELEMENTWISE_OPS = ("rms_norm", "residual_add", "activation", "rotary", "embedding")
COPY_OPS = ("copy_h2d_pinned", "copy_h2d_pageable", "copy_d2h_pinned", "copy_d2h_pageable")
ATTENTION_OPS = ("attn_prefill", "attn_decode")
OVERHEAD_OPS = ("step_overhead", "prefill_overhead")  # engine time outside kernels, per step
OTHER_OPS = ("sampling", "moe_expert", "kv_append") + OVERHEAD_OPS
KERNEL_OPS = LINEAR_OPS + ELEMENTWISE_OPS + ATTENTION_OPS + OTHER_OPS + COPY_OPS

# Columns along which a kernel's measurements are interpolated; the other shape columns
# form the signature that must match exactly.
AXES = {"attn_prefill": ("chunk_tokens", "context_tokens"), "attn_decode": ("batch_size", "context_tokens"),
        "kv_append": ("batch_size", "context_tokens")}
AXES.update({op: ("num_bytes",) for op in COPY_OPS})


def axes_of(op: str) -> tuple[str, ...]:
    return AXES.get(op, ("num_tokens",))


def beta_of(dtype: str) -> float:
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]


def kernel_work(op: str, s: dict[str, int], dtype: str) -> tuple[float, float]:
    """(FLOPs, bytes) of one call. Unknown ops raise ValueError listing the known ones."""
    beta = beta_of(dtype)
    t, i, o = s.get("num_tokens", 0), s.get("in_dim", 0), s.get("out_dim", 0)
    if op in LINEAR_OPS:
        return 2.0 * t * i * o, beta * (i * o + t * (i + o))
    if op == "moe_expert":  # gated expert: gate+up (i -> 2o) then down (o -> i)
        return 2.0 * t * 3 * i * o, beta * (3 * i * o + t * (2 * i + 3 * o))
    if op == "rms_norm":
        return 4.0 * t * i, beta * (2 * t * i + i)
    if op == "residual_add":
        return 1.0 * t * i, beta * 3 * t * i
    if op == "activation":  # silu(gate) * up over width o
        return 5.0 * t * o, beta * 3 * t * o
    if op == "embedding":
        return 0.0, beta * 2 * t * i
    if op == "rotary":
        width = (s.get("num_heads", 0) + s.get("num_kv_heads", 0)) * s.get("head_dim", 0)
        return 3.0 * t * width, beta * 2 * t * width
    if op == "sampling":  # softmax + argmax/top-p over the vocabulary, fp32 logits (as ops.py)
        return 5.0 * t * o, 8.0 * t * o
    if op in ATTENTION_OPS or op == "kv_append":
        return _attention_work(op, s, beta)
    if op in COPY_OPS:
        return 0.0, float(s.get("num_bytes", 0))
    if op in OVERHEAD_OPS:  # engine time outside kernels: no device work of its own
        return 0.0, 0.0
    raise ValueError(f"unknown kernel op {op!r}; known ops: {', '.join(KERNEL_OPS)}")


def _attention_work(op: str, s: dict[str, int], beta: float) -> tuple[float, float]:
    return attention_work(op, s.get("batch_size", 0), s.get("chunk_tokens", 0), s.get("context_tokens", 0),
                          s.get("num_heads", 0), s.get("num_kv_heads", 0), s.get("head_dim", 0), beta)


def attention_work(op: str, batch_size: int, chunk_tokens: int, context_tokens: int, num_heads: int,
                   num_kv_heads: int, head_dim: int, beta: float) -> tuple[float, float]:
    """(FLOPs, bytes) of one call of attn_prefill, attn_decode or kv_append (kernel_work's, from
    the shape's numbers: the simulator's hot path calls it without building a shape)."""
    b = max(batch_size, 1)
    h, hkv, d = num_heads, num_kv_heads, head_dim
    ctx = context_tokens
    if op == "attn_prefill":  # causal chunk of n new tokens after ctx cached ones (ops.py)
        n = chunk_tokens
        pairs = b * (n * ctx + n * (n + 1) / 2)
        return 4.0 * h * d * pairs, beta * b * (2 * hkv * d * (ctx + 2 * n) + 2 * n * h * d)
    if op == "attn_decode":  # one query per sequence over ctx cached tokens (ops.py)
        return 4.0 * h * d * b * ctx, beta * b * (2 * hkv * d * (ctx + 1) + 2 * h * d)
    # kv_append by concatenation (Hugging Face DynamicCache): K and V of ctx + 1 tokens read and written
    return 0.0, beta * b * 2 * hkv * d * 2 * (ctx + 1)
