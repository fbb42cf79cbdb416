"""Device memory plan: weights, activation reserve, and the KV-cache block budget per replica.

Owns the capacity arithmetic (vLLM's: total memory x gpu_memory_utilization - weights -
activation peak, divided into blocks). Raises ServesimError when the model does not fit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hardware import DeviceSpec
from simulator.errors import ServesimError
from simulator.models import ModelSpec, dtype_bytes

GB = 1e9


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """Per-GPU figures (a replica has tp GPUs with identical plans)."""

    usable_bytes: int  # device memory x gpu_memory_utilization
    weight_bytes: int  # this rank's shard of the weights
    activation_reserve_bytes: int
    kv_bytes_per_token: int  # this rank's share of D
    block_size: int
    num_gpu_blocks: int
    host_weight_bytes: int = 0  # weights kept in host memory (offloaded MoE experts)
    metadata_bytes_per_token: int = 0  # KV policy's per-token state (e.g. fp32 attention scores)
    extra_kv_bytes_per_token: int = 0  # e.g. a speculative draft's KV, held in the same block tables

    @property
    def kv_bytes_per_block(self) -> int:
        return (self.kv_bytes_per_token + self.metadata_bytes_per_token + self.extra_kv_bytes_per_token) * self.block_size

    @property
    def kv_cache_bytes(self) -> int:
        return self.num_gpu_blocks * self.kv_bytes_per_block

    @property
    def kv_capacity_tokens(self) -> int:
        return self.num_gpu_blocks * self.block_size

    def as_dict(self) -> dict:
        extra = {"extra_kv_bytes_per_token": self.extra_kv_bytes_per_token} if self.extra_kv_bytes_per_token else {}
        return {
            "usable_bytes": self.usable_bytes,
            "weight_bytes": self.weight_bytes,
            "activation_reserve_bytes": self.activation_reserve_bytes,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "metadata_bytes_per_token": self.metadata_bytes_per_token,
            "kv_cache_bytes": self.kv_cache_bytes,
            "num_gpu_blocks": self.num_gpu_blocks,
            "kv_capacity_tokens": self.kv_capacity_tokens,
            **extra,
        } | ({"host_weight_bytes": self.host_weight_bytes} if self.host_weight_bytes else {})


def activation_reserve_bytes(model: ModelSpec, dtype: str, tp: int, max_num_batched_tokens: int,
                             max_num_seqs: int) -> int:
    """Estimated peak activations of one forward pass at the largest step (an estimate in the
    spirit of vLLM's profiling run): hidden states, QKV, MLP intermediate, fp32 logits."""
    beta = dtype_bytes(dtype)
    width = (model.intermediate_size or model.moe_intermediate_size * model.num_experts_per_tok) // tp
    per_token = (4 * model.hidden_size + (model.q_size + 2 * model.kv_size) // tp + 3 * width) * beta
    logits = min(max_num_seqs, max_num_batched_tokens) * model.vocab_size // tp * 4
    return int(max_num_batched_tokens * per_token + logits)


def gpu_weight_bytes(model: ModelSpec, dtype: str, *, tp: int, pp: int = 1, ep: int | None = None) -> int:
    """Weights on one GPU. tp shards every matrix; pp gives each stage ceil(L/pp) of the L layers,
    the first stage the embedding and the last the lm_head (the larger bounds the plan: every GPU
    gets the same plan); ep (expert parallelism) puts E/ep whole routed experts on each GPU instead
    of a 1/tp slice of all of them (vLLM FusedMoE with enable_expert_parallel)."""
    total = model.weight_bytes(dtype)
    if pp == 1 and not ep:
        return int(total / tp)
    experts = model.expert_params_total * model.param_bytes("experts", dtype) if ep else 0.0
    head = 0 if model.tie_word_embeddings else model.lm_head_params * model.param_bytes("lm_head", dtype)
    embed = model.embedding_params * model.param_bytes("embedding", dtype)
    layers = total - experts - head - embed
    ends = head + embed if pp == 1 else max(head, embed)
    stage = math.ceil(model.num_layers / pp) / model.num_layers
    return int((layers * stage + ends) / tp + (experts * stage / ep if ep else 0.0))


def gpu_kv_bytes_per_token(model: ModelSpec, dtype: str, *, tp: int, pp: int = 1) -> int:
    """KV bytes of one token on one GPU: this tp rank's share, for the ceil(L/pp) layers of one stage."""
    full = model.kv_bytes_per_token(dtype, tp)
    return full if pp == 1 else int(full * math.ceil(model.num_layers / pp) / model.num_layers)


def plan_memory(model: ModelSpec, device: DeviceSpec, *, dtype: str, tp: int, block_size: int,
                gpu_memory_utilization: float, max_num_batched_tokens: int, max_num_seqs: int,
                extra_weight_bytes: int = 0, offloaded_weight_bytes: int = 0,
                metadata_bytes_per_token: int = 0, extra_kv_bytes_per_token: int = 0,
                kv_dtype: str | None = None, pp: int = 1, expert_parallel_size: int | None = None) -> MemoryPlan:
    """offloaded_weight_bytes: weights kept in host memory (MoE experts); metadata_bytes_per_token:
    a KV policy's state stored beside each cached token (its score metadata); extra_kv_bytes_per_token:
    another model's KV kept in the same block tables (a speculative draft). Both charged to the blocks.
    pp, expert_parallel_size: per-GPU figures under pipeline and expert parallelism
    (gpu_weight_bytes, gpu_kv_bytes_per_token)."""
    usable = int(device.memory_bytes * gpu_memory_utilization)
    weights = gpu_weight_bytes(model, dtype, tp=tp, pp=pp, ep=expert_parallel_size) + extra_weight_bytes \
        - offloaded_weight_bytes
    reserve = activation_reserve_bytes(model, dtype, tp, max_num_batched_tokens, max_num_seqs)
    kv_per_token = gpu_kv_bytes_per_token(model, kv_dtype or dtype, tp=tp, pp=pp)
    free = usable - weights - reserve
    blocks = free // ((kv_per_token + metadata_bytes_per_token + extra_kv_bytes_per_token) * block_size) if free > 0 else 0
    if blocks < 1:
        raise ServesimError(
            f"model {model.name} does not fit on {device.name} at tp={tp} ({dtype}): it needs "
            f"{weights / GB:.2f} GB of weights per GPU + {reserve / GB:.2f} GB activation reserve "
            f"+ at least one KV block ({(kv_per_token + extra_kv_bytes_per_token) * block_size / GB:.4f} GB), but the device offers "
            f"{usable / GB:.2f} GB ({device.memory_gib:g} GiB x gpu_memory_utilization "
            f"{gpu_memory_utilization}); try a larger --tp, a bigger device, or a smaller dtype"
            + ("; or offload experts to host memory: --expert-placement static|lru [--gpu-expert-slots N] "
               "--expert-exec fiddler|fetch|auto --host CPU_NAME" if model.is_moe and not offloaded_weight_bytes else
               "; or keep fewer experts on the GPU (--gpu-expert-slots)" if offloaded_weight_bytes else "")
        )
    return MemoryPlan(usable, weights, reserve, kv_per_token, block_size, int(blocks), offloaded_weight_bytes,
                      metadata_bytes_per_token, extra_kv_bytes_per_token)


# vLLM refuses a swap space over 70% of the host's CPU memory (and warns above 40%): vllm/config.py,
# CacheConfig.verify_with_parallel_config ("Too large swap space"), with the tp GPUs of an instance on one node
HOST_MEMORY_FRACTION = 0.7


def check_host_memory(*, swap_space_gib: float, kv_offloading_size_gib: float, tp: int, host_memory_gib: float,
                      host_name: str) -> None:
    """Host memory an engine instance pins for KV must stay within HOST_MEMORY_FRACTION of its
    host's memory: its swap space (GiB per GPU, vLLM's swap_space, times its tp GPUs) plus its KV
    offload tier (GiB for the whole instance: vLLM's kv_offloading_size, "the total buffer size
    summed across all TP ranks", vllm/config/cache.py). Raises ServesimError naming the sizes in use
    and the bound."""
    used = swap_space_gib * tp + kv_offloading_size_gib
    bound = HOST_MEMORY_FRACTION * host_memory_gib
    if used > bound:
        parts = ([f"swap_space_gib={swap_space_gib:g} GiB per GPU x tp={tp}"] if swap_space_gib else []) + (
            [f"kv_offloading_size_gib={kv_offloading_size_gib:g} GiB"] if kv_offloading_size_gib else [])
        raise ServesimError(
            f"{' + '.join(parts)} = {used:g} GiB of host memory is invalid; allowed: <= {HOST_MEMORY_FRACTION:.0%} of "
            f"host {host_name}'s {host_memory_gib:g} GiB = {bound:g} GiB (vLLM's bound on its swap space, applied to "
            "all pinned KV); use smaller sizes or a --host with more memory")
