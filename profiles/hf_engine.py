"""A real serving engine to validate against: a Hugging Face Llama model (random weights, built
from a config, nothing downloaded) served with static batching, as `generate` does.

Owns building the model, the static-batching loop (batches of `batch_size` requests in arrival
order; one prefill of the whole padded batch, then one decode step per token with the KV cache;
results at the batch's end) with per-request and per-step wall times, and the measurement of the
engine's per-step host overhead: a model with the same layer count and tiny widths is timed per
decode forward, minus its kernels timed one by one with our profiler, so that what remains is
the time spent outside kernels. Needs torch and transformers (`servesim[profile]`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from profiles.profiler import import_torch, run_profile
from profiles.table import ProfileRow, make_shape
from profiles.timers import TimingPlan, summarise_times, time_calls_cpu

TRANSFORMERS_HINT = "validation needs transformers: pip install 'servesim[profile]'"
OVERHEAD_BATCHES = (1, 4, 16)
OVERHEAD_CONTEXT = 64
TINY = dict(hidden_size=64, intermediate_size=128, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
            vocab_size=256)


def build_model(config: dict, *, dtype: str = "fp32", seed: int = 0, device: str = "cpu"):
    torch = import_torch()
    try:
        from transformers import LlamaConfig, LlamaForCausalLM
    except ImportError:
        raise ImportError(TRANSFORMERS_HINT) from None
    from profiles.kernels import torch_dtype

    torch.manual_seed(seed)
    cfg = LlamaConfig(**{k: v for k, v in config.items() if k not in ("architectures", "torch_dtype")})
    cfg._attn_implementation = "sdpa"
    return LlamaForCausalLM(cfg).to(device=device, dtype=torch_dtype(torch, dtype)).eval()


@dataclass(frozen=True, slots=True)
class ServedRun:
    first_token_s: list[float]  # per request, from the start of the workload (all arrive at 0)
    finish_s: list[float]
    prefill_step_s: list[float]  # one per batch
    decode_step_s: list[float]  # every decode step of every batch
    batch_sizes: list[int]  # requests in each batch


def _step(torch, model, ids, cache):
    from transformers import DynamicCache

    cache = cache if cache is not None else DynamicCache(config=model.config)
    out = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
    return torch.argmax(out.logits[:, -1], dim=-1), out.past_key_values


def serve_static(model, *, num_requests: int, batch_size: int, prompt_tokens: int, output_tokens: int,
                 seed: int = 0, sync=lambda: None) -> ServedRun:
    """All requests arrive at t=0; batches of `batch_size` run one after another."""
    torch = import_torch()
    gen = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    device = next(model.parameters()).device
    first, finish, prefills, decodes, sizes = [], [], [], [], []
    with torch.inference_mode():
        warm = torch.randint(0, vocab, (batch_size, prompt_tokens), generator=gen).to(device)
        tok, cache = _step(torch, model, warm, None)
        _step(torch, model, tok[:, None], cache)
        sync()
        t0 = time.perf_counter()
        for start in range(0, num_requests, batch_size):
            b = min(batch_size, num_requests - start)
            sizes.append(b)
            ids = torch.randint(0, vocab, (b, prompt_tokens), generator=gen).to(device)
            s = time.perf_counter()
            tok, cache = _step(torch, model, ids, None)
            sync()
            now = time.perf_counter()
            prefills.append(now - s)
            first += [now - t0] * b
            for _ in range(output_tokens - 1):
                s = time.perf_counter()
                tok, cache = _step(torch, model, tok[:, None], cache)
                sync()
                decodes.append(time.perf_counter() - s)
            finish += [time.perf_counter() - t0] * b
    return ServedRun(first, finish, prefills, decodes, sizes)


def _tiny_kernel_grid(num_layers: int, b: int, ctx: int) -> list[tuple[str, dict, int]]:
    """(op, shape, calls per forward) of one decode forward of the tiny model."""
    h, w, v, d = TINY["hidden_size"], TINY["intermediate_size"], TINY["vocab_size"], TINY["head_dim"]
    heads = dict(num_heads=TINY["num_attention_heads"], num_kv_heads=TINY["num_key_value_heads"], head_dim=d)
    qkv = (heads["num_heads"] + 2 * heads["num_kv_heads"]) * d
    L = num_layers
    return [("attn_qkv", make_shape(num_tokens=b, in_dim=h, out_dim=qkv, **heads), L),
            ("attn_out", make_shape(num_tokens=b, in_dim=heads["num_heads"] * d, out_dim=h), L),
            ("mlp_up", make_shape(num_tokens=b, in_dim=h, out_dim=2 * w), L),
            ("mlp_down", make_shape(num_tokens=b, in_dim=w, out_dim=h), L),
            ("rms_norm", make_shape(num_tokens=b, in_dim=h), 2 * L + 1),
            ("residual_add", make_shape(num_tokens=b, in_dim=h), 2 * L),
            ("rotary", make_shape(num_tokens=b, **heads), L),
            ("activation", make_shape(num_tokens=b, out_dim=w), L),
            ("attn_decode", make_shape(batch_size=b, context_tokens=ctx + 1, **heads), L),
            ("kv_append", make_shape(batch_size=b, context_tokens=ctx, **heads), L),
            ("lm_head", make_shape(num_tokens=b, in_dim=h, out_dim=v), 1),
            ("sampling", make_shape(num_tokens=b, out_dim=v), 1)]


def measure_step_overhead(num_layers: int, *, dtype: str, device: str, plan: TimingPlan,
                          threads: int | None, passes: int = 1) -> list[ProfileRow]:
    """Rows of op `step_overhead` (num_layers, num_tokens = decode batch): host time per step
    outside kernels = tiny-model decode forward time - sum of its kernels' times."""
    torch = import_torch()
    model = build_model(dict(TINY, num_hidden_layers=num_layers, max_position_embeddings=4096), dtype=dtype,
                        device="cuda" if device == "cuda" else "cpu")
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rows = []
    for b in OVERHEAD_BATCHES:
        with torch.inference_mode():
            ids = torch.randint(0, TINY["vocab_size"], (b, OVERHEAD_CONTEXT), device=next(model.parameters()).device)
            _, cache = _step(torch, model, ids, None)
            tok = ids[:, -1]

            def forward(i):  # the context grows by one per call: negligible at these widths
                out = _step(torch, model, tok[:, None], cache)
                sync()
                return out

            # at least 21 forwards: the median then ignores the odd call slowed by the OS or GC
            many = TimingPlan(warmup=3, min_repeats=max(plan.min_repeats, 21), max_repeats=max(plan.max_repeats, 41),
                              budget_s=plan.budget_s)
            medians = sorted(summarise_times(time_calls_cpu(forward, many))["time_median_us"]
                             for _ in range(passes))
            forward_s = medians[(passes - 1) // 2] * 1e-6  # as run_profile picks among passes
        grid = _tiny_kernel_grid(num_layers, b, OVERHEAD_CONTEXT)
        kernels, _ = run_profile([(op, s) for op, s, _ in grid], dtype=dtype, device=device, plan=plan,
                                 num_threads=threads, gemm_layout="split", passes=passes)  # as HF runs them
        kernel_s = sum(r.time_s * calls for r, (_, _, calls) in zip(kernels, grid))
        overhead_us = max(forward_s - kernel_s, 1e-3) * 1e6
        rows.append(ProfileRow(op="step_overhead", dtype=dtype,
                               shape=make_shape(num_tokens=b, num_layers=num_layers), time_median_us=overhead_us,
                               extra={"num_repeats": float(many.min_repeats)}))
    return rows
