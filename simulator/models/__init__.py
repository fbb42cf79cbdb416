"""Models: Hugging Face config.json -> ModelSpec (shapes, exact parameter counts, weight and KV
bytes), through one architecture table, and the shipped catalog of configs (configs/*.json).

Owns the architecture arithmetic of a model (spec.py), how each model_type's config is read or
refused (architectures.py), quantized checkpoints' weight bytes (quantization.py) and resolving a
--model argument (catalog.py: names, Hugging Face ids, paths). No device and no time. Not here:
what a step costs (cost/), how much of a device the model takes (engine/memory_plan.py).
"""
from simulator.models.architectures import ARCHITECTURES
from simulator.models.catalog import config_path, load_model, model_names
from simulator.models.spec import DTYPE_BYTES, ModelSpec, dtype_bytes, kv_heads_per_rank

__all__ = ["ARCHITECTURES", "DTYPE_BYTES", "ModelSpec", "config_path", "dtype_bytes", "kv_heads_per_rank",
           "load_model", "model_names"]
