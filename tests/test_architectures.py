"""Every architecture, exactly: servesim's parameter counts against the transformers modules built
on the meta device from each catalog config (shrunk to tiny dimensions, structure kept), KV bytes
against the projections that fill the cache, real sizes against the model cards, the issue's four
public configs, refusals, quantized checkpoints, Hugging Face ids."""
import json
import warnings

import pytest

from simulator.errors import ServesimError
from simulator.models import load_model, model_names
from simulator.models.architectures import ARCHITECTURES, spec_from_config
from simulator.models.catalog import CONFIG_DIR, resolve_model_name

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SHRINK = {"hidden_size": 64, "intermediate_size": 96, "moe_intermediate_size": 32, "num_attention_heads": 4,
          "vocab_size": 128, "kv_lora_rank": 32, "qk_rope_head_dim": 8, "qk_nope_head_dim": 16, "v_head_dim": 16,
          "shared_expert_intermediate_size": 48, "sliding_window": 8, "n_group": 1, "topk_group": 1, "ffn_dim": 96,
          "ffn_hidden_size": 96}
DROP = ("quantization_config", "auto_map", "pad_token_id", "bos_token_id", "eos_token_id", "num_nextn_predict_layers")


def shrink(cfg: dict) -> dict:
    """The same architecture with tiny dimensions (every structural flag and ratio kept)."""
    c = {k: v for k, v in cfg.items() if not k.startswith("_") and k not in DROP}
    if isinstance(c.get("text_config"), dict):
        return {**shrink(c["text_config"]), "model_type": c["text_config"].get("model_type", c["model_type"] + "_text")}
    layers = min(int(c.get("num_hidden_layers", 2)), 4)
    c.update({k: v for k, v in SHRINK.items() if isinstance(c.get(k), int) and c.get(k)})
    kv = cfg.get("num_key_value_heads")
    if kv is not None:
        c["num_key_value_heads"] = 4 if kv == cfg["num_attention_heads"] else (1 if kv == 1 else 2)
    if cfg.get("word_embed_proj_dim") == cfg.get("hidden_size"):
        c["word_embed_proj_dim"] = c["hidden_size"]
    c.update({k: v for k, v in (("head_dim", 16), ("q_lora_rank", 24), ("first_k_dense_replace", 1),
                                 ("num_experts_per_tok", 2), ("experts_per_token", 2)) if cfg.get(k)})
    c.update({k: 4 for k in ("num_local_experts", "num_experts", "n_routed_experts") if cfg.get(k)})
    if c.get("layer_types"):
        c["layer_types"] = c["layer_types"][:layers]
    c.update(num_hidden_layers=layers, pad_token_id=None, bos_token_id=None, eos_token_id=None)
    if "max_window_layers" in c:
        c["max_window_layers"] = layers
    return c


EXTRA = {  # architectures with no catalog entry: tiny configs of their own
    "qwen2_moe": {"model_type": "qwen2_moe", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
                  "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128, "num_experts": 4,
                  "num_experts_per_tok": 2, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 48},
    "falcon": {"model_type": "falcon", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
               "vocab_size": 128, "multi_query": True, "parallel_attn": True, "new_decoder_architecture": False,
               "bias": False, "alibi": False},
    "gemma": {"model_type": "gemma", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16, "vocab_size": 128},
}
CASES = [(n, shrink(json.loads((CONFIG_DIR / f"{n}.json").read_text()))) for n in model_names()]
CASES += [(f"tiny-{k}", {**v, "pad_token_id": None, "bos_token_id": None, "eos_token_id": None})
          for k, v in EXTRA.items()]


