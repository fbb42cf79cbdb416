"""The kernels of a decoder layer as torch callables at one shape (needs torch: `servesim[profile]`).

Owns how each profiled op is executed, written the way Hugging Face Llama and vLLM run it: GEMMs
via F.linear (QKV, O, gate/up, down, lm_head, router, MoE expert, CPU GEMM), RMSNorm in fp32 as
LlamaRMSNorm, rotary as apply_rotary_pos_emb, SiLU-and-mul, residual add, greedy sampling,
SDPA attention (prefill: causal chunk after `context` cached tokens; decode: one query per
sequence), KV append by concatenation (Hugging Face DynamicCache), host<->device copies. Inputs
are random (never zeros) and come in several sets used in rotation; for ops reading weights or the
KV cache the sets exceed the last-level cache, so repeats read memory as a forward pass over many
layers does (those sets are scaled copies of one random set: drawing 64 MB of normals per shape
cost more than timing it).
"""
from __future__ import annotations

import math
from typing import Callable

TORCH_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def torch_dtype(torch, dtype: str):
    if dtype not in TORCH_DTYPES:
        raise ValueError(f"dtype {dtype!r} cannot be profiled; allowed: {', '.join(TORCH_DTYPES)}")
    return getattr(torch, TORCH_DTYPES[dtype])


# Ops that read state a forward pass left cold (weights, KV cache): enough input sets to cover
# twice the last-level cache. Other ops read activations the previous op just wrote (cache-warm),
# so a few sets suffice.
COLD_OPS = ("attn_qkv", "attn_out", "mlp_up", "mlp_down", "lm_head", "moe_router", "moe_expert", "cpu_gemm",
            "attn_prefill", "attn_decode", "kv_append", "embedding")


def _num_sets(set_bytes: float, cache_bytes: int, memory_cap_bytes: float, cold: bool) -> int:
    """Input sets to rotate through: cold ops cover twice the cache (at most 1024 sets), within
    the memory cap; warm ops use 8."""
    if not cold:
        return 8
    want = math.ceil(2 * cache_bytes / max(set_bytes, 1.0)) + 1
    fit = int(memory_cap_bytes // max(set_bytes, 1.0))
    return max(1, min(want, 1024, max(fit, 1)))


GEMM_LAYOUTS = ("fused", "split")


def build_kernel(torch, op: str, s: dict[str, int], dtype: str, device: str, *, cache_bytes: int,
                 memory_cap_bytes: float = 2e9, gemm_layout: str = "fused") -> Callable[[int], object]:
    """fn(i) runs `op` once on input set i mod n. gemm_layout "split" runs QKV as three GEMMs and
    gate/up as two (Hugging Face modules); "fused" runs one each (vLLM's merged weights)."""
    F = torch.nn.functional
    dt = torch_dtype(torch, dtype)
    gen = torch.Generator(device="cpu").manual_seed(0)

    def rand(*shape, dtype_=dt, dev=device, pin=False):
        x = torch.randn(*shape, generator=gen, dtype=torch.float32).to(dtype_)
        x = x.pin_memory() if pin else x
        return x.to(dev) if dev != "cpu" else x

    if gemm_layout not in GEMM_LAYOUTS:
        raise ValueError(f"gemm_layout must be one of {GEMM_LAYOUTS}, got {gemm_layout!r}")
    if gemm_layout == "split" and op in ("attn_qkv", "mlp_up"):
        make, run = _split_gemm(F, op, s, rand)
    else:
        make, run = _recipe(torch, F, op, s, rand, dt, device)
    probe = make()
    set_bytes = sum(t.numel() * t.element_size() for t in probe if hasattr(t, "numel"))
    count = _num_sets(set_bytes, cache_bytes, memory_cap_bytes, op in COLD_OPS)
    if op in COLD_OPS:  # many sets: copies of the first, each scaled by its own factor (fast to make)
        sets = [probe] + [tuple(_scaled_copy(t, 1.0 + k / count) for t in probe) for k in range(1, count)]
    else:
        sets = [probe] + [make() for _ in range(count - 1)]
    n = len(sets)
    return lambda i: run(*sets[i % n])


def _scaled_copy(x, factor: float):
    """A distinct tensor holding x * factor (same strides); index tensors are copied as they are."""
    if not hasattr(x, "is_floating_point"):
        return x
    y = x.clone()
    return y.mul_(factor) if y.is_floating_point() else y


def _recipe(torch, F, op, s, rand, dt, device):
    t, i, o = s.get("num_tokens", 0), s.get("in_dim", 0), s.get("out_dim", 0)
    if op in ("attn_qkv", "attn_out", "mlp_up", "mlp_down", "lm_head", "moe_router", "cpu_gemm"):
        dev = "cpu" if op == "cpu_gemm" else device
        return (lambda: (rand(t, i, dev=dev), rand(o, i, dev=dev) / math.sqrt(i))), F.linear
    if op == "moe_expert":
        def expert(x, w_up, w_down):
            g, u = F.linear(x, w_up).chunk(2, dim=-1)
            return F.linear(F.silu(g) * u, w_down)
        return (lambda: (rand(t, i), rand(2 * o, i), rand(i, o))), expert
    if op == "rms_norm":
        def rms(x, w):
            x32 = x.to(torch.float32)
            x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + 1e-6)
            return w * x32.to(dt)
        return (lambda: (rand(t, i), rand(i))), rms
    if op == "residual_add":
        return (lambda: (rand(t, i), rand(t, i))), torch.add
    if op == "activation":
        return (lambda: (rand(t, o), rand(t, o))), (lambda g, u: F.silu(g) * u)
    if op == "embedding":
        return (lambda: (torch.randint(0, max(o, 1), (t,), device=device), rand(max(o, 1), i))), F.embedding
    if op == "rotary":
        return _rotary(torch, s, rand)
    if op == "sampling":
        return (lambda: (rand(t, o, dtype_=torch.float32),)), (lambda x: torch.argmax(x, dim=-1))
    if op in ("attn_prefill", "attn_decode", "kv_append"):
        return _attention(torch, F, op, s, rand)
    if op.startswith("copy_"):
        return _copy(torch, op, s, device)
    raise ValueError(f"no kernel for op {op!r}")


