"""The architecture table: how each supported `model_type` reads its config.json into a ModelSpec.

One reader per family says, from the config's own keys (with the family's defaults where
transformers has them): attention kind (GQA/MQA/MHA, or MLA with its cached latent), head width,
FFN kind and width, MoE (routed experts, shared experts, dense-first layers, top-k, biases),
tied-embedding default, norms and biases, and which layers attend through a sliding window.
Refusals (ServesimError, one line naming the file's model_type or key and what is supported):
a model_type not in ARCHITECTURES; a key that changes the arithmetic (ARITHMETIC_KEYS) with a
non-trivial value that the family's reader does not understand. `allow_unknown=True` reads an
unknown type the Llama way and records that in ModelSpec.notes. Multimodal checkpoints are read
from their `text_config` (as transformers' get_text_config() does); the vision tower is not
modelled and the notes say so. Quantized checkpoints: quantization.py.
"""
from __future__ import annotations

from typing import Callable

from simulator.errors import ServesimError
from simulator.models.quantization import read_quantization
from simulator.models.spec import ModelSpec

# keys whose presence changes the arithmetic: a reader must understand every one it meets
ARITHMETIC_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "n_shared_experts", "moe_intermediate_size",
                   "shared_expert_intermediate_size", "first_k_dense_replace", "moe_layer_freq", "decoder_sparse_step",
                   "mlp_only_layers", "kv_lora_rank", "q_lora_rank", "qk_rope_head_dim", "sliding_window",
                   "layer_types", "sliding_window_pattern", "multi_query", "num_kv_heads", "ffn_hidden_size",
                   "new_decoder_architecture", "alibi", "attention_chunk_size", "num_nextn_predict_layers",
                   "parallel_attn", "use_sliding_window", "interleave_moe_layer_step", "no_rope_layers",
                   "word_embed_proj_dim")
