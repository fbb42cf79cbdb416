"""Per-op FLOPs and bytes of one engine step on one tensor-parallel rank.

Owns the counting (formulas.md, "Roofline step time"); knows nothing of devices or seconds.
Ops are grouped the way they scale: token_ops(T) depend only on the number of tokens in the
step, logits_op on the tokens that produce logits, attention_ops on each sequence's context.
Linear layers: FLOPs = 2 * tokens * params; bytes = weights + activations in and out.
"""
from __future__ import annotations

from dataclasses import dataclass

from simulator.cost.shape import BatchShape
from simulator.models import ModelSpec, kv_heads_per_rank


@dataclass(frozen=True, slots=True)
class OpCost:
    """One op (summed over layers). comm_bytes > 0 marks a collective of that message size."""

    name: str
    flops: float = 0.0
    bytes: float = 0.0
    comm_bytes: float = 0.0
    count: int = 1  # how many collectives of comm_bytes


def _linear(name: str, tokens: int, in_dim: int, out_dim: int, params: float, beta: float,
            layers: int, weight_beta: float | None = None) -> OpCost:
    """`weight_beta`: bytes per weight when they are stored narrower than the activations
    (a quantized checkpoint, ModelSpec.param_bytes); default `beta`."""
    flops = 2.0 * tokens * params * layers
    wb = beta if weight_beta is None else weight_beta
    nbytes = (params * wb + tokens * (in_dim + out_dim) * beta) * layers
    return OpCost(name, flops, nbytes)


def expected_active_experts(num_experts: int, top_k: int, tokens: int) -> float:
    """Distinct experts touched by `tokens` tokens under uniform top-k routing (formulas.md MoE)."""
    return num_experts * (1.0 - (1.0 - top_k / num_experts) ** tokens)


