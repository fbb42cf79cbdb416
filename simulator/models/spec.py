"""ModelSpec: a decoder-only transformer's shapes, and the exact arithmetic they imply.

Owns the record (filled by architectures.py from a config.json) and what follows from it alone:
parameter counts (total, per layer, active per token), weight bytes (quantized layers at their
own bits, quantization.py), KV-cache bytes per token (GQA/MQA heads, or MLA's latent), the
per-rank widths of the attention projections and the attention geometry the cost model prices,
and sliding-window layers. Counts are exact against the transformers implementation
(tests/test_model_spec.py builds each architecture on the meta device). Does not turn anything
into time (cost/) and does not know about devices.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from simulator.errors import ServesimError

DTYPE_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
ATTENTION_KINDS = ("gqa", "mla")  # gqa covers MHA (kv heads = heads) and MQA (one kv head)
NORMS = ("rms", "layer")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """A decoder-only transformer's shapes. Parameter counts are per whole model."""

    name: str
    model_type: str
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int  # dense MLP width (0 when every layer is MoE)
    vocab_size: int
    tie_word_embeddings: bool
    gated_mlp: bool
    has_bias: bool = False  # OPT-style: biases on every linear layer and LayerNorms (sets the three below)
    max_position_embeddings: int
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    num_moe_layers: int = 0
    shared_expert_intermediate_size: int = 0  # all shared experts of a layer together (one MLP this wide)
    # attention
    attention: str = "gqa"
    q_lora_rank: int = 0  # MLA: 0 = no low-rank query
    kv_lora_rank: int = 0  # MLA: the cached latent width
    qk_rope_head_dim: int = 0  # MLA: the cached rotary key width
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    qkv_bias: bool | None = None
    o_bias: bool | None = None
    attention_sinks: bool = False  # one learned sink logit per head per layer (gpt-oss)
    qk_norm: bool = False  # RMSNorm over head_dim on queries and keys (Qwen3, Gemma-3)
    layer_windows: tuple[int, ...] = ()  # per layer: 0 = full attention, W = sliding window of W tokens
    # feed-forward and norms
    mlp_bias: bool | None = None
    norm: str = "rms"
    norms_per_layer: int = 2
    learned_positions: int = 0  # rows of a learned position embedding (OPT: max positions + 2)
    router_bias: bool = False
    expert_bias: bool = False
    shared_expert_gate: bool = False  # Qwen2-MoE: a sigmoid gate (hidden -> 1) on the shared expert
    # weights stored in fewer bits (quantization.py): op class -> bytes per parameter, scales included
    weight_bytes_per_param: dict = field(default_factory=dict, compare=False)
    quantization: str = ""  # what quantization_config said, for the record
    notes: tuple[str, ...] = ()  # how the config was read (multimodal text part, allowed unknown type ...)

    def __post_init__(self) -> None:
        for name in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim", "vocab_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"model {self.name}: {name} is {getattr(self, name)}; allowed: an integer >= 1")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"model {self.name}: num_attention_heads={self.num_heads} is not a multiple of "
                f"num_key_value_heads={self.num_kv_heads}"
            )
        if self.num_experts and not (1 <= self.num_experts_per_tok <= self.num_experts):
            raise ValueError(
                f"model {self.name}: num_experts_per_tok must be in [1, {self.num_experts}], "
                f"got {self.num_experts_per_tok}"
            )
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"model {self.name}: attention {self.attention!r}; allowed: {', '.join(ATTENTION_KINDS)}")
        if self.attention == "mla" and not (self.kv_lora_rank > 0 and self.qk_rope_head_dim > 0 and self.v_head_dim > 0):
            raise ValueError(f"model {self.name}: MLA needs kv_lora_rank, qk_rope_head_dim and v_head_dim > 0")
        if self.norm not in NORMS:
            raise ValueError(f"model {self.name}: norm {self.norm!r}; allowed: {', '.join(NORMS)}")
        if self.layer_windows and len(self.layer_windows) != self.num_layers:
            raise ValueError(f"model {self.name}: {len(self.layer_windows)} layer windows for {self.num_layers} layers")
        for name in ("qkv_bias", "o_bias", "mlp_bias"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, self.has_bias)

    # ---- attention ------------------------------------------------------------------------
    @property
    def q_head_dim(self) -> int:
        """Width of one query head (MLA: no-rope + rope parts)."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim if self.attention == "mla" else self.head_dim

    @property
    def q_size(self) -> int:
        return self.num_heads * self.q_head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def o_in_size(self) -> int:
        """Width entering the output projection (MLA: heads x v_head_dim)."""
        return self.num_heads * (self.v_head_dim if self.attention == "mla" else self.head_dim)

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def qkv_params(self) -> int:
        """One layer's query, key and value projections (with MLA's low-rank factors)."""
        h = self.hidden_size
        if self.attention == "mla":
            q = h * self.q_lora_rank + self.q_lora_rank * self.q_size if self.q_lora_rank else h * self.q_size
            kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim)
            kv_b = self.kv_lora_rank * self.num_heads * (self.qk_nope_head_dim + self.v_head_dim)
            return q + kv_a + kv_b
        bias = (self.q_size + 2 * self.kv_size) if self.qkv_bias else 0
        return h * (self.q_size + 2 * self.kv_size) + bias

    @property
    def o_params(self) -> int:
        return self.o_in_size * self.hidden_size + (self.hidden_size if self.o_bias else 0)

    @property
    def attention_extra_params(self) -> int:
        """One layer's attention parameters outside the projections and norms: the sink logits."""
        return self.num_heads if self.attention_sinks else 0

    def qkv_op(self, tp: int) -> tuple[int, int, int]:
        """(parameters, input width, output width) of one layer's QKV projection on one of `tp`
        ranks (heads column-parallel; MLA's down-projections replicated, as vLLM shards them)."""
        h = self.hidden_size
        if self.attention == "mla":
            q = (h * self.q_lora_rank + self.q_lora_rank * self.q_size // tp if self.q_lora_rank
                 else h * self.q_size // tp)
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim) + \
                self.kv_lora_rank * self.num_heads * (self.qk_nope_head_dim + self.v_head_dim) // tp
            out = self.q_size // tp + self.kv_lora_rank + self.qk_rope_head_dim
            return q + kv, h, out
        out = self.q_size // tp + 2 * kv_heads_per_rank(self, tp) * self.head_dim
        return h * out, h, out

    def o_op(self, tp: int) -> tuple[int, int, int]:
        width = self.o_in_size // tp
        return width * self.hidden_size, width, self.hidden_size

    def attention_geometry(self, tp: int) -> tuple[float, float, float]:
        """Per layer on one rank: (FLOPs per query-key pair, KV elements cached per token,
        query + output elements per query token). GQA: 4 H d, 2 Hkv d, 2 H d. MLA with the
        up-projections absorbed (as vLLM runs decode): scores over the latent + rope key, values
        over the latent, one latent + rope vector cached per token (replicated on every rank)."""
        heads = self.num_heads // tp
        if self.attention == "mla":
            latent, rope = self.kv_lora_rank, self.qk_rope_head_dim
            return 2.0 * heads * (2 * latent + rope), float(latent + rope), float(heads * (2 * latent + rope))
        d = self.head_dim
        return 4.0 * heads * d, 2.0 * kv_heads_per_rank(self, tp) * d, 2.0 * heads * d

    def attention_kernel_dims(self, tp: int) -> dict[str, int]:
        """Heads and head width the attention kernels are looked up at (MLA: one latent 'head')."""
        if self.attention == "mla":
            return dict(num_heads=self.num_heads // tp, num_kv_heads=1, head_dim=self.kv_lora_rank + self.qk_rope_head_dim)
        return dict(num_heads=self.num_heads // tp, num_kv_heads=kv_heads_per_rank(self, tp), head_dim=self.head_dim)

    @property
    def architecture_class(self) -> str:
        """The kind of model, as the validation set groups its known error: attention ('mla', or
        'gqa' for multi/grouped-query), 'moe' or 'dense', '+quantized' for a quantized checkpoint."""
        parts = ["mla" if self.attention == "mla" else "gqa", "moe" if self.num_experts else "dense"]
        return "+".join(parts + (["quantized"] if self.weight_bytes_per_param else []))

    # ---- windows --------------------------------------------------------------------------
    @property
    def windows(self) -> tuple[int, ...]:
        return self.layer_windows or (0,) * self.num_layers

    @property
    def num_window_layers(self) -> int:
        return sum(1 for w in self.windows if w)

    def kv_layer_tokens(self, context: int) -> float:
        """Layer-tokens of KV held for one sequence of `context` tokens, in full-layer units: full
        layers keep every token, a sliding-window layer at most its window (vLLM's hybrid KV
        manager frees the rest). Equals `context` for a model without windows."""
        if not self.layer_windows:
            return float(context)
        return sum(min(context, w) if w else context for w in self.layer_windows) / self.num_layers

    # ---- feed-forward and norms -------------------------------------------------------------
    def mlp_params(self, width: int, *, bias: bool | None = None) -> int:
        """One MLP (or one expert) of inner width `width`."""
        bias = self.mlp_bias if bias is None else bias
        h = self.hidden_size
        if self.gated_mlp:
            return 3 * h * width + ((2 * width + h) if bias else 0)
        return 2 * h * width + ((width + h) if bias else 0)

    @property
    def expert_params(self) -> int:
        return self.mlp_params(self.moe_intermediate_size, bias=self.expert_bias) if self.is_moe else 0

    @property
    def router_params(self) -> int:
        return self.hidden_size * self.num_experts + (self.num_experts if self.router_bias else 0)

    @property
    def shared_expert_params(self) -> int:
        if not self.shared_expert_intermediate_size:
            return 0
        gate = self.hidden_size if self.shared_expert_gate else 0
        return self.mlp_params(self.shared_expert_intermediate_size, bias=False) + gate

    @property
    def norm_params(self) -> int:
        """One norm over hidden_size (LayerNorm has a bias)."""
        return self.hidden_size * (2 if self.norm == "layer" else 1)

    @property
    def norm_params_per_layer(self) -> int:
        """Every norm of one layer: the hidden-size norms, q/k norms over head_dim, MLA's norms on
        its low-rank query and latent."""
        mla = (self.q_lora_rank + self.kv_lora_rank) if self.attention == "mla" else 0
        return self.norms_per_layer * self.norm_params + (2 * self.head_dim if self.qk_norm else 0) + mla

    @property
    def num_dense_layers(self) -> int:
        return self.num_layers - self.num_moe_layers

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size + self.learned_positions * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        return self.vocab_size * self.hidden_size

    # ---- totals -----------------------------------------------------------------------------
    @property
    def attention_params(self) -> int:
        """Every layer's attention projections (matmul parameters)."""
        return self.num_layers * (self.qkv_params + self.o_params)

    @property
    def expert_params_total(self) -> int:
        return self.num_moe_layers * self.num_experts * self.expert_params

    @property
    def layer_params_total(self) -> int:
        dense = self.num_dense_layers * self.mlp_params(self.intermediate_size)
        moe = self.num_moe_layers * (self.num_experts * self.expert_params + self.router_params
                                     + self.shared_expert_params)
        return (self.attention_params + dense + moe
                + self.num_layers * (self.norm_params_per_layer + self.attention_extra_params))

    @property
    def total_params(self) -> int:
        head = 0 if self.tie_word_embeddings else self.lm_head_params
        return self.embedding_params + self.layer_params_total + self.norm_params + head

    @property
    def active_params_per_token(self) -> int:
        """Parameters multiplied per token (FLOPs = 2x this): layers with top-k experts + lm_head.

        Embedding lookups are gathers, not matmuls, so they are excluded (formulas.md: P)."""
        dense = self.num_dense_layers * self.mlp_params(self.intermediate_size)
        moe = self.num_moe_layers * (
            self.num_experts_per_tok * self.expert_params + self.router_params + self.shared_expert_params
        )
        return self.attention_params + dense + moe + self.lm_head_params

    # ---- bytes -------------------------------------------------------------------------------
    def param_bytes(self, op_class: str, dtype: str) -> float:
        """Bytes per parameter of one class of weights ("attention", "mlp", "experts", "lm_head",
        "embedding"): its quantized size where the checkpoint quantizes it, else the dtype's."""
        return self.weight_bytes_per_param.get(op_class, dtype_bytes(dtype))

    def param_bytes_at(self, op_class: str, beta: float) -> float:
        """As param_bytes, with the unquantized width given in bytes (the cost model's beta)."""
        return self.weight_bytes_per_param.get(op_class, beta)

    def weight_bytes(self, dtype: str) -> int:
        """All weights in memory: quantized classes at their own bytes, everything else at `dtype`."""
        if not self.weight_bytes_per_param:
            return int(self.total_params * dtype_bytes(dtype))
        experts = self.expert_params_total
        dense_mlp = self.num_dense_layers * self.mlp_params(self.intermediate_size) + self.num_moe_layers * (
            self.shared_expert_params)
        attention = self.num_layers * (self.qkv_params + self.o_params)
        head = 0 if self.tie_word_embeddings else self.lm_head_params
        rest = self.total_params - experts - dense_mlp - attention - head - self.embedding_params
        return int(experts * self.param_bytes("experts", dtype) + dense_mlp * self.param_bytes("mlp", dtype)
                   + attention * self.param_bytes("attention", dtype) + head * self.param_bytes("lm_head", dtype)
                   + self.embedding_params * self.param_bytes("embedding", dtype) + rest * dtype_bytes(dtype))

    def kv_bytes_per_token(self, dtype: str, tp: int = 1) -> int:
        """KV cache bytes of one token, all layers, on one of `tp` ranks (formulas.md: D = 2 beta
        Hkv d nL for GQA; MLA: the latent + rope key, kv_lora_rank + qk_rope_head_dim elements
        per layer, on every rank). For sliding-window models this is the full-context figure;
        kv_layer_tokens() says how much of it a sequence of a given length keeps."""
        return int(dtype_bytes(dtype) * self.attention_geometry(tp)[1] * self.num_layers)


def kv_heads_per_rank(model: ModelSpec, tp: int) -> int:
    """KV heads held by one rank: sharded when tp <= Hkv, replicated beyond (as vLLM does); MLA's
    latent is one 'head', replicated."""
    if model.attention == "mla":
        return 1
    return math.ceil(model.num_kv_heads / tp)


def dtype_bytes(dtype: str) -> float:
    if dtype not in DTYPE_BYTES:
        raise ServesimError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]