# sizes that must be integers >= 1 wherever a config gives them (0 or negative would divide by zero
# or build an empty model deep inside the cost model)
POSITIVE_KEYS = frozenset({"hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                           "head_dim", "vocab_size", "max_position_embeddings", "intermediate_size", "ffn_dim",
                           "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "kv_lora_rank"})


class _Config:
    """A config dict that remembers which keys a reader used."""

    def __init__(self, raw: dict, origin: str):
        self.raw, self.origin, self.used = raw, origin, set()

    def get(self, key: str, default=None):
        self.used.add(key)
        v = self.raw.get(key)
        return default if v is None else v

    def need(self, key: str):
        self.used.add(key)
        if self.raw.get(key) is None:
            raise ServesimError(f"{self.origin}: config.json lacks required key {key!r} "
                                f"(model_type {self.raw.get('model_type')!r})")
        return self.raw[key]

    def int(self, key: str, default: int | None = None) -> int:
        v = self.get(key, default) if default is not None else self.need(key)
        try:
            out = int(v)
        except (TypeError, ValueError, OverflowError):
            raise ServesimError(f"{self.origin}: {key} is {v!r}, not an integer") from None
        if key in POSITIVE_KEYS and out < 1:
            raise ServesimError(f"{self.origin}: {key} is {v!r}; allowed: an integer >= 1")
        return out


def _trivial(v) -> bool:
    return v is None or v is False or v == 0 or v == [] or v == ""


def _windows(c: _Config, layers: int, *, all_layers: bool = True, default_pattern: int = 0) -> tuple[int, ...]:
    """Per-layer windows: from `layer_types` (transformers' list) when the config has one; else a
    local:global pattern (every `sliding_window_pattern`-th layer global, the family's default
    pattern when the key is absent); else one window on every layer when `all_layers`."""
    window = c.int("sliding_window", 0) if c.raw.get("sliding_window") is not None else 0
    if "use_sliding_window" in c.raw and not c.get("use_sliding_window"):
        window = 0
    types = c.get("layer_types")
    if types:
        if len(types) != layers:
            raise ServesimError(f"{c.origin}: layer_types has {len(types)} entries for {layers} layers")
        if unknown := sorted(set(types) - {"full_attention", "sliding_attention"}):
            raise ServesimError(f"{c.origin}: layer_types {unknown} not supported; supported: full_attention, "
                                "sliding_attention")
        return tuple(window if t == "sliding_attention" else 0 for t in types) if window else ()
    pattern = c.int("sliding_window_pattern", default_pattern) if c.raw.get("sliding_window_pattern") else default_pattern
    if not window:
        return ()
    if pattern:
        return tuple(0 if (i + 1) % pattern == 0 else window for i in range(layers))
    return (window,) * layers if all_layers else ()


def _heads(c: _Config, hidden: int) -> tuple[int, int, int]:
    heads = c.int("num_attention_heads")
    kv = c.int("num_key_value_heads", heads)
    head_dim = c.int("head_dim", hidden // heads) if c.raw.get("head_dim") else hidden // heads
    return heads, kv, head_dim


def _llama_like(c: _Config, **over) -> dict:
    """Llama, Mistral, Qwen2/3, Phi-3, Gemma: gated MLP, RMSNorm, RoPE; family overrides in `over`."""
    hidden = c.int("hidden_size")
    heads, kv, head_dim = _heads(c, hidden)
    layers = c.int("num_hidden_layers")
    spec = dict(num_layers=layers, hidden_size=hidden, num_heads=heads, num_kv_heads=kv, head_dim=head_dim,
                intermediate_size=c.int("intermediate_size"), vocab_size=c.int("vocab_size"),
                tie_word_embeddings=bool(c.get("tie_word_embeddings", False)), gated_mlp=True,
                max_position_embeddings=c.int("max_position_embeddings", 4096),
                qkv_bias=bool(c.get("attention_bias", False)), o_bias=bool(c.get("attention_bias", False)),
                mlp_bias=bool(c.get("mlp_bias", False)))
    c.get("rope_scaling")
    c.get("rope_theta")
    return spec | over


def _llama(c: _Config) -> dict:
    return _llama_like(c, layer_windows=_windows(c, c.int("num_hidden_layers")))


def _qwen2(c: _Config) -> dict:
    spec = _llama_like(c, qkv_bias=True, o_bias=False)
    layers = spec["num_layers"]
    # Qwen2: sliding window only when use_sliding_window, and only from max_window_layers on
    if c.get("use_sliding_window") and c.raw.get("sliding_window"):
        first = c.int("max_window_layers", layers)
        spec["layer_windows"] = tuple(c.int("sliding_window") if i >= first else 0 for i in range(layers))
    else:
        c.get("sliding_window"), c.get("max_window_layers"), c.get("layer_types")
    return spec


def _qwen3(c: _Config) -> dict:
    spec = _qwen2(c)
    return spec | dict(qkv_bias=bool(c.get("attention_bias", False)), o_bias=bool(c.get("attention_bias", False)),
                       qk_norm=True)


def _moe_common(c: _Config, spec: dict, *, experts_key: str, width_key: str = "moe_intermediate_size") -> dict:
    layers = spec["num_layers"]
    experts = c.int(experts_key, 0)
    if not experts:
        return spec
    step = c.int("decoder_sparse_step", 1) or 1
    mlp_only = set(c.get("mlp_only_layers", []) or [])
    moe_layers = sum(1 for i in range(layers) if i not in mlp_only and (i + 1) % step == 0)
    width = c.int(width_key, spec["intermediate_size"]) if c.raw.get(width_key) else spec["intermediate_size"]
    return spec | dict(num_experts=experts, num_experts_per_tok=c.int("num_experts_per_tok"),
                       moe_intermediate_size=width, num_moe_layers=moe_layers,
                       intermediate_size=spec["intermediate_size"] if moe_layers < layers else 0)


def _mixtral(c: _Config) -> dict:
    return _moe_common(c, _llama(c), experts_key="num_local_experts", width_key="intermediate_size")


def _qwen3_moe(c: _Config) -> dict:
    return _moe_common(c, _qwen3(c), experts_key="num_experts")


def _qwen2_moe(c: _Config) -> dict:
    spec = _moe_common(c, _qwen2(c), experts_key="num_experts")
    shared = c.int("shared_expert_intermediate_size", 0)
    return spec | dict(shared_expert_intermediate_size=shared, shared_expert_gate=bool(shared))


def _phi3(c: _Config) -> dict:
    spec = _llama_like(c, qkv_bias=False, o_bias=False)
    return spec | dict(layer_windows=_windows(c, spec["num_layers"]))


def _gemma(c: _Config) -> dict:
    return _llama_like(c, tie_word_embeddings=bool(c.get("tie_word_embeddings", True)))


def _gemma2(c: _Config) -> dict:
    spec = _gemma(c) | dict(norms_per_layer=4)
    # Gemma-2: sliding on even layers (local, global, local, ...); transformers' default pattern 2
    return spec | dict(layer_windows=_windows(c, spec["num_layers"], all_layers=False, default_pattern=2))


def _gemma3(c: _Config) -> dict:
    spec = _gemma(c) | dict(norms_per_layer=4, qk_norm=True)
    c.get("rope_local_base_freq")
    c.get("query_pre_attn_scalar")
    return spec | dict(layer_windows=_windows(c, spec["num_layers"], all_layers=False, default_pattern=6))


def _mistral(c: _Config) -> dict:
    return _llama(c)


def _deepseek(c: _Config) -> dict:
    hidden = c.int("hidden_size")
    layers = c.int("num_hidden_layers")
    heads = c.int("num_attention_heads")
    experts = c.int("n_routed_experts", 0)
    width = c.int("moe_intermediate_size", 0) if experts else 0
    dense_first = c.int("first_k_dense_replace", 0)
    freq = c.int("moe_layer_freq", 1) or 1
    moe_layers = sum(1 for i in range(layers) if i >= dense_first and i % freq == 0) if experts else 0
    nextn = c.int("num_nextn_predict_layers", 0)
    spec = dict(num_layers=layers, hidden_size=hidden, num_heads=heads, num_kv_heads=heads,
                head_dim=c.int("qk_nope_head_dim") + c.int("qk_rope_head_dim"),
                intermediate_size=c.int("intermediate_size"), vocab_size=c.int("vocab_size"),
                tie_word_embeddings=bool(c.get("tie_word_embeddings", False)), gated_mlp=True,
                max_position_embeddings=c.int("max_position_embeddings", 4096), attention="mla",
                q_lora_rank=c.int("q_lora_rank", 0) if c.raw.get("q_lora_rank") else 0,
                kv_lora_rank=c.int("kv_lora_rank"), qk_rope_head_dim=c.int("qk_rope_head_dim"),
                qk_nope_head_dim=c.int("qk_nope_head_dim"), v_head_dim=c.int("v_head_dim"),
                qkv_bias=bool(c.get("attention_bias", False)), o_bias=False, mlp_bias=False,
                num_experts=experts, num_experts_per_tok=c.int("num_experts_per_tok", 0) if experts else 0,
                moe_intermediate_size=width, num_moe_layers=moe_layers,
                shared_expert_intermediate_size=c.int("n_shared_experts", 0) * width)
    if nextn:
        spec["notes"] = (f"{nextn} multi-token-prediction layer(s) (num_nextn_predict_layers) are not part of "
                         "the served model here: counted neither in parameters nor in time",)
    if spec["qkv_bias"]:
        raise ServesimError(f"{c.origin}: attention_bias=true on an MLA model is not supported")
    return spec


def _gpt_oss(c: _Config) -> dict:
    spec = _llama_like(c, qkv_bias=True, o_bias=True)
    layers = spec["num_layers"]
    return _moe_common(c, spec, experts_key="num_local_experts", width_key="intermediate_size") | dict(
        attention_sinks=True, router_bias=True, expert_bias=True, layer_windows=_windows(c, layers))


def _falcon(c: _Config) -> dict:
    if c.get("new_decoder_architecture"):
        raise ServesimError(f"{c.origin}: falcon with new_decoder_architecture=true (Falcon-40B/180B layout) is not "
                            "supported; supported: the Falcon-7B layout (multi_query, parallel_attn)")
    if c.get("alibi"):
        raise ServesimError(f"{c.origin}: falcon with alibi=true is not supported (RoPE only)")
    hidden = c.int("hidden_size")
    heads = c.int("num_attention_heads")
    kv = 1 if c.get("multi_query", True) else c.int("num_kv_heads", heads)
    parallel = bool(c.get("parallel_attn", True))
    bias = bool(c.get("bias", False))
    return dict(num_layers=c.int("num_hidden_layers"), hidden_size=hidden, num_heads=heads, num_kv_heads=kv,
                head_dim=hidden // heads, intermediate_size=c.int("ffn_hidden_size", 4 * hidden) if c.raw.get(
                    "ffn_hidden_size") else 4 * hidden, vocab_size=c.int("vocab_size"),
                tie_word_embeddings=bool(c.get("tie_word_embeddings", True)), gated_mlp=False,
                max_position_embeddings=c.int("max_position_embeddings", 2048), qkv_bias=bias, o_bias=bias,
                mlp_bias=bias, norm="layer", norms_per_layer=1 if parallel else 2)


def _opt(c: _Config) -> dict:
    hidden = c.int("hidden_size")
    if c.raw.get("word_embed_proj_dim") not in (None, hidden):
        raise ServesimError(f"{c.origin}: word_embed_proj_dim != hidden_size (OPT-350m's projections) is not supported")
    c.get("word_embed_proj_dim")
    heads = c.int("num_attention_heads")
    bias = bool(c.get("enable_bias", True))
    return dict(num_layers=c.int("num_hidden_layers"), hidden_size=hidden, num_heads=heads, num_kv_heads=heads,
                head_dim=hidden // heads, intermediate_size=c.int("ffn_dim"), vocab_size=c.int("vocab_size"),
                tie_word_embeddings=bool(c.get("tie_word_embeddings", True)), gated_mlp=False,
                max_position_embeddings=c.int("max_position_embeddings", 2048), has_bias=bias,
                qkv_bias=bias, o_bias=bias, mlp_bias=bias, norm="layer",
                learned_positions=c.int("max_position_embeddings", 2048) + 2)


ARCHITECTURES: dict[str, Callable[[_Config], dict]] = {
    "llama": _llama, "mistral": _mistral, "mixtral": _mixtral, "qwen2": _qwen2, "qwen2_moe": _qwen2_moe,
    "qwen3": _qwen3, "qwen3_moe": _qwen3_moe, "deepseek_v2": _deepseek, "deepseek_v3": _deepseek,
    "gemma": _gemma, "gemma2": _gemma2, "gemma3": _gemma3, "gemma3_text": _gemma3, "phi3": _phi3,
    "falcon": _falcon, "opt": _opt, "gpt_oss": _gpt_oss,
}
# transformers' defaults for keys Google's compact Gemma configs leave out (AutoConfig.for_model(type))
FAMILY_DEFAULTS = {"gemma": {"head_dim": 256, "vocab_size": 256000},
                   "gemma2": {"head_dim": 256, "vocab_size": 256000, "sliding_window": 4096},
                   "gemma3_text": {"head_dim": 256, "vocab_size": 262208, "sliding_window": 4096,
                                   "max_position_embeddings": 131072}}


def spec_from_config(config: dict, *, name: str, origin: str = "config.json", allow_unknown: bool = False) -> ModelSpec:
    """Hugging Face config keys -> ModelSpec through the architecture table (module docstring)."""
    notes: list[str] = []
    if isinstance(config.get("text_config"), dict):
        text = dict(config["text_config"])
        text.setdefault("model_type", f"{config.get('model_type', '')}_text".lstrip("_"))
        for key in ("tie_word_embeddings", "quantization_config"):
            if key in config and key not in text:
                text[key] = config[key]
        notes.append(f"multimodal checkpoint ({config.get('model_type')}): its text_config is the served language "
                     "model; the vision tower is not modelled")
        config = text
    model_type = config.get("model_type")
    if model_type is None and not allow_unknown:
        raise ServesimError(f"{origin}: config.json has no model_type; supported: {', '.join(sorted(ARCHITECTURES))}")
    reader = ARCHITECTURES.get(model_type)
    if reader is None:
        if not allow_unknown:
            raise ServesimError(f"{origin}: model_type {model_type!r} is not supported; supported: "
                                f"{', '.join(sorted(ARCHITECTURES))} (or pass --allow-unknown-architecture to read it "
                                "the Llama way, at your own risk)")
        reader = _llama
        notes.append(f"model_type {model_type!r} is not in the architecture table: read the Llama way "
                     "(--allow-unknown-architecture)")
    config = FAMILY_DEFAULTS.get(model_type, {}) | config
    c = _Config(config, origin)
    fields = reader(c)
    not_understood = [k for k in ARITHMETIC_KEYS if k in config and k not in c.used and not _trivial(config[k])]
    if not_understood:
        key = not_understood[0]
        raise ServesimError(f"{origin}: key {key!r} (= {config[key]!r}) changes the model's arithmetic but is not part "
                            f"of the {model_type!r} architecture as servesim reads it; supported types: "
                            f"{', '.join(sorted(ARCHITECTURES))}")
    quant = read_quantization(config.get("quantization_config"), origin=origin, moe=bool(fields.get("num_experts")))
    fields["notes"] = tuple(notes) + tuple(fields.get("notes", ())) + quant.notes
    return ModelSpec(name=name, model_type=model_type or "", weight_bytes_per_param=quant.bytes_per_param,
                     quantization=quant.description, **fields)
