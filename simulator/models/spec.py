"""Model specs from Hugging Face `config.json`: shapes, parameter counts, weight and KV bytes.

Owns the translation config.json -> ModelSpec and the derived per-token quantities. Does not
turn anything into time (cost/) and does not know about devices. Supported families:
Llama/Mistral/Qwen2/Qwen3 (gated MLP, RMSNorm, RoPE), OPT (ReLU MLP, LayerNorm, biases,
learned positions), Mixtral and Qwen3-MoE (routed experts).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import ServesimError

CONFIG_DIR = Path(__file__).parent / "configs"
DTYPE_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}


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
    has_bias: bool
    max_position_embeddings: int
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    num_moe_layers: int = 0
    shared_expert_intermediate_size: int = 0

    def __post_init__(self) -> None:
        for name in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim", "vocab_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"model {self.name}: {name} must be >= 1, got {getattr(self, name)}")
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

    # ---- per-layer parameter counts -------------------------------------------------------
    @property
    def q_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def qkv_params(self) -> int:
        bias = (self.q_size + 2 * self.kv_size) if self.has_bias else 0
        return self.hidden_size * (self.q_size + 2 * self.kv_size) + bias

    @property
    def o_params(self) -> int:
        return self.q_size * self.hidden_size + (self.hidden_size if self.has_bias else 0)

    def mlp_params(self, width: int) -> int:
        """One MLP (or one expert) of inner width `width`."""
        if self.gated_mlp:
            return 3 * self.hidden_size * width
        bias = (width + self.hidden_size) if self.has_bias else 0
        return 2 * self.hidden_size * width + bias

    @property
    def expert_params(self) -> int:
        return self.mlp_params(self.moe_intermediate_size) if self.is_moe else 0

    @property
    def router_params(self) -> int:
        return self.hidden_size * self.num_experts

    @property
    def shared_expert_params(self) -> int:
        return self.mlp_params(self.shared_expert_intermediate_size) if self.shared_expert_intermediate_size else 0

    @property
    def norm_params_per_layer(self) -> int:
        per_norm = 2 * self.hidden_size if self.model_type == "opt" else self.hidden_size
        qk_norm = 2 * self.head_dim if self.model_type in ("qwen3", "qwen3_moe") else 0
        return 2 * per_norm + qk_norm

    @property
    def num_dense_layers(self) -> int:
        return self.num_layers - self.num_moe_layers

    @property
    def embedding_params(self) -> int:
        pos = (self.max_position_embeddings + 2) * self.hidden_size if self.model_type == "opt" else 0
        return self.vocab_size * self.hidden_size + pos

    @property
    def lm_head_params(self) -> int:
        return self.vocab_size * self.hidden_size

    # ---- totals -----------------------------------------------------------------------------
    @property
    def attention_params(self) -> int:
        return self.num_layers * (self.qkv_params + self.o_params)

    @property
    def layer_params_total(self) -> int:
        dense = self.num_dense_layers * self.mlp_params(self.intermediate_size)
        moe = self.num_moe_layers * (
            self.num_experts * self.expert_params + self.router_params + self.shared_expert_params
        )
        return self.attention_params + dense + moe + self.num_layers * self.norm_params_per_layer

    @property
    def total_params(self) -> int:
        final_norm = (2 if self.model_type == "opt" else 1) * self.hidden_size
        head = 0 if self.tie_word_embeddings else self.lm_head_params
        return self.embedding_params + self.layer_params_total + final_norm + head

    @property
    def active_params_per_token(self) -> int:
        """Parameters multiplied per token (FLOPs = 2x this): layers with top-k experts + lm_head.

        Embedding lookups are gathers, not matmuls, so they are excluded (formulas.md: P)."""
        dense = self.num_dense_layers * self.mlp_params(self.intermediate_size)
        moe = self.num_moe_layers * (
            self.num_experts_per_tok * self.expert_params + self.router_params + self.shared_expert_params
        )
        return self.attention_params + dense + moe + self.lm_head_params

    def weight_bytes(self, dtype: str) -> int:
        return int(self.total_params * dtype_bytes(dtype))

    def kv_bytes_per_token(self, dtype: str, tp: int = 1) -> int:
        """K and V for all layers on one of `tp` ranks (formulas.md: D = 2*beta*Hkv*d*nL); GQA aware."""
        return int(2 * dtype_bytes(dtype) * kv_heads_per_rank(self, tp) * self.head_dim * self.num_layers)


def kv_heads_per_rank(model: ModelSpec, tp: int) -> int:
    """KV heads held by one rank: sharded when tp <= Hkv, replicated beyond (as vLLM does)."""
    return math.ceil(model.num_kv_heads / tp)


def dtype_bytes(dtype: str) -> float:
    if dtype not in DTYPE_BYTES:
        raise ServesimError(f"unknown dtype {dtype!r}; allowed: {', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]


def model_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def load_model(name_or_path: str | Path) -> ModelSpec:
    """A catalog name (`llama-2-7b`), a config.json path, or a folder holding config.json."""
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        if path.suffix == ".json" or "/" in str(name_or_path):
            raise ServesimError(f"model config {str(path)!r} does not exist")
        path = CONFIG_DIR / f"{str(name_or_path).lower()}.json"
        if not path.is_file():
            raise ServesimError(
                f"unknown model {str(name_or_path)!r}; known models: {', '.join(model_names())} "
                "(or pass a path to a Hugging Face config.json)"
            )
        name = str(name_or_path).lower()
    else:
        name = path.parent.name if path.name == "config.json" else path.stem
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ServesimError(f"{path}: not valid JSON: {exc}") from None
    try:
        return spec_from_config(config, name=name)
    except KeyError as exc:
        raise ServesimError(f"{path}: config.json lacks required key {exc.args[0]!r}") from None
    except ValueError as exc:
        raise ServesimError(f"{path}: {exc}") from None


def spec_from_config(config: dict, *, name: str) -> ModelSpec:
    """Hugging Face config keys -> ModelSpec (handles Llama/Qwen/Mistral, OPT, MoE variants)."""
    model_type = config.get("model_type", "llama")
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    num_layers = int(config["num_hidden_layers"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    num_experts = int(config.get("num_local_experts") or config.get("num_experts") or 0)
    is_opt = model_type == "opt"
    num_moe_layers = 0
    if num_experts:
        step = int(config.get("decoder_sparse_step", 1) or 1)
        mlp_only = set(config.get("mlp_only_layers", []) or [])
        num_moe_layers = sum(1 for i in range(num_layers) if i not in mlp_only and (i + 1) % step == 0)
    moe_width = int(config.get("moe_intermediate_size") or config.get("intermediate_size", 0)) if num_experts else 0
    return ModelSpec(
        name=name,
        model_type=model_type,
        num_layers=num_layers,
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=head_dim,
        intermediate_size=int(config["ffn_dim"] if is_opt else config.get("intermediate_size", 0)),
        vocab_size=int(config["vocab_size"]),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", is_opt)),
        gated_mlp=not is_opt,
        has_bias=bool(config.get("enable_bias", True)) if is_opt else bool(config.get("attention_bias", False)),
        max_position_embeddings=int(config.get("max_position_embeddings", 4096)),
        num_experts=num_experts,
        num_experts_per_tok=int(config.get("num_experts_per_tok", 0)) if num_experts else 0,
        moe_intermediate_size=moe_width,
        num_moe_layers=num_moe_layers,
        shared_expert_intermediate_size=int(config.get("shared_expert_intermediate_size", 0) or 0),
    )
