"""Models: Hugging Face config.json -> ModelSpec (shapes, parameter counts, weight and KV bytes),
and the shipped catalog of configs (configs/*.json).

Owns the architecture arithmetic of a model, with no device and no time. Not here: what a step
costs (cost/), how much of a device the model takes (engine/memory_plan.py).
"""
from simulator.models.spec import (
                                   CONFIG_DIR,
                                   DTYPE_BYTES,
                                   ModelSpec,
                                   dtype_bytes,
                                   kv_heads_per_rank,
                                   load_model,
                                   model_names,
)

__all__ = ["CONFIG_DIR", "DTYPE_BYTES", "ModelSpec", "dtype_bytes", "kv_heads_per_rank", "load_model", "model_names"]
