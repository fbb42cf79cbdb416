"""The profiled cost model: step times from measured kernels (profiles/fit.py), same protocol as
RooflineCostModel (step_cost(BatchShape) -> StepCost, describe()).

Owns the mapping of simulator/cost/ops.py's ops onto per-layer kernel calls: token ops by token count
(QKV, O, gate/up, down; norms, rotary, activation and residual adds for `elementwise`; the MoE
router, and the routed experts as one expert call per expected active expert at the mean tokens
per active expert), lm_head
and sampling by logits count, prefill attention per (chunk, context) pair, decode attention by
(batch, mean context) plus the KV append, and the engine's per-step overhead when the profile
measured it (simulator/cost/engine_overhead.py: per decode batch and per prefill tokens, flat beyond
the measured ends). Each kernel time comes from interpolation inside the measured grid
("profile"), the op's fitted roofline outside it ("fit"), or, for ops the profile never measured
(e.g. all-reduce), the scenario's roofline ("roofline"); a step's source is the least trusted of
its ops, and shapes that were not interpolated are listed by describe().
"""
from __future__ import annotations

from collections import Counter

from profiles.fit import SOURCE_PROFILE, SOURCE_ROOFLINE, TRUST, FittedProfile
from profiles.table import make_shape
from simulator.cost.ops import (
    OpCost,
    attention_coefficients,
    decode_attention,
    expected_active_experts,
    logits_op,
    prefill_attention,
)
from simulator.cost.roofline import RooflineCostModel
from simulator.cost.shape import BatchShape
from simulator.cost.step import StepCost

MAX_LISTED_SHAPES = 50
MAX_CACHED_SHAPES = 1 << 17  # per cache; cleared when full (10M-request runs see millions of shapes)
_SOURCE_OF_TRUST = {v: k for k, v in TRUST.items()}


def _layer(fit, op: str):
    """The predictor that answers `op` (a KernelStack's layer, or the fit itself)."""
    return fit.answers(op) if hasattr(fit, "answers") else fit