def _split_gemm(F, op, s, rand):
    t, i, o = s["num_tokens"], s["in_dim"], s["out_dim"]
    if op == "attn_qkv":
        d = s["head_dim"]
        outs = (s["num_heads"] * d, s["num_kv_heads"] * d, s["num_kv_heads"] * d)
    else:
        outs = (o // 2, o - o // 2)
    make = lambda: (rand(t, i),) + tuple(rand(n, i) / math.sqrt(i) for n in outs)
    return make, (lambda x, *ws: [F.linear(x, w) for w in ws])


def _rotary(torch, s, rand):
    t, h, hkv, d = s["num_tokens"], s["num_heads"], s["num_kv_heads"], s["head_dim"]

    def rotate_half(x):
        return torch.cat((-x[..., d // 2:], x[..., : d // 2]), dim=-1)

    def apply(q, k, cos, sin):
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin

    # q and k as the projections leave them: (1, t, heads, d) viewed as (1, heads, t, d), not contiguous
    return (lambda: (rand(1, t, h, d).transpose(1, 2), rand(1, t, hkv, d).transpose(1, 2), rand(1, 1, t, d),
                     rand(1, 1, t, d))), apply


def _attention(torch, F, op, s, rand):
    b, h, hkv, d = max(s.get("batch_size", 1), 1), s["num_heads"], s["num_kv_heads"], s["head_dim"]
    ctx = s.get("context_tokens", 0)
    if op == "kv_append":  # DynamicCache.update: torch.cat([cache, new], dim=-2) for K and V
        def append(kc, vc, kn, vn):
            return torch.cat([kc, kn], dim=-2), torch.cat([vc, vn], dim=-2)
        return (lambda: (rand(b, hkv, ctx, d), rand(b, hkv, ctx, d), rand(b, hkv, 1, d), rand(b, hkv, 1, d))), append
    n = s.get("chunk_tokens", 0) if op == "attn_prefill" else 1
    kv_len = ctx + n if op == "attn_prefill" else ctx
    mask = None
    if op == "attn_prefill" and ctx:  # new token j sees the ctx cached tokens and new tokens <= j
        mask = torch.ones(n, kv_len, dtype=torch.bool).tril(diagonal=ctx).to(rand(1).device)

    def attend(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True,
                                              is_causal=(op == "attn_prefill" and not ctx))

    return (lambda: (rand(b, h, n, d), rand(b, hkv, kv_len, d), rand(b, hkv, kv_len, d))), attend


def _copy(torch, op, s, device):
    if device == "cpu":
        raise ValueError(f"{op} needs a CUDA device (host<->device copies)")
    nbytes, pinned = s["num_bytes"], op.endswith("_pinned")
    numel = max(nbytes // 4, 1)
    if op.startswith("copy_h2d"):
        make = lambda: (torch.rand(numel).pin_memory() if pinned else torch.rand(numel),
                        torch.empty(numel, device=device))
    else:
        make = lambda: (torch.rand(numel, device=device),
                        torch.empty(numel).pin_memory() if pinned else torch.empty(numel))
    return make, (lambda src, dst: dst.copy_(src, non_blocking=pinned))
