import json

import pytest

from simulator.errors import ServesimError
from simulator.models import load_model, model_names

CATALOG = {"llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b", "qwen3-0.6b", "qwen3-1.7b",
           "qwen3-4b", "qwen3-8b", "qwen3-14b", "qwen3-32b", "opt-6.7b", "opt-30b", "mixtral-8x7b", "qwen3-30b-a3b"}


def test_catalog_complete():
    assert CATALOG <= set(model_names())


@pytest.mark.parametrize("name,total_b", [
    ("llama-2-7b", 6.738), ("llama-3-8b", 8.030), ("llama-2-70b", 68.977), ("qwen3-0.6b", 0.596),
    ("qwen3-8b", 8.191), ("mixtral-8x7b", 46.703), ("qwen3-30b-a3b", 30.532), ("opt-6.7b", 6.658),
])
def test_total_parameter_counts_match_published_sizes(name, total_b):
    assert load_model(name).total_params / 1e9 == pytest.approx(total_b, abs=2e-3)


@pytest.mark.parametrize("name,published_active_b", [("mixtral-8x7b", 12.9), ("qwen3-30b-a3b", 3.3)])
def test_moe_active_parameters(name, published_active_b):
    """Published 'active' counts = total minus the unused experts (embeddings included);
    active_params_per_token excludes the embedding gather and norms (no matmul FLOPs)."""
    m = load_model(name)
    published = m.total_params - (m.num_experts - m.num_experts_per_tok) * m.expert_params * m.num_moe_layers
    assert published / 1e9 == pytest.approx(published_active_b, abs=0.06)
    norms = m.num_layers * m.norm_params_per_layer + m.hidden_size
    assert m.active_params_per_token == published - m.embedding_params - norms


def test_llama_2_7b_exact_count():
    # 32 layers x (4*4096^2 attention + 3*4096*11008 MLP + 2*4096 norms) + 2*32000*4096 + 4096
    assert load_model("llama-2-7b").total_params == 32 * (4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096) + 2 * 32000 * 4096 + 4096


@pytest.mark.parametrize("name,kv_bytes", [
    ("llama-2-7b", 2 * 2 * 32 * 128 * 32), ("llama-3-8b", 2 * 2 * 8 * 128 * 32), ("qwen3-0.6b", 2 * 2 * 8 * 128 * 28),
    ("llama-2-70b", 2 * 2 * 8 * 128 * 80),
])
def test_kv_bytes_per_token_gqa_aware(name, kv_bytes):
    assert load_model(name).kv_bytes_per_token("bf16") == kv_bytes


def test_weight_bytes_per_dtype():
    m = load_model("llama-3-8b")
    assert m.weight_bytes("bf16") == 2 * m.total_params and m.weight_bytes("fp8") == m.total_params


def test_moe_fields_parsed():
    m = load_model("mixtral-8x7b")
    assert (m.num_experts, m.num_experts_per_tok, m.num_moe_layers, m.moe_intermediate_size) == (8, 2, 32, 14336)
    q = load_model("qwen3-30b-a3b")
    assert (q.num_experts, q.num_experts_per_tok, q.moe_intermediate_size) == (128, 8, 768)


def test_config_path_and_folder(tmp_path):
    cfg = json.loads(open(load_model.__globals__["CONFIG_DIR"] / "qwen3-8b.json").read())
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert load_model(str(tmp_path)).num_layers == 36
    assert load_model(str(tmp_path / "config.json")).num_kv_heads == 8


def test_unknown_model_lists_known():
    with pytest.raises(ServesimError, match="known models: .*llama-2-7b"):
        load_model("llama-9")


def test_bad_config_names_key(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama", "hidden_size": 8}')
    with pytest.raises(ServesimError, match=r"lacks required key 'num_hidden_layers' \(model_type 'llama'\)"):
        load_model(str(tmp_path))