def _meta_model(cfg: dict):
    kw = {k: v for k, v in cfg.items() if k != "model_type"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformers.logging.set_verbosity_error()
        hf_cfg = transformers.AutoConfig.for_model(cfg["model_type"], **kw)
        with torch.device("meta"):
            return transformers.AutoModelForCausalLM.from_config(hf_cfg)


@pytest.mark.parametrize("name, cfg", CASES, ids=[c[0] for c in CASES])
def test_parameter_count_and_kv_bytes_equal_the_reference_implementation(name, cfg):
    model = _meta_model(cfg)
    spec = spec_from_config(cfg, name=name)
    assert spec.total_params == sum(p.numel() for p in model.parameters())
    # the cache holds, per layer and token, what the K and V projections write (MLA: the latent + rope key)
    assert spec.kv_bytes_per_token("bf16") == 2 * sum(_cached_per_layer(model))


def _cached_per_layer(model) -> list[int]:
    """Elements one token adds to each layer's cache, read off the projections that write it:
    K and V (k_proj, or a fused qkv projection less its query part), or MLA's latent + rope key."""
    out = []
    for name, m in model.named_modules():
        if name.endswith("kv_a_proj_with_mqa"):
            out.append(m.out_features)
        elif name.endswith(("self_attn", "self_attention")) and not hasattr(m, "kv_a_proj_with_mqa"):
            if hasattr(m, "k_proj"):
                out.append(2 * m.k_proj.out_features)
            else:
                fused = getattr(m, "qkv_proj", None) or m.query_key_value
                q = (m.o_proj if hasattr(m, "o_proj") else m.dense).in_features
                out.append(fused.out_features - q)
    return out


def test_every_architecture_of_the_table_is_exercised():
    exercised = {spec_from_config(cfg, name=n).model_type for n, cfg in CASES}
    assert set(ARCHITECTURES) - {"gemma3", "deepseek_v2"} <= exercised | {"deepseek_v2"}
    assert {"deepseek_v2", "deepseek_v3", "gemma3_text", "qwen2_moe", "falcon", "gemma"} <= exercised


@pytest.mark.parametrize("name, card_b, card_active_b", [
    ("llama-3.2-1b", 1.23, None), ("llama-3.2-3b", 3.21, None), ("deepseek-v3", 671, 36.6),
    ("deepseek-v2-lite", 15.7, 2.4), ("qwen3-235b-a22b", 235, 22), ("gpt-oss-20b", 21, 3.6), ("gpt-oss-120b", 117, 5.1),
    ("gemma-2-9b", 9.24, None), ("mixtral-8x22b", 141, 39), ("llama-3.1-8b", 8.03, None), ("llama-3.1-70b", 70.6, None),
    ("llama-3.1-405b", 405.9, None), ("qwen2.5-7b", 7.61, None), ("phi-3-mini", 3.82, None), ("phi-4", 14.7, None),
    ("qwen2.5-72b", 72.7, None), ("gemma-2-27b", 27.2, None),
])
def test_real_sizes_match_the_model_cards(name, card_b, card_active_b):
    m = load_model(name)
    assert m.total_params / 1e9 == pytest.approx(card_b, rel=0.01)
    if card_active_b:  # the cards' "active" figures: matmul parameters per token, as active_params_per_token
        assert m.active_params_per_token / 1e9 == pytest.approx(card_active_b, rel=0.05)


def test_the_issues_four_public_configs():
    v2 = load_model("deepseek-v2-lite")  # MLA: 27 layers x (512 + 64) x 2 B
    assert v2.kv_bytes_per_token("bf16") == 27 * 576 * 2 == 31_104
    assert round(v2.total_params / 1e9, 1) == 15.7 and 2.3e9 < v2.active_params_per_token < 2.5e9
    g = load_model("gemma-2-9b")  # tied embeddings by default; every other layer windowed
    assert g.tie_word_embeddings and round(g.total_params / 1e9, 2) == 9.24
    assert g.windows == tuple(4096 if i % 2 == 0 else 0 for i in range(42))
    oss = load_model("gpt-oss-120b")  # mxfp4 experts: fits one H100-80GB
    assert oss.weight_bytes("bf16") < 70e9 and oss.param_bytes("experts", "bf16") == 4.25 / 8


@pytest.mark.parametrize("model_type, extra, message", [
    ("mamba", {}, "model_type 'mamba' is not supported; supported: deepseek_v2"),
    ("gpt2", {}, "model_type 'gpt2' is not supported"),
    ("llama", {"n_routed_experts": 64}, "key 'n_routed_experts' .* not part of the 'llama' architecture"),
    ("llama", {"kv_lora_rank": 512}, "key 'kv_lora_rank'"),
    ("qwen3", {"quantization_config": {"quant_method": "hqq"}}, "quant_method 'hqq' is not supported"),
])
def test_relabelled_or_unreadable_configs_are_refused(tmp_path, model_type, extra, message):
    cfg = {**json.loads((CONFIG_DIR / "llama-3.1-8b.json").read_text()), "model_type": model_type, **extra}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ServesimError, match=message):
        load_model(tmp_path)
    if model_type == "mamba":  # opting in reads it the Llama way and says so
        m = load_model(tmp_path, allow_unknown_architecture=True)
        assert m.total_params == load_model("llama-3.1-8b").total_params and "Llama way" in m.notes[0]


