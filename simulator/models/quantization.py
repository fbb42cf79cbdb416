"""Quantized checkpoints: what a config's `quantization_config` does to the weight bytes.

Owns reading quantization_config into bytes per parameter for each class of weights
("attention", "mlp", "experts", "lm_head", "embedding"), scales and zero points included, as each
format stores them:
- awq / gptq (and compressed-tensors int weights): bits/8 + (fp16 scale + bits-wide zero) per
  group of `group_size` inputs (group_size -1: one group per output column, negligible);
- fp8 / fbgemm_fp8 / compressed-tensors float8: 1 byte (per-channel or per-tensor scales are
  negligible);
- mxfp4 (gpt-oss): 4-bit values + one 8-bit shared scale per 32: 4.25 bits, on the MoE experts only
  (what transformers' Mxfp4 quantizer converts);
- modelopt (NVIDIA ModelOpt exports; in config.json, or in a separate hf_quant_config.json beside
  it, which catalog.py reads): FP8/INT8 1 byte, NVFP4 4 bits + an fp8 scale per 16 values,
  W4A16/W4A8 AWQ 4 bits + an fp16 scale per 128;
- bitsandbytes: 8-bit 1 byte (+ a fp32 scale per row, negligible); 4-bit 0.5 byte + one absmax per
  64 (fp32, or 8-bit with double quantization plus a fp32 per 256 blocks).
Linear layers are covered by default (not embeddings or lm_head), less `modules_to_not_convert`.
An unknown quant_method is refused with the supported list. Activations and the KV cache keep the
scenario's dtype (and kv_cache_dtype).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from simulator.errors import ServesimError

CLASSES = ("attention", "mlp", "experts", "lm_head", "embedding")
LINEAR = ("attention", "mlp", "experts")
METHODS = ("awq", "gptq", "fp8", "fbgemm_fp8", "compressed-tensors", "modelopt", "mxfp4", "bitsandbytes")


@dataclass(frozen=True, slots=True)
class Quantization:
    bytes_per_param: dict = field(default_factory=dict)
    description: str = ""
    notes: tuple[str, ...] = ()


def _int_bytes(bits: int, group: int) -> float:
    if group and group > 0:
        return bits / 8 + (2 + bits / 8) / group
    return bits / 8


ATTENTION_PARTS = {"self_attn", "attn", "attention", "self_attention", "q_proj", "k_proj", "v_proj", "o_proj",
                   "qkv_proj", "query_key_value", "dense"}


def _excluded(patterns: list) -> set[str]:
    """Weight classes a modules_to_not_convert list keeps at full width, matched on dotted module
    names ('model.layers.0.self_attn', 'lm_head', '*.mlp.experts'); norms are never quantized, so
    a pattern naming one ('post_attention_layernorm') excludes nothing."""
    out = set()
    for p in patterns or []:
        parts = [x for x in str(p).replace("*", "").split(".") if x]
        if not parts or "norm" in parts[-1]:
            continue
        if "lm_head" in parts:
            out.add("lm_head")
        if any("embed" in x for x in parts):
            out.add("embedding")
        if ATTENTION_PARTS & set(parts):
            out.add("attention")
        if "experts" in parts:
            out.add("experts")
        elif parts[-1] == "mlp":
            out |= {"mlp", "experts"}
    return out


def _compressed_tensors(qc: dict, origin: str) -> tuple[float, str]:
    groups = qc.get("config_groups") or {}
    weights = [g.get("weights") or {} for g in groups.values() if isinstance(g, dict)]
    if not weights:
        raise ServesimError(f"{origin}: compressed-tensors quantization_config has no config_groups weights")
    w = weights[0]
    bits, kind = int(w.get("num_bits", 8)), str(w.get("type", "int"))
    if kind == "float" and bits == 8:
        return 1.0, "compressed-tensors float8 weights"
    if kind == "int":
        group = int(w.get("group_size") or 0)
        return _int_bytes(bits, group), f"compressed-tensors int{bits} weights, group {group or 'per channel'}"
    raise ServesimError(f"{origin}: compressed-tensors weights of type {kind!r} and {bits} bits are not supported")


MODELOPT_ALGOS = {"FP8": 1.0, "FP8_PER_CHANNEL_PER_TOKEN": 1.0, "FP8_BLOCK_SCALES": 1.0, "INT8_SQ": 1.0,
                  "INT8_WEIGHT_ONLY": 1.0, "NVFP4": 0.5 + 1 / 16, "W4A16_AWQ": 0.5 + 2 / 128, "W4A8_AWQ": 0.5 + 2 / 128}


def _modelopt(qc: dict, origin: str) -> tuple[float, str, set]:
    """NVIDIA ModelOpt checkpoints (quant_algo; NVFP4: 4-bit values + an fp8 scale per 16)."""
    algo = str(qc.get("quant_algo") or "").upper()
    if algo not in MODELOPT_ALGOS:
        raise ServesimError(f"{origin}: ModelOpt quant_algo {qc.get('quant_algo')!r} is not supported; supported: "
                            f"{', '.join(MODELOPT_ALGOS)}")
    return MODELOPT_ALGOS[algo], f"modelopt {algo.lower()} weights", set(LINEAR)


def modelopt_config(hf_quant: dict) -> dict:
    """A ModelOpt export's separate hf_quant_config.json as a quantization_config."""
    q = hf_quant.get("quantization", hf_quant) if isinstance(hf_quant, dict) else {}
    return {"quant_method": "modelopt", "quant_algo": q.get("quant_algo"),
            "modules_to_not_convert": q.get("exclude_modules") or []}


