"""A real serving engine to validate against: a Hugging Face Llama model (random weights, built
from a config, nothing downloaded) served with static batching, as `generate` does.

Owns building the model, the static-batching loop (batches of `batch_size` requests in arrival
order; one prefill of the whole padded batch, then one decode step per token with the KV cache;
results at the batch's end) with per-request and per-step wall times, and the timing of whole
engine steps (decode and prefill forwards of the real model at a few calibration points), from
which simulator/cost/engine_overhead.py derives the per-step time the kernels do not account for.
Needs torch and transformers (`servesim[profile]`).
"""
from __future__ import annotations

import functools
import inspect
import time
from dataclasses import dataclass

from profiles.profiler import import_torch
from profiles.table import ProfileRow, make_shape
from profiles.timers import TimingPlan, summarise_times

TRANSFORMERS_HINT = "validation needs transformers: pip install 'servesim[profile]'"


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


@functools.cache
def _cache_kwarg(model_class: type) -> str:
    """The forward's KV-cache argument: `cache` (recent transformers 5.x, where `past_key_values` is
    deprecated with a FutureWarning, to be removed in 5.40) or `past_key_values` (earlier releases).
    Looked up once per model class, outside the timed forwards."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def _step(torch, model, ids, cache):
    """One forward with the KV cache: (next token per row, the cache). A DynamicCache is updated in
    place, so the one passed in (or created here) is returned as is."""
    from transformers import DynamicCache

    cache = cache if cache is not None else DynamicCache(config=model.config)
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1, **{_cache_kwarg(type(model)): cache})
    return torch.argmax(out.logits[:, -1], dim=-1), cache


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


MIN_FORWARDS = 5  # the median of at least 5 ignores an odd forward slowed by the OS or the garbage collector


def _timed_forwards(forward, plan: TimingPlan, reset=lambda: None) -> list[float]:
    """Seconds per forward() as the serving loop sees them (host wall time; forward synchronises
    the device itself): the plan's warm-up, then at least max(min_repeats, MIN_FORWARDS) calls,
    more while the plan's budget allows. reset() runs untimed before each call."""
    least = max(plan.min_repeats, MIN_FORWARDS)
    times: list[float] = []
    for k in range(plan.warmup + max(plan.max_repeats, least)):
        reset()
        t0 = time.perf_counter()
        forward()
        dt = time.perf_counter() - t0
        if k >= plan.warmup:
            times.append(dt)
            if len(times) >= least and sum(times) >= plan.budget_s:
                break
    return times


def time_engine_steps(model, *, decode_points, prefill_points, plan: TimingPlan, sync=lambda: None,
                      seed: int = 0) -> list[ProfileRow]:
    """Whole forwards of the real engine (the model as serve_static runs it), as profile rows:
    op "engine_decode" (batch_size, context_tokens = KV cache before the step, num_layers) and
    op "engine_prefill" (batch_size, chunk_tokens = prompt tokens, num_layers). A decode point
    prefills its context once, then crops the cache back to it before every timed step."""
    torch = import_torch()
    gen = torch.Generator().manual_seed(seed)
    vocab, layers = model.config.vocab_size, model.config.num_hidden_layers
    device = next(model.parameters()).device
    rows = []

    def row(op, times, **shape):
        return ProfileRow(op=op, dtype=_dtype_name(model), shape=make_shape(num_layers=layers, **shape),
                          extra={"num_repeats": float(len(times))}, **summarise_times(times))

    with torch.inference_mode():
        for b, ctx in decode_points:
            ids = torch.randint(0, vocab, (b, ctx), generator=gen).to(device)
            tok, cache = _step(torch, model, ids, None)
            step = tok[:, None]
            times = _timed_forwards(lambda s=step, c=cache: (_step(torch, model, s, c), sync()), plan,
                                    reset=lambda c=cache, n=ctx: _crop(c, n))
            rows.append(row("engine_decode", times, batch_size=b, context_tokens=ctx))
        for b, prompt in prefill_points:
            ids = torch.randint(0, vocab, (b, prompt), generator=gen).to(device)
            times = _timed_forwards(lambda x=ids: (_step(torch, model, x, None), sync()), plan)
            rows.append(row("engine_prefill", times, batch_size=b, chunk_tokens=prompt))
    return rows


def _crop(cache, tokens: int) -> None:
    """Cut the cache back to its first `tokens` positions (transformers 5: crop(-tokens_to_remove))."""
    extra = cache.get_seq_length() - tokens
    if extra > 0:
        cache.crop(-extra)


def _dtype_name(model) -> str:
    from profiles.kernels import TORCH_DTYPES

    name = str(next(model.parameters()).dtype).removeprefix("torch.")
    return next(k for k, v in TORCH_DTYPES.items() if v == name)