def test_quantized_checkpoints_set_the_weight_bytes():
    base = json.loads((CONFIG_DIR / "llama-3.1-8b.json").read_text())
    awq = spec_from_config({**base, "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}},
                           name="awq")
    per = 0.5 + (2 + 0.5) / 128
    assert awq.param_bytes("attention", "bf16") == awq.param_bytes("mlp", "bf16") == per
    assert awq.param_bytes("lm_head", "bf16") == 2.0  # not converted
    linear = awq.attention_params + awq.num_layers * awq.mlp_params(awq.intermediate_size)
    assert awq.weight_bytes("bf16") == int(linear * per + (awq.total_params - linear) * 2)
    fp8 = spec_from_config({**base, "quantization_config": {"quant_method": "fp8"}}, name="fp8")
    assert fp8.param_bytes("mlp", "bf16") == 1.0
    keep = spec_from_config({**base, "quantization_config": {"quant_method": "gptq", "bits": 8, "group_size": -1,
                                                             "modules_to_not_convert": ["self_attn"]}}, name="g")
    assert keep.param_bytes("attention", "bf16") == 2.0 and keep.param_bytes("mlp", "bf16") == 1.0
    # Qwen3-FP8's list names norms and routers: neither takes a linear class out of fp8
    qwen = spec_from_config({**base, "quantization_config": {"quant_method": "fp8", "modules_to_not_convert": [
        "lm_head", "model.embed_tokens", "model.layers.0.post_attention_layernorm", "model.layers.0.mlp.gate",
        "model.layers.0.input_layernorm"]}}, name="q")
    assert {c: qwen.param_bytes(c, "bf16") for c in ("attention", "mlp", "lm_head")} == {
        "attention": 1.0, "mlp": 1.0, "lm_head": 2.0}
    with pytest.raises(ServesimError, match="quantization_config has no quant_method; supported: awq"):
        spec_from_config({**base, "quantization_config": {"bits": 8}}, name="x")


def test_modelopt_exports_and_quantized_ids():
    import tempfile
    from pathlib import Path

    base = json.loads((CONFIG_DIR / "llama-3.1-8b.json").read_text())
    with tempfile.TemporaryDirectory() as d:  # an nvidia/*-FP8 export: quantization in hf_quant_config.json
        (Path(d) / "config.json").write_text(json.dumps(base))
        (Path(d) / "hf_quant_config.json").write_text(json.dumps(
            {"producer": {"name": "modelopt"}, "quantization": {"quant_algo": "FP8", "exclude_modules": ["lm_head"]}}))
        m = load_model(d)
    assert m.param_bytes("attention", "bf16") == m.param_bytes("mlp", "bf16") == 1.0
    assert m.param_bytes("lm_head", "bf16") == 2.0
    nvfp4 = spec_from_config({**base, "quantization_config": {"quant_method": "modelopt", "quant_algo": "NVFP4"}},
                             name="n")
    assert nvfp4.param_bytes("mlp", "bf16") == 0.5 + 1 / 16
    fp8 = load_model("nvidia/Llama-3.1-8B-Instruct-FP8")  # the catalog architecture, fp8 weights, and a note
    assert fp8.name == "llama-3.1-8b" and fp8.param_bytes("mlp", "bf16") == 1.0 and "inferred" in fp8.notes[0]
    assert load_model("Qwen/Qwen2.5-7B-Instruct-AWQ").param_bytes("mlp", "bf16") == 0.5 + 2.5 / 128
    assert load_model("meta-llama/Llama-3.1-8B-Instruct").weight_bytes_per_param == {}


def test_hugging_face_ids_resolve_and_unknown_names_list_close_ones():
    assert resolve_model_name("meta-llama/Llama-3.1-8B-Instruct") == "llama-3.1-8b"
    assert resolve_model_name("META-LLAMA/LLAMA-3.1-8B") == "llama-3.1-8b"
    assert resolve_model_name("Qwen/Qwen3-8B") == "qwen3-8b"
    assert resolve_model_name("google/gemma-2-9b-it") == "gemma-2-9b"
    assert load_model("openai/gpt-oss-20b").name == "gpt-oss-20b"
    with pytest.raises(ServesimError, match="unknown model 'llama-3.1-9b'; closest: .*llama-3.1-8b"):
        load_model("llama-3.1-9b")
    with pytest.raises(ServesimError, match="does not exist"):
        load_model("/nonexistent/config.json")


def test_multimodal_configs_read_their_text_config():
    m = load_model("gemma-3-27b")
    assert m.model_type == "gemma3_text" and m.tie_word_embeddings and "vision tower is not modelled" in m.notes[0]
    assert m.num_window_layers == 52 and m.head_dim == 128 and m.vocab_size == 262208  # family defaults filled