def token_ops(model: ModelSpec, tokens: int, beta: float, tp: int) -> list[OpCost]:
    """Ops whose cost depends only on the step's token count (all layers, one rank)."""
    h, nl = model.hidden_size, model.num_layers
    qkv_params, _, qkv_width = model.qkv_op(tp)
    o_params, o_width, _ = model.o_op(tp)
    wb = model.param_bytes_at("attention", beta)
    ops = [
        _linear("attn_qkv", tokens, h, qkv_width, qkv_params, beta, nl, wb),
        _linear("attn_out", tokens, o_width, h, o_params, beta, nl, wb),
    ]
    if model.num_dense_layers:
        width = model.intermediate_size // tp
        ops += _mlp_ops("mlp", model, tokens, width, beta, model.num_dense_layers, 1.0)
    if model.num_moe_layers:
        ops += _moe_ops(model, tokens, beta, tp)
    # norms, residual adds, rotary, activation: memory-bound elementwise traffic per token.
    act_width = (model.intermediate_size or model.moe_intermediate_size * model.num_experts_per_tok) // tp
    # rotary reads and writes q and k (MLA: q and the shared rope key)
    k_width = model.qk_rope_head_dim if model.attention == "mla" else kv_heads_per_rank(model, tp) * model.head_dim
    elem_bytes = tokens * beta * nl * (10 * h + 3 * act_width + 2 * (model.q_size // tp + k_width))
    ops.append(OpCost("elementwise", flops=tokens * nl * 8.0 * h, bytes=elem_bytes))
    if tp > 1:
        ops.append(OpCost("all_reduce", comm_bytes=tokens * h * beta, count=2 * nl))
    return ops


def _mlp_ops(prefix: str, model: ModelSpec, tokens: float, width: int, beta: float, layers: int,
             copies: float) -> list[OpCost]:
    """Gate/up and down projections of `copies` MLPs of inner width `width` each."""
    h = model.hidden_size
    up_out = 2 * width if model.gated_mlp else width
    wb = model.param_bytes_at("mlp", beta)
    up = _linear(f"{prefix}_up", tokens, h, up_out, h * up_out * copies, beta, layers, wb)
    down = _linear(f"{prefix}_down", tokens, width, h, width * h * copies, beta, layers, wb)
    return [up, down]


def _moe_ops(model: ModelSpec, tokens: int, beta: float, tp: int) -> list[OpCost]:
    """Router + routed experts: FLOPs follow tokens*top_k, weight bytes follow distinct experts."""
    layers, h = model.num_moe_layers, model.hidden_size
    width = model.moe_intermediate_size // tp
    active = expected_active_experts(model.num_experts, model.num_experts_per_tok, tokens)
    routed = tokens * model.num_experts_per_tok
    router = _linear("moe_router", tokens, h, model.num_experts, h * model.num_experts, beta, layers)
    up_out = 2 * width if model.gated_mlp else width
    weights = (h * up_out + width * h) * active * model.param_bytes_at("experts", beta) * layers
    acts = routed * (h + up_out + width + h) * beta * layers
    experts = OpCost("moe_experts", 2.0 * routed * (h * up_out + width * h) * layers, weights + acts)
    ops = [router, experts]
    if model.shared_expert_intermediate_size:
        ops += _mlp_ops("moe_shared", model, tokens, model.shared_expert_intermediate_size // tp,
                        beta, layers, 1.0)
    return ops


def logits_op(model: ModelSpec, tokens: int, beta: float, tp: int) -> list[OpCost]:
    """lm_head over the tokens that sample (vocab sharded across ranks), plus sampling traffic."""
    vocab = model.vocab_size // tp
    op = _linear("lm_head", tokens, model.hidden_size, vocab, model.hidden_size * vocab, beta, 1,
                 model.param_bytes_at("lm_head", beta))
    sample = OpCost("sampling", flops=tokens * vocab * 5.0, bytes=tokens * vocab * 4.0 * 2)
    return [op, sample]


def attention_coefficients(model: ModelSpec, beta: float, tp: int,
                           kv_beta: float | None = None) -> tuple[float, float, float]:
    """Per-unit attention costs on one rank, all layers: (FLOPs per query-key pair,
    KV bytes per cached token, Q+O activation bytes per query token). GQA: 4 H d, 2 Hkv d beta,
    2 H d beta per layer (QK^T and PV at 2 FLOPs per multiply-add); MLA: ModelSpec.attention_geometry.
    `kv_beta`: bytes per cached element (a narrower KV cache dtype), default `beta`."""
    nl = model.num_layers
    flops, kv_elems, qo_elems = model.attention_geometry(tp)
    kv_b = beta if kv_beta is None else kv_beta
    return flops * nl, kv_elems * kv_b * nl, qo_elems * beta * nl


def prefill_attention(chunks, coeffs: tuple[float, float, float]) -> tuple[float, float]:
    """(FLOPs, bytes) of causal attention for (new tokens, context before) chunks: each new token
    sees the context plus its own prefix; K/V of the context are read, new K/V written and read."""
    pairs = new = ctx_read = 0.0
    for n, ctx in chunks:
        pairs += n * ctx + n * (n + 1) / 2
        new += n
        ctx_read += ctx
    f, kv, qo = coeffs
    return f * pairs, kv * (ctx_read + 2 * new) + qo * new


def decode_attention(num_decode: int, context_sum: int, coeffs: tuple[float, float, float],
                     kv_read_sum: int | None = None) -> tuple[float, float]:
    """(FLOPs, bytes) of decode attention: `context_sum` attended entries; `kv_read_sum` distinct
    KV entries read (default: all attended), one K/V written per sequence."""
    f, kv, qo = coeffs
    reads = context_sum if kv_read_sum is None else kv_read_sum
    return f * context_sum, kv * (reads + num_decode) + qo * num_decode


def attention_ops(model: ModelSpec, shape: BatchShape, beta: float, tp: int,
                  kv_beta: float | None = None) -> list[OpCost]:
    """Prefill (causal, chunked) and decode attention for the step, all layers, one rank."""
    coeffs = attention_coefficients(model, beta, tp, kv_beta)
    ops = []
    if shape.prefill_chunks:
        ops.append(OpCost("attn_prefill", *prefill_attention(shape.prefill_chunks, coeffs)))
    if shape.num_decode:
        ops.append(OpCost("attn_decode", *decode_attention(shape.num_decode, shape.decode_context_sum, coeffs,
                                                            shape.decode_kv_read_sum)))
    return ops


def token_ops_without_experts(model: ModelSpec, tokens: int, beta: float, tp: int) -> list[OpCost]:
    """token_ops less the routed experts, which an MoE placement component prices per step."""
    return [op for op in token_ops(model, tokens, beta, tp) if op.name != "moe_experts"]


def eviction_ops(model: ModelSpec, work, beta: float, tp: int) -> list[OpCost]:
    """KV-policy bookkeeping of one step (shape.KvWork counts, summed over sequences), all
    layers, one rank. A stated roofline estimate (no profiled kernels yet): scores are fp32;
    materialising attention probabilities writes them and reads them back (standard fused decode
    attention never writes them, H2O/Scissorhands need them); the accumulator is read and written
    per KV head; victim selection scans the accumulator once; gather compaction reads and writes
    the moved tokens' K and V; block_topk scores one key per block (formulas.md, Kinetics)."""
    heads, kvh = model.num_heads // tp, kv_heads_per_rank(model, tp)
    d, nl = model.head_dim, model.num_layers
    ops = []
    if work.score_pairs:
        ops.append(OpCost("kv_score_materialize", flops=heads * nl * work.score_pairs,
                          bytes=2 * 4.0 * heads * nl * work.score_pairs))
    if work.score_tokens:
        ops.append(OpCost("kv_score_update", flops=heads * nl * work.score_tokens,
                          bytes=2 * 4.0 * kvh * nl * work.score_tokens))
    if work.scan_tokens:
        ops.append(OpCost("kv_victim_select", flops=kvh * nl * work.scan_tokens,
                          bytes=4.0 * kvh * nl * work.scan_tokens))
    if work.moved_tokens:
        ops.append(OpCost("kv_compact", bytes=2 * 2.0 * beta * kvh * d * nl * work.moved_tokens))
    if work.search_keys:
        ops.append(OpCost("kv_block_search", flops=2.0 * heads * d * nl * work.search_keys,
                          bytes=beta * kvh * d * nl * work.search_keys))
    return ops