def read_quantization(qc: dict | None, *, origin: str, moe: bool = True) -> Quantization:
    """Bytes per parameter by weight class (module docstring); `moe=False`: the model has no
    experts class to quantize."""
    if not qc:
        return Quantization()
    if not isinstance(qc, dict):
        raise ServesimError(f"{origin}: quantization_config is {type(qc).__name__}, not an object")
    if not qc.get("quant_method") and qc.get("quant_algo"):  # ModelOpt writes quant_algo (and a producer)
        qc = {**qc, "quant_method": "modelopt"}
    if not qc.get("quant_method"):
        raise ServesimError(f"{origin}: quantization_config has no quant_method; supported: {', '.join(METHODS)}")
    method = str(qc["quant_method"]).lower()
    covered = set(LINEAR)
    if method in ("awq", "gptq"):
        bits, group = int(qc.get("bits", qc.get("w_bit", 4))), int(qc.get("group_size", qc.get("q_group_size", 128)))
        per, what = _int_bytes(bits, group), f"{method} int{bits}, group {group}"
    elif method in ("fp8", "fbgemm_fp8"):
        per, what = 1.0, f"{method} weights"
    elif method == "compressed-tensors":
        per, what = _compressed_tensors(qc, origin)
    elif method == "modelopt":
        per, what, covered = _modelopt(qc, origin)
    elif method == "mxfp4":
        per, what, covered = 4.25 / 8, "mxfp4 experts (4 bits + an 8-bit scale per 32 values)", {"experts"}
    elif method == "bitsandbytes":
        if qc.get("load_in_4bit"):
            double = bool(qc.get("bnb_4bit_use_double_quant"))
            per = 0.5 + (1 / 64 + 4 / (64 * 256) if double else 4 / 64)
            what = f"bitsandbytes 4-bit {qc.get('bnb_4bit_quant_type', 'fp4')}" + (" (double quant)" if double else "")
        elif qc.get("load_in_8bit"):
            per, what = 1.0, "bitsandbytes int8"
        else:
            raise ServesimError(f"{origin}: bitsandbytes quantization_config sets neither load_in_4bit nor load_in_8bit")
    else:
        raise ServesimError(f"{origin}: quantization_config quant_method {qc.get('quant_method')!r} is not supported; "
                            f"supported: {', '.join(METHODS)}")
    covered -= _excluded(qc.get("modules_to_not_convert") or qc.get("ignore") or qc.get("exclude_modules") or [])
    if not moe:
        covered.discard("experts")
    note = (f"quantized checkpoint ({what}): {', '.join(sorted(covered))} weights at {per:.4g} bytes per parameter; "
            "activations and the KV cache at the scenario's dtype")
    return Quantization({c: per for c in covered}, what, (note,))
