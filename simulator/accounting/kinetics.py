"""Kinetics cost: effective FLOPs = compute + intensity x memory traffic, per prompt (closed form)
and per simulated run (accumulated from the engine steps that actually ran).

Source: Kinetics, "Rethinking Test-Time Scaling Laws" (arXiv 2506.05333), section 3, and
formulas.md "Kinetics cost":  eFLOPs = C_comp + I * C_mem,  I = F_peak / BW (paper: 562.5).

Counting convention (both sides use it, so a matching run equals the calculator exactly):
the i-th generated token (i = 0 .. L-1) costs one forward pass of the token before it, which
attends L_in + i tokens (the KV cache plus itself). For i = 0 that pass is the prompt's last
row inside the prefill; for i >= 1 it is an engine decode step whose decode_context_sum entry
is L_in + i (cache L_in + i - 1 plus the new token). Dense attended total per sample:
  S_dense = sum_{i<L} (L_in + i) = L*L_in + L(L-1)/2            (counting="exact", default)
The paper prints the continuous form (2*L_in + L)*L/2 = L*L_in + L^2/2 (counting="paper"),
L/2 more per sample. Sparse top-k uses the exact sum_{i<L} min(B, L_in + i) in both countings.
P (params_per_token) by convention: "exact" (default) = ModelSpec.active_params_per_token,
the parameters multiplied per token (layers + lm_head, no embedding lookup, no norms);
"kinetics" = every parameter, embeddings included and a tied lm_head counted again, at three
significant figures, as the Kinetics authors' scripts list them (8.19e9 for Qwen3-8B, 0.752e9
for Qwen3-0.6B): with
it, Qwen3-8B, prompt 128, 32768 tokens, N=8, top-k B=1024 gives their 26448.81e12 eFLOPs.
An explicit params_per_token overrides both.

Owns the calculator and the run account. Does not turn anything into engine time (cost/).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction

import numpy as np

from simulator.engine import StepTotals
from simulator.models import ModelSpec, dtype_bytes

PAPER_INTENSITY = 562.5  # Kinetics sec. 3: B200, 4.5 PFLOP/s over 8 TB/s
PAPER_PEAK_FLOPS = 4.5e15
ATTENTION_MODES = ("dense", "topk", "block_topk")
COUNTINGS = ("exact", "paper")
PARAMS_CONVENTIONS = ("exact", "kinetics")


@dataclass(frozen=True, slots=True, kw_only=True)
class KineticsInputs:
    """One prompt of `prompt_tokens`, `num_samples` samples of `output_tokens` each.

    include_prefill adds, once per prompt, the prompt rows not already counted as generated
    token 0: 2*P*(L_in-1) FLOPs + causal attention 4*H*d*nL*(L_in-1)*L_in/2 FLOPs, and the
    prompt's KV write kv_bytes_per_token*L_in bytes (prefill KV reads stay on chip: not counted).
    include_weight_traffic adds the matmul weights P*beta bytes read once per forward pass,
    shared by the N samples: P*beta*L bytes per prompt (pass 0 is the prefill).
    """

    model: ModelSpec
    prompt_tokens: int
    output_tokens: int
    num_samples: int = 1
    intensity: float = PAPER_INTENSITY
    peak_flops: float | None = None  # FLOP/s of the device for seconds_on_device
    attention: str = "dense"
    budget: int | None = None  # attended tokens per query (topk, block_topk)
    block_size: int | None = None  # tokens per block (block_topk search)
    counting: str = "exact"
    dtype: str = "bf16"  # KV (and weight) element type; the paper's figures are bf16
    params_per_token: int | None = None  # P; None: by params_convention
    params_convention: str = "exact"  # "exact": active matmul parameters; "kinetics": model-card total
    include_prefill: bool = False
    include_weight_traffic: bool = False

    def __post_init__(self) -> None:
        for name in ("prompt_tokens", "output_tokens", "num_samples"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}={v!r} is invalid; allowed: an integer >= 1")
        if not (math.isfinite(self.intensity) and self.intensity > 0):
            raise ValueError(f"intensity={self.intensity!r} is invalid; allowed: FLOPs per byte > 0")
        if self.peak_flops is not None and not self.peak_flops > 0:
            raise ValueError(f"peak_flops={self.peak_flops!r} is invalid; allowed: FLOP/s > 0")
        if self.attention not in ATTENTION_MODES:
            raise ValueError(f"attention={self.attention!r} is invalid; allowed: {', '.join(ATTENTION_MODES)}")
        if self.counting not in COUNTINGS:
            raise ValueError(f"counting={self.counting!r} is invalid; allowed: {', '.join(COUNTINGS)}")
        if self.params_convention not in PARAMS_CONVENTIONS:
            raise ValueError(f"params_convention={self.params_convention!r} is invalid; "
                             f"allowed: {', '.join(PARAMS_CONVENTIONS)}")
        sparse = self.attention != "dense"
        _optional_count("budget", self.budget, needed=sparse, why="with attention topk or block_topk")
        _optional_count("block_size", self.block_size, needed=self.attention == "block_topk",
                        why="with attention block_topk")
        _optional_count("params_per_token", self.params_per_token, needed=None, why="")
        dtype_bytes(self.dtype)


def _optional_count(name: str, value, *, needed: bool | None, why: str) -> None:
    if value is None:
        if needed:
            raise ValueError(f"{name} is required {why}")
        return
    if needed is False:
        raise ValueError(f"{name}={value!r} is only allowed {why}")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r} is invalid; allowed: an integer >= 1")


@dataclass(frozen=True, slots=True)
class KineticsCost:
    """Per prompt. eflops_compute = C_comp, eflops_memory = I * C_mem, total = their sum."""

    c_comp_flops: float
    c_mem_bytes: float
    eflops_compute: float
    eflops_memory: float
    eflops_total: float
    intensity: float
    seconds_on_device: float | None  # eflops_total / peak_flops
    terms: dict = field(default_factory=dict)  # each added part, FLOPs or bytes

    def as_dict(self) -> dict:
        return asdict(self)


def dense_attended(prompt_tokens: int, output_tokens: int, counting: str = "exact") -> Fraction:
    """Tokens attended by one sample over its generation (module docstring for the convention)."""
    lin, n = prompt_tokens, output_tokens
    if counting == "paper":
        return Fraction(n * lin) + Fraction(n * n, 2)
    return Fraction(n * lin + n * (n - 1) // 2)


def topk_attended(prompt_tokens: int, output_tokens: int, budget: int) -> int:
    """sum_{i<L} min(B, L_in + i), exactly (formulas.md, sparse attention)."""
    below = min(max(budget - prompt_tokens + 1, 0), output_tokens)  # steps with L_in + i <= B
    return below * prompt_tokens + below * (below - 1) // 2 + (output_tokens - below) * budget


def params_per_token(model: ModelSpec, convention: str = "exact", explicit: int | None = None) -> int:
    """P under a convention (module docstring); `explicit` wins."""
    if explicit:
        return explicit
    if convention == "kinetics":  # tied embeddings counted twice, as the authors' scripts do
        total = model.total_params + (model.lm_head_params if model.tie_word_embeddings else 0)
        return int(float(f"{total:.3g}"))
    return model.active_params_per_token


def _widths(model: ModelSpec) -> tuple[Fraction, Fraction]:
    """(H*d*nL, Hkv*d*nL): a quarter of the attention FLOPs per query-key pair and half the KV
    elements per token, all layers (ModelSpec.attention_geometry: exact for GQA, MLA's latent)."""
    flops, kv_elems, _ = model.attention_geometry(1)
    return Fraction(round(flops * model.num_layers), 4), Fraction(round(kv_elems * model.num_layers), 2)


def kinetics_cost(x: KineticsInputs) -> KineticsCost:
    """The closed form per prompt (formulas.md "Kinetics cost"); exact arithmetic inside."""
    m = x.model
    p = params_per_token(m, x.params_convention, x.params_per_token)
    beta = Fraction(dtype_bytes(x.dtype))
    q_width, kv_width = _widths(m)
    kv_token_bytes = 2 * beta * kv_width  # K and V of one token, all layers
    n, lin, out = x.num_samples, x.prompt_tokens, x.output_tokens
    dense = dense_attended(lin, out, x.counting)
    terms = {"linear_flops": Fraction(n * 2 * p * out)}
    if x.attention == "dense":
        attended = n * dense
        # the prompt's L_in entries are read once per step for all N samples (shared prefix)
        terms["attention_flops"] = 4 * q_width * attended
        terms["kv_read_bytes"] = kv_token_bytes * (out * lin + n * (dense - out * lin))
    else:
        attended = Fraction(n * topk_attended(lin, out, x.budget))  # each sample picks its own: no sharing
        terms["attention_flops"] = 4 * q_width * attended
        terms["kv_read_bytes"] = kv_token_bytes * attended
    if x.attention == "block_topk":
        # one key per block scored per query: 2*H*d*nL*ctx/bs FLOPs, beta*Hkv*d*nL*ctx/bs bytes
        terms["search_flops"] = n * 2 * q_width * dense / x.block_size
        terms["search_bytes"] = n * beta * kv_width * dense / x.block_size
    if x.include_prefill:
        terms["prefill_flops"] = Fraction(2 * p * (lin - 1) + 4 * q_width * (lin - 1) * lin // 2)
        terms["prefill_kv_write_bytes"] = kv_token_bytes * lin
    if x.include_weight_traffic:
        terms["weight_bytes"] = p * beta * out
    c_comp = sum(v for k, v in terms.items() if k.endswith("_flops"))
    c_mem = sum(v for k, v in terms.items() if k.endswith("_bytes"))
    return _result(c_comp, c_mem, x.intensity, x.peak_flops, terms)


def _result(c_comp: Fraction, c_mem: Fraction, intensity: float, peak_flops: float | None,
            terms: dict) -> KineticsCost:
    i = Fraction(intensity)
    total = c_comp + i * c_mem
    return KineticsCost(
        c_comp_flops=float(c_comp), c_mem_bytes=float(c_mem),
        eflops_compute=float(c_comp), eflops_memory=float(i * c_mem), eflops_total=float(total),
        intensity=float(intensity),
        seconds_on_device=float(total / Fraction(peak_flops)) if peak_flops else None,
        terms={k: float(v) for k, v in terms.items()},
    )


# ---- the per-run account -------------------------------------------------------------------------
def _totals(steps) -> StepTotals:
    return steps if isinstance(steps, StepTotals) else StepTotals.of(steps)


def _col_sum(steps: StepTotals, name: str) -> int:
    return int(steps.sum(name))


def run_account(steps: StepTotals | dict[str, np.ndarray], model: ModelSpec, *, dtype: str = "bf16",
                intensity: float = PAPER_INTENSITY, peak_flops: float | None = None,
                params_per_token: int | None = None) -> KineticsCost:
    """The paper's counting over the steps a run executed (RunRecorder.totals, or a step table).

    Forward passes that produced a token = sum(num_logits) (decodes + prefills that finished);
    attended tokens = sum(decode_context_sum) + sum(num_prefill_tokens): a finishing prefill's
    last row attends its whole prefilled context (prompt, or prompt + generated tokens after a
    recompute). Exact unless a prefill was preempted part-way (its chunks are then counted too).
    Static batching's padding is counted: it is work the batch actually ran. Best-of-N samples
    sharing a prompt: the shared prefix is read once per step (decode_kv_read_sum), as the paper
    counts, while the prompt's last row is one pass for the whole group (the paper counts N)."""
    steps = _totals(steps)
    p = params_per_token or model.active_params_per_token
    beta = Fraction(dtype_bytes(dtype))
    q_width, kv_width = _widths(model)
    passes = _col_sum(steps, "num_logits")
    attended = _col_sum(steps, "decode_context_sum") + _col_sum(steps, "num_prefill_tokens")
    read_col = "decode_kv_read_sum" if steps.has("decode_kv_read_sum") else "decode_context_sum"
    read = _col_sum(steps, read_col) + _col_sum(steps, "num_prefill_tokens")
    terms = {"linear_flops": Fraction(2 * p * passes), "attention_flops": Fraction(4 * q_width * attended),
             "kv_read_bytes": 2 * beta * kv_width * read}
    return _result(terms["linear_flops"] + terms["attention_flops"], terms["kv_read_bytes"],
                   intensity, peak_flops, terms)


def kinetics_section(result, metrics: dict) -> dict:
    """build_summary's "kinetics" section: totals, per output token and per request, at the
    paper's intensity and at the run device's own (whose eFLOPs / peak = ideal roofline seconds);
    "all_ops" weighs every op the cost model counted (prefill, weights, activations, logits)."""
    steps = result.recorder.totals
    dtype, device, tp = result.scenario.dtype, result.device, result.scenario.tp
    peak = device.peak_flops(dtype)
    tokens, requests = metrics.get("total_output_tokens", 0), metrics.get("completed", 0)
    out = {"counting": "Kinetics (arXiv 2506.05333): decode passes only, no weight traffic; generated "
                       "token i attends L_in + i tokens (token 0 = the prefill's last row)",
           "params_per_token": result.model.active_params_per_token,
           "num_forward_passes": _col_sum(steps, "num_logits")}
    for label, intensity in (("paper_intensity", PAPER_INTENSITY),
                             ("device_intensity", peak / device.memory_bandwidth_bytes_per_s)):
        peak_flops = peak if label == "device_intensity" else PAPER_PEAK_FLOPS
        cost = run_account(steps, result.model, dtype=dtype, intensity=intensity, peak_flops=peak_flops)
        section = {k: v for k, v in cost.as_dict().items() if k != "terms"}
        section["peak_flops"] = peak_flops  # seconds_on_device = eflops_total / this
        section.update(_per(cost.eflops_total, cost.eflops_compute, cost.eflops_memory, tokens, requests))
        out[label] = section
    flops, nbytes = _col_sum_f(steps, "flops") * tp, _col_sum_f(steps, "bytes") * tp
    all_ops = {"flops": flops, "bytes": nbytes, "intensity": PAPER_INTENSITY,
               "eflops_total": flops + PAPER_INTENSITY * nbytes}
    all_ops.update(_per(all_ops["eflops_total"], flops, PAPER_INTENSITY * nbytes, tokens, requests))
    out["all_ops"] = all_ops
    return out


def _col_sum_f(steps: StepTotals, name: str) -> float:
    return float(steps.sum(name))


def _per(total: float, compute: float, memory: float, tokens: int, requests: int) -> dict:
    nan = float("nan")
    return {
        "eflops_per_output_token": total / tokens if tokens else nan,
        "eflops_compute_per_output_token": compute / tokens if tokens else nan,
        "eflops_memory_per_output_token": memory / tokens if tokens else nan,
        "eflops_per_request": total / requests if requests else nan,
        "memory_share": memory / total if total else nan,
    }
