"""KV-cache policies by hand (issue 19: oracles for kv/policies.py's mutation survivors).

Each policy's budgets, phases, peaks, metadata and bookkeeping work on small numbers worked out
from the papers' rules (formulas.md "KV eviction"): H2O keeps min(t, k) tokens, one victim a step
past k (arXiv 2306.14048); Scissorhands grows to B then drops m at once, never the r newest
(arXiv 2305.17118); top-k reads min(B, ctx) and evicts nothing; block top-k scores one key per
select_block tokens (Kinetics); a sliding window of w tokens on a fraction of the layers holds
w + ceil(full_fraction x (n - w)) tokens of n (vLLM's hybrid KV manager), and the models' own
config.json files (qwen3-0.6b: 28 layers, 8 KV heads of 128; gpt-oss-20b: 12 of its 24 layers
windowed at 128 tokens; mistral-7b: all 32 at 4096).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from simulator.cost import KvWork
from simulator.engine import INF, Phase
from simulator.kv.policies import (
    BlockTopKPolicy,
    DensePolicy,
    H2OPolicy,
    ScissorhandsPolicy,
    SlidingWindowPolicy,
    TopKPolicy,
    build_kv_policy,
    resolve_tokens,
    window_policy,
)
from simulator.models import load_model


@pytest.mark.parametrize("value,length,tokens", [(6, 100, 6), (6.0, 3, 6), (0.2, 2056, 412), (0.5, 10, 5),
                                                 (0.25, 10, 3), (0.001, 10, 1), (0.999, 1000, 999)])
def test_budgets_are_tokens_or_a_rounded_up_fraction(value, length, tokens):
    assert resolve_tokens(value, length) == tokens


@pytest.mark.parametrize("cls,kw,msg", [
    (H2OPolicy, dict(budget=0), "kv_budget must be > 0 (tokens, or a fraction < 1), got 0"),
    (H2OPolicy, dict(budget=-0.5), "kv_budget must be > 0 (tokens, or a fraction < 1), got -0.5"),
    (H2OPolicy, dict(budget=1.5), "kv_budget >= 1 counts tokens and must be an integer, got 1.5"),
    (TopKPolicy, dict(budget=8, compaction="copy"),
     "kv_compaction must be one of ('inplace', 'gather'), got 'copy'"),
    (H2OPolicy, dict(budget=8, heavy_fraction=1.01), "kv_heavy_fraction must be in [0, 1], got 1.01"),
    (H2OPolicy, dict(budget=8, heavy_fraction=-0.1), "kv_heavy_fraction must be in [0, 1], got -0.1"),
    (ScissorhandsPolicy, dict(budget=8, drop=0), "kv_drop must be a fraction in (0, 1) of the budget or an "
                                                 "integer >= 1, got 0"),
    (ScissorhandsPolicy, dict(budget=8, drop=2.5), "kv_drop must be a fraction in (0, 1) of the budget or an "
                                                   "integer >= 1, got 2.5"),
    (ScissorhandsPolicy, dict(budget=8, history_window=0),
     "kv_history_window must be >= 1 and kv_protect_recent >= 0, got 0, 10"),
    (ScissorhandsPolicy, dict(budget=8, protect_recent=-1),
     "kv_history_window must be >= 1 and kv_protect_recent >= 0, got 400, -1"),
])
def test_bad_settings_name_the_field_and_value(cls, kw, msg):
    with pytest.raises(ValueError) as err:
        cls(**kw)
    assert str(err.value) == msg


def test_edge_settings_are_accepted():
    for kw in (dict(budget=1), dict(budget=0.01), dict(budget=8, heavy_fraction=0.0), dict(budget=8, heavy_fraction=1.0),
               dict(budget=8, compaction="gather")):
        H2OPolicy(**kw)
    ScissorhandsPolicy(budget=8, drop=1, history_window=1, protect_recent=0)
    ScissorhandsPolicy(budget=8, drop=3)


# ---- H2O ---------------------------------------------------------------------------------------
def test_h2o_budget_phases_and_peaks():
    p = H2OPolicy(budget=6)
    assert p.seq_budget(10, 20) == 6
    assert H2OPolicy(budget=0.2).seq_budget(100, 3) == 21  # ceil(0.2 x 103)
    assert p.after_prefill(10, 6) == 6 and p.after_prefill(4, 6) == 4 and p.after_prefill(6, 6) == 6
    # below the budget: grow one token a step until k, then hold k forever
    assert p.phase(3, 6) == Phase(3, 4, 1, 4, 1, 6)
    assert p.phase(5, 6) == Phase(1, 6, 1, 6, 1, 6)
    assert p.phase(6, 6) == Phase(INF, 6, 0, 6, 0, 6)
    assert p.decode_peak_tokens(10, 20) == 6 and p.decode_peak_tokens(2, 3) == 5
    assert p.peak_tokens(10, 20) == 10  # the whole prompt during the prefill
    assert p.peak_tokens(3, 2) == 5 and p.peak_tokens(4, 20) == 6


@pytest.mark.parametrize("compaction,moved", [("inplace", 0), ("gather", 50)])
def test_h2o_decode_work(compaction, moved):
    p = H2OPolicy(budget=6, compaction=compaction)
    # scores over every read token; the steady rows' held tokens scanned for a victim (and gathered)
    assert p.decode_work(100, 90, 50, 7, 3) == KvWork(100, 100, 50, moved, 0)


def test_budgeted_prefill_work():
    """Chunks (4 new, 0 before) and (2 new, 8 before): 4*0 + 10 + 2*8 + 3 = 29 score pairs and
    4 + 10 keys; finishing prompts (10 kept 6) and (5 kept 5): one scanned and compacted."""
    work = H2OPolicy(budget=6).prefill_work([(4, 0), (2, 8)], [(10, 6), (5, 5)])
    assert work == KvWork(29, 14, 10, 6, 0)
    assert ScissorhandsPolicy(budget=8).prefill_work([(3, 0)], []) == KvWork(6, 3, 0, 0, 0)


def test_score_metadata_per_token():
    """fp32 score per KV head per layer: 4 B x 8 heads x 28 layers (qwen3-0.6b); tp=2 halves the
    heads, tp=16 replicates one head per rank."""
    m = load_model("qwen3-0.6b")
    p = H2OPolicy(budget=6)
    assert p.metadata_bytes_per_token(m, 2.0, 1) == 4 * 8 * 28
    assert p.metadata_bytes_per_token(m, 2.0, 2) == 4 * 4 * 28
    assert p.metadata_bytes_per_token(m, 2.0, 16) == 4 * 1 * 28
    assert ScissorhandsPolicy(budget=8).metadata_bytes_per_token(m, 1.0, 1) == 4 * 8 * 28
    assert TopKPolicy(budget=8).metadata_bytes_per_token(m, 2.0, 1) == 0.0
    assert DensePolicy().metadata_bytes_per_token(m, 2.0, 1) == 0.0
    # block top-k keeps one representative key (bf16, 128 dims) per 16 tokens per KV head per layer
    assert BlockTopKPolicy(budget=8).metadata_bytes_per_token(m, 2.0, 1) == 2 * 8 * 128 * 28 / 16
    assert BlockTopKPolicy(budget=8, select_block=4).metadata_bytes_per_token(m, 1.0, 2) == 1 * 4 * 128 * 28 / 4


# ---- Scissorhands ------------------------------------------------------------------------------
@pytest.mark.parametrize("kw,prompt,output,budget", [
    (dict(budget=8, drop=4, protect_recent=0), 3, 10, (8, 4)),
    (dict(budget=8, protect_recent=0), 3, 10, (8, 3)),  # m = round(0.4 x 8)
    (dict(budget=10, protect_recent=0), 3, 10, (10, 4)),
    (dict(budget=8, drop=3, protect_recent=6), 3, 10, (8, 2)),  # never the 6 newest: m <= 8 - 6
    (dict(budget=8, protect_recent=10), 3, 10, (8, 1)),  # r >= B: one token still goes
    (dict(budget=1, drop=0.5, protect_recent=0), 3, 10, (2, 1)),  # B at least 2
    (dict(budget=0.5, drop=5, protect_recent=0), 6, 14, (10, 5)),  # B = 0.5 x 20
    (dict(budget=20, drop=0.01, protect_recent=0), 6, 14, (20, 1)),  # m at least 1
])
def test_scissorhands_budget_and_drop(kw, prompt, output, budget):
    assert ScissorhandsPolicy(**kw).seq_budget(prompt, output) == budget


def test_scissorhands_phases_peaks_and_work():
    p = ScissorhandsPolicy(budget=8, drop=4, protect_recent=0, compaction="gather")
    b = (8, 4)
    assert p.after_prefill(3, b) == 3 and p.after_prefill(7, b) == 7
    assert p.after_prefill(8, b) == 4 and p.after_prefill(20, b) == 4  # a prompt of B or more is squeezed
    assert p.phase(3, b) == Phase(5, 4, 1, 4, 1, 4)  # 4 .. 8, then drop to 4
    assert p.phase(4, b) == Phase(4, 5, 1, 5, 1, 4)
    assert p.phase(7, b) == Phase(1, 8, 1, 8, 1, 4)
    assert p.phase(20, b) == Phase(1, 8, 1, 8, 1, 4)
    assert p.decode_peak_tokens(3, 10) == 8 and p.decode_peak_tokens(3, 2) == 5
    assert p.peak_tokens(20, 5) == 20 and p.peak_tokens(3, 10) == 8
    assert p.decode_work(100, 90, 50, 16, 8) == KvWork(100, 100, 16, 8, 0)
    inplace = ScissorhandsPolicy(budget=8, drop=4, protect_recent=0)
    assert inplace.decode_work(100, 90, 50, 16, 8) == KvWork(100, 100, 16, 0, 0)


# ---- top-k ------------------------------------------------------------------------------------
def test_topk_reads_min_budget_context_and_keeps_everything():
    p = TopKPolicy(budget=6)
    assert p.seq_budget(10, 20) == 6 and TopKPolicy(budget=0.5).seq_budget(10, 10) == 10
    assert p.after_prefill(10, 6) == 10
    assert p.decode_peak_tokens(10, 20) == 30 and p.peak_tokens(10, 20) == 30
    assert p.phase(3, 6) == Phase(2, 4, 1, 4, 1, 5)  # reads 4, 5 (all it holds)
    assert p.phase(4, 6) == Phase(1, 5, 1, 5, 1, 5)
    assert p.phase(5, 6) == Phase(INF, 6, 0, 6, 1, INF)  # reads 6, holds 6, 7, ...
    assert p.phase(9, 6) == Phase(INF, 6, 0, 10, 1, INF)
    assert p.decode_work(100, 90, 0, 0, 0) is None and p.prefill_work([(4, 0)], [(4, 4)]) is None


def test_block_topk_rounds_the_budget_to_whole_blocks_and_searches_held_keys():
    p = BlockTopKPolicy(budget=10, select_block=4)
    assert p.seq_budget(10, 20) == 12
    assert BlockTopKPolicy(budget=8, select_block=4).seq_budget(10, 20) == 8
    assert BlockTopKPolicy(budget=0.1, select_block=16).seq_budget(100, 100) == 32  # 20 -> 2 blocks
    assert p.decode_work(100, 90, 0, 0, 0) == KvWork(search_keys=90 / 4)


# ---- sliding windows ---------------------------------------------------------------------------
def test_sliding_window_holds_window_plus_full_layers_share():
    p = SlidingWindowPolicy(window=4, full_fraction=0.5)
    assert [p.held(n) for n in (1, 3, 4, 5, 6, 9, 10)] == [1, 3, 4, 5, 5, 7, 7]
    assert SlidingWindowPolicy(window=4, full_fraction=0.0).held(100) == 4
    assert SlidingWindowPolicy(window=4, full_fraction=1 / 3).held(7) == 5  # 4 + ceil(1): no float creep
    assert p.seq_budget(6, 4) == 7 and p.decode_peak_tokens(6, 4) == 7 and p.peak_tokens(6, 4) == 7
    assert p.after_prefill(10, 7) == 7 and p.after_prefill(3, 7) == 3
    assert p.phase(3, 7) == Phase(4, 4, 1, 4, 1, 7) and p.phase(7, 7) == Phase(INF, 7, 0, 7, 0, 7)
    assert p.decode_work(1, 2, 3, 4, 5) is None and p.prefill_work([(4, 0)], [(4, 4)]) is None
    assert p.metadata_bytes_per_token(load_model("qwen3-0.6b"), 2.0, 1) == 0.0


def test_window_policy_from_model_configs():
    assert window_policy(load_model("qwen3-0.6b")) is None
    assert window_policy(load_model("gpt-oss-20b")) == SlidingWindowPolicy(window=128, full_fraction=0.5)
    assert window_policy(load_model("mistral-7b")) == SlidingWindowPolicy(window=4096, full_fraction=0.0)


def _scenario(**kw):
    base = dict(kv_policy="dense", kv_budget=None, kv_compaction="inplace", kv_heavy_fraction=0.5, kv_drop=0.4,
                kv_history_window=400, kv_protect_recent=10, kv_select_block=16, samples_per_prompt=1,
                draft_model=None)
    return SimpleNamespace(**{**base, **kw})


def test_build_kv_policy_passes_every_setting():
    qwen = load_model("qwen3-0.6b")
    assert build_kv_policy(_scenario(), qwen) == DensePolicy()
    assert build_kv_policy(_scenario(), None) == DensePolicy()
    assert build_kv_policy(_scenario(kv_policy="h2o", kv_budget=64, kv_compaction="gather", kv_heavy_fraction=0.25),
                           qwen) == H2OPolicy(budget=64, compaction="gather", heavy_fraction=0.25)
    assert build_kv_policy(_scenario(kv_policy="scissorhands", kv_budget=0.3, kv_drop=5, kv_history_window=7,
                                     kv_protect_recent=2), qwen) == ScissorhandsPolicy(
        budget=0.3, drop=5, history_window=7, protect_recent=2)
    assert build_kv_policy(_scenario(kv_policy="block_topk", kv_budget=64, kv_select_block=8), qwen) == \
        BlockTopKPolicy(budget=64, select_block=8)
    assert build_kv_policy(_scenario(kv_policy="topk", kv_budget=64), qwen) == TopKPolicy(budget=64)


def test_build_kv_policy_with_window_layers():
    oss = load_model("gpt-oss-20b")
    assert build_kv_policy(_scenario(), oss) == SlidingWindowPolicy(window=128, full_fraction=0.5)
    for kw in (dict(samples_per_prompt=2), dict(draft_model="qwen3-0.6b")):
        p = build_kv_policy(_scenario(**kw), oss)
        assert isinstance(p, DensePolicy) and "128 tokens" in p.note and p.describe()["note"] == p.note
    with pytest.raises(ValueError) as err:
        build_kv_policy(_scenario(kv_policy="h2o", kv_budget=64), oss)
    assert str(err.value) == ("kv_policy='h2o' on gpt-oss-20b, whose layers already attend through a sliding "
                              "window of 128 tokens: the two are not combined; use kv_policy=dense")


def test_descriptions():
    assert DensePolicy().describe() == {"name": "dense"}
    assert H2OPolicy(budget=64).describe() == {"name": "h2o", "budget": 64, "budget_kind": "tokens",
                                               "compaction": "inplace", "heavy_fraction": 0.5}
    assert ScissorhandsPolicy(budget=0.5, compaction="gather").describe() == {
        "name": "scissorhands", "budget": 0.5, "budget_kind": "fraction of prompt+output", "compaction": "gather",
        "drop": 0.4, "history_window": 400, "protect_recent": 10}
    assert TopKPolicy(budget=1).describe()["oracle_selection"] is True
    assert BlockTopKPolicy(budget=8).describe()["select_block"] == 16
    d = SlidingWindowPolicy(window=4, full_fraction=0.5).describe()
    assert (d["name"], d["window"], d["full_fraction"]) == ("sliding_window", 4, 0.5)


def test_boundaries_and_texts():
    assert ScissorhandsPolicy(budget=8, drop=1, protect_recent=0).seq_budget(3, 10) == (8, 1)  # 1 token, not 100%
    with pytest.raises(ValueError, match=r"got 1\.5$"):
        ScissorhandsPolicy(budget=8, drop=1.5)
    assert H2OPolicy(budget=1).describe()["budget_kind"] == "tokens"
    d = DensePolicy()
    assert (d.decode_peak_tokens(10, 20), d.peak_tokens(10, 20), d.after_prefill(10, None)) == (30, 30, 10)
    assert d.phase(10, None) == Phase(INF, 11, 1, 11, 1, INF) and d.seq_budget(10, 20) is None
    assert DensePolicy(note="why").describe() == {"name": "dense", "note": "why"}
    assert SlidingWindowPolicy(window=1, full_fraction=0.0).seq_budget(1, 1) == 1
    assert SlidingWindowPolicy(window=4, full_fraction=0.5).describe() == {
        "name": "sliding_window", "window": 4, "full_fraction": 0.5,
        "note": "the model's sliding-window layers (exact peak KV, upper-bound hold and reads in between)"}
    note = build_kv_policy(_scenario(samples_per_prompt=2), load_model("gpt-oss-20b")).note
    assert note == ("gpt-oss-20b's sliding windows (128 tokens) are not applied with Best-of-N sharing or speculative "
                    "decoding: its KV is priced dense (an upper bound)")
