"""Speculative decoding as a component: its composition from a Scenario.

Owns Speculation (draft model and device, the memory it takes from the target, the
SpecCostModel, one SpecDecodeSet + Speculator per replica), the acceptance model a scenario
names, the run's "speculative" summary section and the speedup over a baseline run. The loop is
unchanged: a speculative iteration is one engine step (plan -> cost -> timeout -> commit).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from hardware import load_device
from simulator.cost import BatchShape
from simulator.errors import ServesimError
from simulator.models import load_model
from simulator.speculative.acceptance import (
    IidAcceptance,
    PositionalAcceptance,
    load_histogram,
    parse_rates,
)
from simulator.speculative.cost import SpecCostModel
from simulator.speculative.decode_set import SpecBatchShape, SpecDecodeSet
from simulator.speculative.speculator import SpecStats, Speculator

GAMMA_POLICIES = ("fixed", "adaptive")
ADVANCE_MODES = ("ragged", "min")
MAX_SPECULATIVE_TOKENS = 64  # vLLM proposes a handful; beyond this the per-step draft loop only burns time
SEED_TAG = 0x5EC  # acceptance draws use Generator([seed, SEED_TAG, replica]), apart from the workload's


DEFAULT_ACCEPTANCE_RATE = 0.8  # i.i.d. alpha when the scenario names no acceptance model
REFERENCE_CONTEXT = 1024  # tokens of KV for the batch-1 draft/target cost ratio in the summary


def acceptance_from_scenario(s):
    """The one acceptance model the scenario names (scenario.py rejects naming two): a histogram
    file, per-position rates, or i.i.d. acceptance_rate (DEFAULT_ACCEPTANCE_RATE when unset)."""
    if s.acceptance_histogram:
        return load_histogram(s.acceptance_histogram)
    if s.acceptance_position_rates:
        return PositionalAcceptance(parse_rates(s.acceptance_position_rates))
    return IidAcceptance(DEFAULT_ACCEPTANCE_RATE if s.acceptance_rate is None else s.acceptance_rate)


class Speculation:
    """A speculative run's components, built once from the scenario (run.py composes them).

    The draft shares the target's GPUs (tensor parallel like the target, as vLLM's default) when
    draft_hardware is None: its weights and its KV (same block tables, so per-token bytes add)
    come out of the target's KV budget. With draft_hardware it runs on one GPU of that kind; the
    target may then hold no more tokens than the draft's KV cache there can."""

    def __init__(self, s, model, device, build_cost_model):
        if s.scheduler == "static":
            raise ServesimError("speculative decoding (draft_model) needs scheduler vllm or sarathi, not static")
        if s.num_speculative_tokens > MAX_SPECULATIVE_TOKENS:
            raise ServesimError(f"num_speculative_tokens={s.num_speculative_tokens} is invalid; allowed: an integer "
                                f"in [1, {MAX_SPECULATIVE_TOKENS}] (draft tokens proposed per step)")
        self.scenario = s
        self.draft = load_model(s.draft_model, allow_unknown_architecture=s.allow_unknown_architecture)
        if self.draft.vocab_size != model.vocab_size:
            raise ServesimError(
                f"draft_model {self.draft.name} has vocab_size {self.draft.vocab_size} but the target "
                f"{model.name} has {model.vocab_size}; a draft must share the target's tokenizer")
        self.draft_device = load_device(s.draft_hardware) if s.draft_hardware else None
        self.draft_tp = 1 if self.draft_device else s.tp
        if self.draft.num_heads % self.draft_tp:
            raise ServesimError(f"tp={self.draft_tp} does not divide num_attention_heads={self.draft.num_heads} "
                                f"of draft_model {self.draft.name}; put the draft on its own device (draft_hardware)")
        self.acceptance = acceptance_from_scenario(s)
        self.stats = SpecStats(self.acceptance, s.num_speculative_tokens, s.spec_advance)
        draft_cost = build_cost_model(replace(s, tp=self.draft_tp), self.draft, self.draft_device or device)
        self.cost: SpecCostModel | None = None
        self._draft_cost = draft_cost
        self._draft_memory = None

    def draft_kv_bytes_per_token(self) -> int:
        """The draft's K and V per token on one of its ranks (formulas.md: D = 2*beta*Hkv*d*nL)."""
        return self.draft.kv_bytes_per_token(self.scenario.dtype, self.draft_tp)

    def memory_extras(self) -> dict:
        """plan_memory keyword arguments: what the draft takes from the target's GPU."""
        if self.draft_device is not None:
            return {}
        return {"extra_weight_bytes": int(self.draft.weight_bytes(self.scenario.dtype) / self.draft_tp),
                "extra_kv_bytes_per_token": self.draft_kv_bytes_per_token()}

    def fit_memory(self, memory, plan_memory, limits):
        """Cap the target's blocks at the draft device's KV capacity (draft on its own device)."""
        if self.draft_device is None:
            return memory
        s = self.scenario
        self._draft_memory = plan_memory(self.draft, self.draft_device, dtype=s.dtype, tp=1, block_size=s.block_size,
                                         gpu_memory_utilization=s.gpu_memory_utilization,
                                         max_num_batched_tokens=limits.max_num_batched_tokens,
                                         max_num_seqs=s.max_num_seqs)
        return replace(memory, num_gpu_blocks=min(memory.num_gpu_blocks, self._draft_memory.num_gpu_blocks))

    def cost_model(self, target) -> SpecCostModel:
        self.cost = SpecCostModel(target, self._draft_cost, realign_overhead=self.scenario.spec_realign_overhead,
                                  stats=self.stats)
        return self.cost

    def decode_set(self, replica: int, block_size: int) -> SpecDecodeSet:
        s = self.scenario
        spec = Speculator(gamma_max=s.num_speculative_tokens, policy=s.spec_gamma_policy, advance=s.spec_advance,
                          acceptance=self.acceptance, rng=np.random.default_rng([s.seed, SEED_TAG, replica]),
                          stats=self.stats, cost=self.cost)
        return SpecDecodeSet(block_size, spec)

    def summary(self) -> dict:
        s = self.scenario
        draft = {"model": self.draft.name, "hardware": s.draft_hardware or "shared with target", "tp": self.draft_tp,
                 "weight_bytes": int(self.draft.weight_bytes(s.dtype) / self.draft_tp),
                 "kv_bytes_per_token": self.draft_kv_bytes_per_token()}
        if self._draft_memory is not None:
            draft["device_kv_capacity_tokens"] = self._draft_memory.kv_capacity_tokens
        return {"draft": draft, "num_speculative_tokens": s.num_speculative_tokens,
                "gamma_policy": s.spec_gamma_policy, "advance": s.spec_advance,
                "realign_overhead": s.spec_realign_overhead, "acceptance": self.acceptance.describe(),
                **self.stats.as_dict(), **({"batch1": self.batch1_break_even()} if self.cost else {})}

    def batch1_break_even(self) -> dict:
        """Does a draft pay at all? One sequence with REFERENCE_CONTEXT tokens of KV, kernel time
        only (no serving-engine overhead): Leviathan et al.'s cost coefficient c = draft decode
        step / target decode step (arXiv 2211.17192, sec. 3.4), and for each gamma the expected
        speedup E(gamma) x T_target / T_iteration(gamma), where T_iteration is the draft's gamma
        steps plus the target's verify pass over gamma + 1 tokens as this run charges them."""
        ctx = REFERENCE_CONTEXT + 1  # BatchShape's decode context counts the last emitted token
        target_s = self.cost.target.step_cost(BatchShape((), 1, ctx, 1)).time_s
        draft_s = self.cost.draft.step_cost(BatchShape((), 1, ctx, 1)).time_s
        speedup = {g: self.stats.expected(g, 1) * target_s / self.cost.iteration_s(SpecBatchShape((), 1, ctx, g + 1, g))
                   for g in range(1, self.scenario.num_speculative_tokens + 1)}
        best = max(speedup, key=speedup.get)
        return {"context_tokens": REFERENCE_CONTEXT, "target_step_ms": target_s * 1e3, "draft_step_ms": draft_s * 1e3,
                "cost_coefficient_c": draft_s / target_s, "best_gamma": best,
                "best_expected_speedup": speedup[best]}


def baseline_comparison(spec_metrics: dict, base_metrics: dict) -> dict:
    """Speedup of a speculative run over the same scenario without speculation."""
    def ratio(a, b):
        return a / b if a is not None and b not in (None, 0) and a == a and b == b else float("nan")

    keys = ("duration", "output_throughput", "mean_tpot_ms", "median_tpot_ms", "mean_ttft_ms", "mean_e2el_ms",
            "mean_itl_ms", "mean_decode_batch_size")
    return {
        "baseline": {k: base_metrics.get(k) for k in keys},
        "speedup_output_throughput": ratio(spec_metrics.get("output_throughput"), base_metrics.get("output_throughput")),
        "speedup_mean_tpot": ratio(base_metrics.get("mean_tpot_ms"), spec_metrics.get("mean_tpot_ms")),
        "speedup_mean_e2el": ratio(base_metrics.get("mean_e2el_ms"), spec_metrics.get("mean_e2el_ms")),
    }
