"""KV-cache policies: how many tokens a sequence keeps (memory) and attends to (time).

Owns the policies of formulas.md "KV eviction" and read-only sparse attention:
- dense: every token kept and read (today's behaviour).
- h2o (arXiv 2306.14048): budget k = heavy + recent (default half/half); once the cache holds k
  tokens, one victim is evicted per step, so retained(t) = min(t, k). The prompt is compressed
  to the budget right after prefill (heavy hitters chosen from the prefill's attention).
- scissorhands (arXiv 2305.17118): budget B; when the cache reaches B, m tokens (default 0.4 B)
  are dropped at once, so the cache oscillates between B - m and B and compresses every m tokens.
  The history window w and the r protected recent tokens choose *which* tokens go; they change
  accuracy, not memory or time (r only caps m <= B - r).
- topk / block_topk: read-only sparsity: attention reads min(B, ctx) tokens, the whole cache stays
  resident. topk is the oracle bound used by Kinetics (no selection cost); block_topk adds the
  search over one representative key per `select_block` tokens (formulas.md, Kinetics).

Budgets are tokens (value >= 1) or a fraction (value < 1) of the sequence's full length,
prompt + output, fixed when the request is admitted: that is the H2O paper's "KV cache budget
20%" of the sequence, and fixing it at admission keeps a sequence's reservation known in advance
(a real engine would use the request's max_tokens). Accuracy is not modelled.

Everything is piecewise linear in the decode step: a policy answers phase(retained, budget) with
the next stretch of steps over which read and held counts each grow by 0 or 1 per step, and what
is retained after it. DecodeSet and StaticScheduler advance phases in O(1) per step; this module
owns no sequence state and knows nothing of blocks or seconds (the eviction-overhead work it
reports, KvWork, is turned into ops by cost/ops.py eviction_ops and into seconds by the cost model).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.cost import KvWork
from simulator.engine import INF, KvPolicy, Phase
from simulator.models import ModelSpec, kv_heads_per_rank

SCORE_BYTES = 4  # accumulated attention score: fp32 per token per KV head per layer
COMPACTIONS = ("inplace", "gather")


def resolve_tokens(value: float, length: int) -> int:
    """A budget: `value` tokens when >= 1, else ceil(value * length), at least 1."""
    return int(value) if value >= 1 else max(1, math.ceil(value * length))


def _grow_then_hold(retained: int, budget: int) -> Phase:
    """Grow one token per step up to `budget`, then hold `budget` (one slot reused per step)."""
    if retained < budget:
        return Phase(budget - retained, retained + 1, 1, retained + 1, 1, budget)
    return Phase(INF, budget, 0, budget, 0, budget)


def _causal_pairs(chunks) -> float:
    return sum(n * ctx + n * (n + 1) / 2 for n, ctx in chunks)


class _NoBookkeeping:
    """Policies that keep no per-token metadata and do no selection work."""

    __slots__ = ()

    def metadata_bytes_per_token(self, model: ModelSpec, beta: float, tp: int) -> float:
        return 0.0

    def decode_work(self, *sums) -> KvWork | None:
        return None

    def prefill_work(self, chunks, finishing) -> KvWork | None:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class DensePolicy(_NoBookkeeping):
    name: str = "dense"
    note: str = ""  # why a model's own policy (sliding windows) was not applied

    def seq_budget(self, prompt: int, output: int):
        return None

    def after_prefill(self, tokens: int, budget) -> int:
        return tokens

    def phase(self, retained: int, budget) -> Phase:
        return Phase(INF, retained + 1, 1, retained + 1, 1, INF)

    def decode_peak_tokens(self, prompt: int, output: int) -> int:
        return prompt + output

    def peak_tokens(self, prompt: int, output: int) -> int:
        return prompt + output

    def describe(self) -> dict:
        return {"name": self.name, "note": self.note} if self.note else {"name": self.name}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Budgeted:
    """Shared by the budgeted policies: budget resolution, peaks, score metadata."""

    budget: float  # tokens (>= 1) or fraction (< 1) of prompt + output
    compaction: str = "inplace"

    def __post_init__(self) -> None:
        if not self.budget > 0:
            raise ValueError(f"kv_budget must be > 0 (tokens, or a fraction < 1), got {self.budget!r}")
        if self.budget >= 1 and self.budget != int(self.budget):
            raise ValueError(f"kv_budget >= 1 counts tokens and must be an integer, got {self.budget!r}")
        if self.compaction not in COMPACTIONS:
            raise ValueError(f"kv_compaction must be one of {COMPACTIONS}, got {self.compaction!r}")

    def seq_budget(self, prompt: int, output: int):
        return resolve_tokens(self.budget, prompt + output)

    def _cap(self, budget) -> int:
        return budget

    def decode_peak_tokens(self, prompt: int, output: int) -> int:
        return min(prompt + output, self._cap(self.seq_budget(prompt, output)))

    def peak_tokens(self, prompt: int, output: int) -> int:
        """Most tokens a sequence holds in a paged pool: its whole prompt during prefill, then
        the decode peak."""
        return max(prompt, self.decode_peak_tokens(prompt, output))

    def metadata_bytes_per_token(self, model: ModelSpec, beta: float, tp: int) -> float:
        return SCORE_BYTES * kv_heads_per_rank(model, tp) * model.num_layers

    def prefill_work(self, chunks, finishing) -> KvWork | None:
        """Scores come from the prefill's attention (every chunk); a finishing prefill scans its
        scores and compacts the kept tokens (always gathered, so the tail blocks can be freed).
        `finishing`: (prompt tokens, kept tokens) per sequence whose prefill ends this step."""
        pairs = _causal_pairs(chunks)
        keys = sum(n + ctx for n, ctx in chunks)
        scan = sum(t for t, kept in finishing if kept < t)
        moved = sum(kept for t, kept in finishing if kept < t)
        return KvWork(pairs, keys, scan, moved, 0.0)

    def _describe(self, **extra) -> dict:
        kind = "tokens" if self.budget >= 1 else "fraction of prompt+output"
        return {"name": self.name, "budget": self.budget, "budget_kind": kind, "compaction": self.compaction,
                **extra}


@dataclass(frozen=True, slots=True, kw_only=True)
class H2OPolicy(_Budgeted):
    name: str = "h2o"
    heavy_fraction: float = 0.5  # share of the budget for heavy hitters (rest: recent tokens)

    def __post_init__(self) -> None:
        _Budgeted.__post_init__(self)
        if not 0 <= self.heavy_fraction <= 1:
            raise ValueError(f"kv_heavy_fraction must be in [0, 1], got {self.heavy_fraction!r}")

    def after_prefill(self, tokens: int, budget) -> int:
        return min(tokens, budget)

    def phase(self, retained: int, budget) -> Phase:
        # H2O, Alg. 1: retained(t) = min(t, k); past k one victim per step, its slot overwritten.
        return _grow_then_hold(retained, budget)

    def decode_work(self, read_sum, held_sum, steady_held_sum, compress_held_sum, compress_kept_sum):
        moved = steady_held_sum if self.compaction == "gather" else 0
        return KvWork(read_sum, read_sum, steady_held_sum, moved, 0.0)

    def describe(self) -> dict:
        return self._describe(heavy_fraction=self.heavy_fraction)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScissorhandsPolicy(_Budgeted):
    name: str = "scissorhands"
    drop: float = 0.4  # m: fraction of B (< 1) or tokens
    history_window: int = 400  # w
    protect_recent: int = 10  # r

    def __post_init__(self) -> None:
        _Budgeted.__post_init__(self)
        if not self.drop > 0 or (self.drop >= 1 and self.drop != int(self.drop)):
            raise ValueError(f"kv_drop must be a fraction in (0, 1) of the budget or an integer >= 1, "
                             f"got {self.drop!r}")
        if self.history_window < 1 or self.protect_recent < 0:
            raise ValueError(f"kv_history_window must be >= 1 and kv_protect_recent >= 0, got "
                             f"{self.history_window!r}, {self.protect_recent!r}")

    def seq_budget(self, prompt: int, output: int):
        b = max(2, resolve_tokens(self.budget, prompt + output))
        m = int(self.drop) if self.drop >= 1 else max(1, round(self.drop * b))
        return b, max(1, min(m, b - min(self.protect_recent, b - 1)))  # never the r newest

    def _cap(self, budget) -> int:
        return budget[0]

    def after_prefill(self, tokens: int, budget) -> int:
        b, m = budget
        return tokens if tokens < b else b - m

    def phase(self, retained: int, budget) -> Phase:
        # Scissorhands, Alg. 2: grow to B, then drop m at once -> B - m (retained < B always here).
        b, m = budget
        r = min(retained, b - 1)
        return Phase(b - r, r + 1, 1, r + 1, 1, b - m)

    def decode_work(self, read_sum, held_sum, steady_held_sum, compress_held_sum, compress_kept_sum):
        moved = compress_kept_sum if self.compaction == "gather" else 0
        return KvWork(read_sum, read_sum, compress_held_sum, moved, 0.0)

    def describe(self) -> dict:
        return self._describe(drop=self.drop, history_window=self.history_window,
                              protect_recent=self.protect_recent)


@dataclass(frozen=True, slots=True, kw_only=True)
class TopKPolicy(_Budgeted):
    """Read-only sparsity: each step attends min(B, ctx) tokens; nothing is evicted."""

    name: str = "topk"
    select_block: int = 1  # tokens per selectable unit (block_topk); reads round B up to whole units

    def seq_budget(self, prompt: int, output: int):
        b = resolve_tokens(self.budget, prompt + output)
        return -(-b // self.select_block) * self.select_block

    def decode_peak_tokens(self, prompt: int, output: int) -> int:
        return prompt + output

    def after_prefill(self, tokens: int, budget) -> int:
        return tokens

    def phase(self, retained: int, budget) -> Phase:
        if retained + 1 < budget:
            steps = budget - retained - 1
            return Phase(steps, retained + 1, 1, retained + 1, 1, retained + steps)
        return Phase(INF, budget, 0, retained + 1, 1, INF)

    def metadata_bytes_per_token(self, model: ModelSpec, beta: float, tp: int) -> float:
        return 0.0

    def prefill_work(self, chunks, finishing) -> KvWork | None:
        return None

    def decode_work(self, read_sum, held_sum, steady_held_sum, compress_held_sum, compress_kept_sum):
        return None

    def describe(self) -> dict:
        return self._describe(oracle_selection=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockTopKPolicy(TopKPolicy):
    """Block top-k: one representative key per select_block tokens is scored every step
    (formulas.md: FLOPs 2*H*d*nL*ctx/block, bytes beta*Hkv*d*nL*ctx/block per sequence)."""

    name: str = "block_topk"
    select_block: int = 16

    def metadata_bytes_per_token(self, model: ModelSpec, beta: float, tp: int) -> float:
        d = model.attention_kernel_dims(tp)["head_dim"]
        return beta * kv_heads_per_rank(model, tp) * d * model.num_layers / self.select_block

    def decode_work(self, read_sum, held_sum, steady_held_sum, compress_held_sum, compress_kept_sum):
        return KvWork(search_keys=held_sum / self.select_block)

    def describe(self) -> dict:
        return self._describe(select_block=self.select_block)


@dataclass(frozen=True, slots=True, kw_only=True)
class SlidingWindowPolicy(_NoBookkeeping):
    """A model whose layers (some or all) attend through a sliding window of `window` tokens
    (Mistral-7B v0.1, Phi-3, Gemma-2/3, gpt-oss): vLLM's hybrid KV manager frees a window layer's
    blocks once they leave the window. In full-layer token units, a sequence of n tokens holds
    held(n) = n up to the window, then window + ceil(full_fraction x (n - window)); the policy
    budgets each sequence held(prompt + output), reaches it as a dense cache would and keeps it,
    and reads what it holds: the peak (capacity, admission) is exact, the hold and reads in
    between are an upper bound (at most the dense ones). Prefill attention is priced unwindowed
    (an upper bound for prompts longer than the window). No bookkeeping work."""

    window: int
    full_fraction: float  # layers with full attention / all layers
    name: str = "sliding_window"

    def held(self, tokens: int) -> int:
        if tokens <= self.window:
            return tokens
        return self.window + math.ceil(self.full_fraction * (tokens - self.window) - 1e-9)

    def seq_budget(self, prompt: int, output: int):
        return max(1, self.held(prompt + output))

    def after_prefill(self, tokens: int, budget) -> int:
        return min(tokens, budget)

    def phase(self, retained: int, budget) -> Phase:
        return _grow_then_hold(retained, budget)

    def decode_peak_tokens(self, prompt: int, output: int) -> int:
        return self.seq_budget(prompt, output)

    def peak_tokens(self, prompt: int, output: int) -> int:
        return self.seq_budget(prompt, output)

    def describe(self) -> dict:
        return {"name": self.name, "window": self.window, "full_fraction": self.full_fraction,
                "note": "the model's sliding-window layers (exact peak KV, upper-bound hold and reads in between)"}


def window_policy(model: ModelSpec) -> SlidingWindowPolicy | None:
    """The sliding-window policy a model's config implies, or None (no window layers)."""
    windows = [w for w in model.windows if w]
    if not windows:
        return None
    return SlidingWindowPolicy(window=max(windows), full_fraction=(model.num_layers - len(windows)) / model.num_layers)