class ProfiledCostModel:
    def __init__(self, fallback: RooflineCostModel, fit: FittedProfile, *, profile_name: str,
                 profile_dtype: str | None = None, all_reduce_latency_s: float | None = None,
                 calibration: dict | None = None, measured_profile: str | None = None):
        self.fallback, self.fit, self.profile_name = fallback, fit, profile_name
        self.calibration, self.measured_profile = calibration, measured_profile  # for describe()
        self.all_reduce_latency_s = all_reduce_latency_s  # an engine's custom all-reduce (small messages)
        self.measured_overhead = "step_overhead" in fit.ops  # whole engine steps were timed
        self.model, self.tp = fallback.model, fallback.tp
        self.dtype = profile_dtype or fit.dtype or fallback.dtype
        self.kv_dtype = fallback.kv_dtype if fallback.kv_dtype != fallback.dtype else self.dtype
        m, tp = self.model, self.tp
        self._heads = m.attention_kernel_dims(tp)
        self.extrapolated: Counter = Counter()
        self.sources: Counter = Counter()
        self._token_cache: dict[int, tuple] = {}
        self._logit_cache: dict[int, tuple] = {}
        self._overhead_cache: dict[tuple, tuple] = {}
        self._attention_profiled = bool({"attn_prefill", "attn_decode"} & set(fit.ops))
        # ops answered by a measured table (a calibration prices every shape: nothing to list)
        self._measured_ops = {op for op in fit.ops if not getattr(_layer(fit, op), "batched_calls", False)}
        self._attention_cache: dict[tuple, tuple] = {}  # decode (batch, context) -> (answer, extrapolated keys)
        self._kernel_cache: dict[tuple, tuple] = {}  # (op, calls, dims) -> (answer, extrapolated key)
        self._recording: list | None = None  # extrapolated keys counted while a cache entry is built
        self._coeffs = attention_coefficients(m, fallback.beta, tp, fallback.kv_beta)
        self._prefill_batched = self._batched("attn_prefill")
        # attention answered by a device calibration: its predictor without shape dicts (the hot
        # path: most prefill chunks and decode batches are new shapes), op -> (seconds(b, n, ctx), source)
        self._fast_attention: dict[str, tuple] = {}
        for op in ("attn_prefill", "attn_decode"):
            layer = _layer(fit, op)
            if layer is not None and op in layer.ops and hasattr(layer, "attention_predictor"):
                seconds = layer.attention_predictor(op, self.kv_dtype, **self._heads)
                if seconds is not None:
                    self._fast_attention[op] = (seconds, layer.kind)
        self._attention_kernel_cache: dict[tuple, tuple] = {}  # (op, calls, b, n, ctx) -> (seconds, source)

    # ---- kernel lookups -------------------------------------------------------------------
    def _kernel(self, op: str, calls: float, **dims: int) -> tuple[float, str] | None:
        """(seconds of `calls` calls, source) of one kernel shape; answers are cached (the fit is a
        pure function of the shape) and every call counts an extrapolated shape, hit or miss."""
        cache_key = (op, calls, *dims.items())
        hit = self._kernel_cache.get(cache_key)
        if hit is None:
            if len(self._kernel_cache) >= MAX_CACHED_SHAPES:
                self._kernel_cache.clear()  # bounded memory on very long runs; answers are unchanged
            hit = self._kernel_cache[cache_key] = self._kernel_uncached(op, calls, dims)
        got, extrapolated = hit
        if extrapolated is not None:
            self.extrapolated[extrapolated] += 1
            if self._recording is not None:
                self._recording.append(extrapolated)
        return got

    def _kernel_uncached(self, op: str, calls: float, dims: dict) -> tuple[tuple[float, str] | None, tuple | None]:
        shape = make_shape(**dims)
        dtype = self.kv_dtype if op.startswith("attn_") and op not in ("attn_qkv", "attn_out") else self.dtype
        got = self.fit.predict(op, shape, dtype)
        if got is None:
            return None, None
        extrapolated = None
        if got[1] != SOURCE_PROFILE and op in self._measured_ops:
            extrapolated = (op,) + tuple(sorted((k, v) for k, v in dims.items() if v))
        return (got[0] * calls, got[1]), extrapolated

    def _sum(self, parts: list) -> tuple[float, str] | None:
        if len(parts) == 1:  # the common case: the same answer without the reductions
            return parts[0]
        if any(p is None for p in parts):
            return None
        return sum(p[0] for p in parts), min((p[1] for p in parts), key=TRUST.__getitem__)

    def _token_op(self, name: str, t: int) -> tuple[float, str] | None:
        m, tp, nl = self.model, self.tp, self.model.num_layers
        h = m.hidden_size
        width = m.intermediate_size // tp
        dense = m.num_dense_layers
        if name == "attn_qkv":
            return self._kernel("attn_qkv", nl, num_tokens=t, in_dim=h, out_dim=m.qkv_op(tp)[2], **self._heads)
        if name == "attn_out":
            return self._kernel("attn_out", nl, num_tokens=t, in_dim=m.o_op(tp)[1], out_dim=h)
        if name == "mlp_up":
            return self._kernel("mlp_up", dense, num_tokens=t, in_dim=h, out_dim=width * (2 if m.gated_mlp else 1))
        if name == "mlp_down":
            return self._kernel("mlp_down", dense, num_tokens=t, in_dim=width, out_dim=h)
        if name == "elementwise":
            act_width = width or m.moe_intermediate_size * m.num_experts_per_tok // tp
            return self._sum([
                self._kernel("rms_norm", 2 * nl + 1, num_tokens=t, in_dim=h),  # +1: final norm
                self._kernel("residual_add", 2 * nl, num_tokens=t, in_dim=h),
                self._kernel("rotary", nl, num_tokens=t, **self._heads),
                self._kernel("activation", nl, num_tokens=t, out_dim=act_width),
            ])
        if name == "moe_router":
            return self._kernel("moe_router", m.num_moe_layers, num_tokens=t, in_dim=h, out_dim=m.num_experts)
        if name.startswith("moe_shared_"):  # shared experts: one dense MLP per MoE layer
            width = m.shared_expert_intermediate_size // tp
            out = width * (2 if m.gated_mlp else 1) if name.endswith("up") else h
            return self._kernel("mlp_up" if name.endswith("up") else "mlp_down", m.num_moe_layers, num_tokens=t,
                                in_dim=h if name.endswith("up") else width, out_dim=out)
        if name == "moe_experts" and m.gated_mlp:  # the profiled expert is gated (gate/up, SiLU, down)
            active = expected_active_experts(m.num_experts, m.num_experts_per_tok, t)
            per_expert = max(round(t * m.num_experts_per_tok / active), 1)  # each active expert: the mean load
            return self._kernel("moe_expert", m.num_moe_layers * active, num_tokens=per_expert, in_dim=h,
                                out_dim=m.moe_intermediate_size // tp)
        return None  # shared experts, collectives: the roofline answers

    def _logit_op(self, name: str, t: int) -> tuple[float, str] | None:
        vocab = self.model.vocab_size // self.tp
        if name == "lm_head":
            return self._kernel("lm_head", 1, num_tokens=t, in_dim=self.model.hidden_size, out_dim=vocab)
        if name == "sampling":
            return self._kernel("sampling", 1, num_tokens=t, out_dim=vocab)
        return None

    def _batched(self, op: str) -> bool:
        """Calibrations price one call over a whole batch of like sequences (as varlen kernels
        run); measured tables were timed one sequence per call."""
        layer = self.fit.answers(op) if hasattr(self.fit, "answers") else self.fit
        return bool(getattr(layer, "batched_calls", False))

    def _attention_kernel(self, op: str, calls: float, b: int, n: int, ctx: int) -> tuple[float, str] | None:
        """_kernel(op, calls, batch_size=b, chunk_tokens=n, context_tokens=ctx, **heads), through
        the calibration's own attention predictor when one answers `op` (the same numbers)."""
        fast = self._fast_attention.get(op)
        if fast is None:
            dims = dict(batch_size=b, chunk_tokens=n, context_tokens=ctx) if n else dict(batch_size=b, context_tokens=ctx)
            return self._kernel(op, calls, **dims, **self._heads)
        key = (op, calls, b, n, ctx)
        got = self._attention_kernel_cache.get(key)
        if got is None:
            if len(self._attention_kernel_cache) >= MAX_CACHED_SHAPES:
                self._attention_kernel_cache.clear()
            got = self._attention_kernel_cache[key] = (fast[0](b, n, ctx) * calls, fast[1])
        return got

    def _attention_op(self, name: str, shape: BatchShape) -> tuple[float, str] | None:
        nl = self.model.num_layers
        if name == "attn_prefill":
            pairs: dict[tuple[int, int], int] = {}  # (chunk, context) -> how many, in first-seen order
            for chunk in shape.prefill_chunks:
                pairs[chunk] = pairs.get(chunk, 0) + 1
            if self._prefill_batched:
                return self._sum([self._attention_kernel("attn_prefill", nl, c, n, ctx)
                                  for (n, ctx), c in pairs.items()])
            return self._sum([self._kernel("attn_prefill", nl * c, batch_size=1, chunk_tokens=n,
                                           context_tokens=ctx, **self._heads) for (n, ctx), c in pairs.items()])
        b = shape.num_decode
        ctx = round(shape.decode_context_sum / b)
        parts = [self._attention_kernel("attn_decode", nl, b, 0, ctx)]
        if "kv_append" in self.fit.ops:
            parts.append(self._kernel("kv_append", nl, batch_size=b, context_tokens=max(ctx - 1, 0), **self._heads))
        return self._sum(parts)

    def _attention_lookup(self, name: str, shape: BatchShape) -> tuple[float, str] | None:
        """_attention_op; decode through a cache keyed by what its answer depends on (batch and mean
        context), whose hits count their extrapolated shapes again, as a miss does."""
        if name == "attn_prefill":  # chunks rarely repeat as a whole: _kernel caches each (chunk, context)
            return self._attention_op(name, shape)
        key = (shape.num_decode, round(shape.decode_context_sum / shape.num_decode))
        hit = self._attention_cache.get(key)
        if hit is None:
            if len(self._attention_cache) >= MAX_CACHED_SHAPES:
                self._attention_cache.clear()
            self._recording = []
            try:
                got = self._attention_op(name, shape)
            finally:
                recorded, self._recording = self._recording, None
            hit = self._attention_cache[key] = (got, tuple(recorded))
        else:
            for k in hit[1]:
                self.extrapolated[k] += 1
        return hit[0]

    def _attention_part(self, shape: BatchShape) -> tuple[float, float, float, float, float, int]:
        """_price(attention_ops(...)) for the step, without building op lists: FLOPs and bytes from
        the closed forms (ops.prefill_attention, ops.decode_attention), kernel times cached."""
        acc = [0.0, 0.0, 0.0, 0.0, 0.0, TRUST[SOURCE_PROFILE]]
        if shape.prefill_chunks:
            f, b = prefill_attention(shape.prefill_chunks, self._coeffs)
            self._add_op(acc, "attn_prefill", f, b, self._attention_lookup("attn_prefill", shape))
        if shape.num_decode:
            f, b = decode_attention(shape.num_decode, shape.decode_context_sum, self._coeffs, shape.decode_kv_read_sum)
            self._add_op(acc, "attn_decode", f, b, self._attention_lookup("attn_decode", shape))
        return tuple(acc)

    def _add_op(self, acc: list, name: str, flops: float, nbytes: float, got: tuple[float, str] | None,
                op: OpCost | None = None) -> None:
        """Add one op to acc = [compute_s, memory_s, comm_s, flops, bytes, trust]: its kernel time
        (`got`, from a lookup) counted as compute- or memory-bound by its roofline, or the roofline
        of the op (`op`, default OpCost(name, flops, nbytes)) when no kernel answers."""
        if got is None:
            c, m_, x, f, b = self.fallback._sum_ops([op or OpCost(name, flops, nbytes)])
            acc[0] += c
            acc[1] += m_
            acc[2] += x
            acc[3] += f
            acc[4] += b
            acc[5] = min(acc[5], TRUST[SOURCE_ROOFLINE])
            self.sources[SOURCE_ROOFLINE] += 1
            return
        t, src = got
        self.sources[src] += 1
        acc[5] = min(acc[5], TRUST[src])
        if flops / self.fallback.flops_per_s >= nbytes / self.fallback.bytes_per_s:
            acc[0] += t
        else:
            acc[1] += t
        acc[3] += flops
        acc[4] += nbytes

    # ---- the protocol ---------------------------------------------------------------------
    def _price(self, ops, lookup) -> tuple[float, float, float, float, float, int]:
        """(compute_s, memory_s, comm_s, flops, bytes, trust) for a list of OpCost."""
        acc = [0.0, 0.0, 0.0, 0.0, 0.0, TRUST[SOURCE_PROFILE]]
        for op in ops:
            if op.comm_bytes and hasattr(self.fit, "all_reduce_s"):
                got = self.fit.all_reduce_s(op.comm_bytes, self.tp, latency_s=self.all_reduce_latency_s)
                if got is not None:
                    acc[2] += got[0] * op.count
                    acc[5] = min(acc[5], TRUST[got[1]])
                    self.sources[got[1]] += 1
                    continue
            self._add_op(acc, op.name, op.flops, op.bytes, None if op.comm_bytes else lookup(op.name), op)
        return tuple(acc)

    def _overhead(self, shape: BatchShape) -> tuple[float, int]:
        """The engine's time outside kernels: per decode batch, per prefill tokens, the larger of
        the two for a mixed step (both include the fixed per-forward host time)."""
        if "step_overhead" not in self.fit.ops:
            return self.fallback.params.step_overhead_s, TRUST[SOURCE_PROFILE]
        parts = []
        if shape.num_decode or not shape.num_prefill_tokens or "prefill_overhead" not in self.fit.ops:
            parts.append(self._overhead_op("step_overhead", max(shape.num_decode, 1)))
        if shape.num_prefill_tokens and "prefill_overhead" in self.fit.ops:
            parts.append(self._overhead_op("prefill_overhead", shape.num_prefill_tokens))
        return max(t for t, _ in parts), min(TRUST[src] for _, src in parts)

    def _overhead_op(self, op: str, tokens: int) -> tuple[float, str]:
        hit = self._overhead_cache.get((op, tokens))
        if hit is None:
            dims = dict(num_tokens=tokens, num_layers=self.model.num_layers)
            hit = self._overhead_cache[(op, tokens)] = self.fit.predict_clamped(op, make_shape(**dims), self.dtype)
            if hit[1] != SOURCE_PROFILE:
                self.extrapolated[(op,) + tuple(sorted(dims.items()))] += 1
        return hit

    def step_cost(self, shape: BatchShape) -> StepCost:
        m, beta, tp = self.model, self.fallback.beta, self.tp
        parts = []
        if shape.num_tokens:
            hit = self._token_cache.get(shape.num_tokens)
            if hit is None:
                t = shape.num_tokens
                ops = self.fallback._token_ops(m, t, beta, tp)  # MoE offloading prices its experts itself
                hit = self._token_cache[t] = self._price(ops, lambda n: self._token_op(n, t))
            parts.append(hit)
        if shape.num_logits:
            hit = self._logit_cache.get(shape.num_logits)
            if hit is None:
                t = shape.num_logits
                hit = self._logit_cache[t] = self._price(logits_op(m, t, beta, tp), lambda n: self._logit_op(n, t))
            parts.append(hit)
        if self._attention_profiled:
            parts.append(self._attention_part(shape))
        elif shape.prefill_chunks or shape.num_decode:  # no attention kernels in the profile: roofline
            c, m_, f, b = self.fallback._attention(shape)
            parts.append((c, m_, 0.0, f, b, TRUST[SOURCE_ROOFLINE]))
            self.sources[SOURCE_ROOFLINE] += 1
        overhead_s, trust = self._overhead(shape)
        compute_s = memory_s = comm_s = flops = nbytes = 0.0
        for c, m_, x, f, b, tr in parts:  # in this order: the same sums as always
            compute_s += c
            memory_s += m_
            comm_s += x
            flops += f
            nbytes += b
            if tr < trust:
                trust = tr
        evict_s = 0.0
        if shape.kv_work is not None:  # KV-policy bookkeeping: the fallback's eviction ops
            evict_s, f, b = self.fallback._eviction(shape.kv_work)
            flops, nbytes = flops + f, nbytes + b
        other = comm_s + overhead_s + evict_s  # the bound: the largest of the three, the first on ties
        if compute_s >= memory_s:
            bound = 0 if compute_s >= other else 2
        else:
            bound = 1 if memory_s >= other else 2
        return StepCost(compute_s + memory_s + comm_s + overhead_s + evict_s, compute_s, memory_s, comm_s, overhead_s,
                        flops, nbytes, bound, _SOURCE_OF_TRUST[trust], evict_s)

    def describe(self) -> dict:
        shapes = [{"op": k[0], **dict(k[1:]), "lookups": n} for k, n in self.extrapolated.most_common(MAX_LISTED_SHAPES)]
        return {
            "kind": "calibrated" if self.calibration else "profiled",
            "source": self.profile_name if self.calibration else f"profile {self.profile_name}",
            "calibration": self.calibration,
            "measured_profile": self.measured_profile,
            "profile": self.profile_name,
            "profile_device": self.fit.device,
            "profile_dtype": self.dtype,
            "device": self.fallback.device.name,
            "dtype": self.fallback.dtype,
            "tp": self.tp,
            "fitted_ops": sorted(self.fit.ops),
            "op_sources": dict(self.sources),
            "num_extrapolated_shapes": len(self.extrapolated),
            "extrapolated_shapes": shapes,
            "roofline_fallback": self.fallback.describe(),
            "known_error": self._known_error(),
            "fit_test_error": self.fit.provenance.get("test_error"),
        }

    def _known_error(self) -> str:
        if self.calibration and not self.measured_profile:
            lookups = ", ".join(f"{n} {src}" for src, n in sorted(self.sources.items()))
            return f"{self.calibration['known_error']}; op lookups: {lookups}"
        err = self.fit.provenance.get("test_error")
        lookups = ", ".join(f"{n} {src}" for src, n in sorted(self.sources.items()))
        head = (f"fit test error median {err['overall']['median_ape_pct']:.1f}% / p90 {err['overall']['p90_ape_pct']:.1f}%"
                if err else "fit error: see `servesim fit --test`")
        return f"{head}; op lookups: {lookups}; {len(self.extrapolated)} shapes extrapolated"