KV_POLICIES = {"dense": DensePolicy, "h2o": H2OPolicy, "scissorhands": ScissorhandsPolicy,
               "topk": TopKPolicy, "block_topk": BlockTopKPolicy}


def build_kv_policy(s, model: ModelSpec | None = None) -> KvPolicy:
    """The policy a Scenario names, with its parameters; a model with sliding-window layers gets
    their policy (another kv_policy on such a model is refused: they are not combined)."""
    cls = KV_POLICIES[s.kv_policy]
    window = window_policy(model) if model is not None else None
    if window is not None and (s.samples_per_prompt > 1 or s.draft_model):
        return DensePolicy(note=f"{model.name}'s sliding windows ({window.window} tokens) are not applied with "
                                "Best-of-N sharing or speculative decoding: its KV is priced dense (an upper bound)")
    if window is not None:
        if cls is not DensePolicy:
            raise ValueError(f"kv_policy={s.kv_policy!r} on {model.name}, whose layers already attend through a "
                             f"sliding window of {window.window} tokens: the two are not combined; use kv_policy=dense")
        return window
    if cls is DensePolicy:
        return DensePolicy()
    common = {"budget": s.kv_budget, "compaction": s.kv_compaction}
    if cls is H2OPolicy:
        return H2OPolicy(heavy_fraction=s.kv_heavy_fraction, **common)
    if cls is ScissorhandsPolicy:
        return ScissorhandsPolicy(drop=s.kv_drop, history_window=s.kv_history_window,
                                  protect_recent=s.kv_protect_recent, **common)
    if cls is BlockTopKPolicy:
        return BlockTopKPolicy(select_block=s.kv_select_block, **common)
    return TopKPolicy(**common)
