"""Sarathi-Serve's chunk cap (issue 19): no sequence prefills more than chunk_size tokens in one
step, whether it is admitted this step (a new prefill) or continues one (a running prefill).

Exact step shapes on tiny pools (constant 1 s steps, tests/engine_harness.py), worked out by hand
from the rule "decodes first, then running prefills, then new ones, each chunk =
min(tokens left, budget left, chunk_size)" (Agrawal et al., arXiv 2403.02310, sec. 4.2).
Shapes are (prefill chunks as (chunk tokens, tokens computed before), num decode, decode
context sum, num logits).
"""
import numpy as np
from engine_harness import run_replica, shapes_as_tuples

from simulator.run import simulate
from simulator.scenario import Scenario


def test_one_long_prompt_is_cut_into_chunk_size_pieces():
    """20-token prompt, chunk 4, budget 16: five 4-token chunks although 16 would fit; the new
    prefill and every running one are capped alike. Then one decode step (output 2)."""
    _, cost, _ = run_replica("sarathi", [(0.0, 20, 2)], num_blocks=64, block_size=4,
                             max_num_batched_tokens=16, chunk_size=4)
    assert shapes_as_tuples(cost) == [
        (((4, 0),), 0, 0, 0),
        (((4, 4),), 0, 0, 0),
        (((4, 8),), 0, 0, 0),
        (((4, 12),), 0, 0, 0),
        (((4, 16),), 0, 0, 1),  # last chunk: the first token comes out
        ((), 1, 21, 1),  # decode with context 20 + 1
    ]


def test_running_and_new_prefills_share_the_budget_each_capped():
    """Request 0 (20 tokens) runs alone at t = 0, 1; request 1 (9 tokens) arrives at t = 2 and is
    admitted next to the running prefill: each gets min(left, chunk_size) = 4, never the free
    budget (16 - 4 = 12)."""
    _, cost, _ = run_replica("sarathi", [(0.0, 20, 2), (2.0, 9, 2)], num_blocks=64, block_size=4,
                             max_num_batched_tokens=16, chunk_size=4)
    assert shapes_as_tuples(cost) == [
        (((4, 0),), 0, 0, 0),
        (((4, 4),), 0, 0, 0),
        (((4, 8), (4, 0)), 0, 0, 0),
        (((4, 12), (4, 4)), 0, 0, 0),
        (((4, 16), (1, 8)), 0, 0, 2),  # both finish: 20 = 5 x 4, 9 = 4 + 4 + 1
        ((), 2, 21 + 10, 2),
    ]


def test_three_prompts_and_a_decode_in_one_budget():
    """Prompts 10, 10, 6 at t = 0, chunk 4, budget 16: step 1 admits all three at 4 each (12 <= 16);
    step 2 continues them with 4, 4 and the last 2 of the short one; step 3 runs its decode first
    (1 token, context 6 + 1) and then the last 2 + 2 of the others."""
    _, cost, _ = run_replica("sarathi", [(0.0, 10, 2), (0.0, 10, 2), (0.0, 6, 2)], num_blocks=64, block_size=4,
                             max_num_batched_tokens=16, chunk_size=4)
    assert shapes_as_tuples(cost) == [
        (((4, 0), (4, 0), (4, 0)), 0, 0, 0),
        (((4, 4), (4, 4), (2, 4)), 0, 0, 1),
        (((2, 8), (2, 8)), 1, 7, 3),
        ((), 2, 22, 2),
    ]


def test_budget_bounds_a_chunk_below_chunk_size():
    """chunk 8 but budget 6 with two decodes running: the new prefill gets 6 - 2 = 4 tokens."""
    _, cost, _ = run_replica("sarathi", [(0.0, 2, 4), (0.0, 2, 4), (1.0, 12, 2)], num_blocks=64, block_size=4,
                             max_num_seqs=4, max_num_batched_tokens=6, chunk_size=8)
    shapes = shapes_as_tuples(cost)
    assert shapes[0] == (((2, 0), (2, 0)), 0, 0, 2)
    assert shapes[1] == (((4, 0),), 2, 6, 2)  # 2 decodes (context 3 each) + a 4-token chunk = 6
    assert all(c <= 8 for s in cost.shapes for c, _ in s.prefill_chunks)
    assert all(sum(c for c, _ in s.prefill_chunks) + s.num_decode <= 6 for s in cost.shapes)


def test_step_records_of_a_full_run_never_exceed_the_chunk():
    """A whole simulated run (chunk 256, budget 2048, one sequence at a time, prompts of 600-1200
    tokens): the recorder's per-step prefill tokens peak at exactly chunk_size, and the
    prefill of each prompt takes ceil(prompt / 256) steps."""
    s = Scenario(model="qwen3-0.6b", hardware="l4", engine="ideal", scheduler="sarathi", chunk_size=256,
                 max_num_batched_tokens=2048, max_num_seqs=1, num_requests=6, rate=float("inf"),
                 prompt_tokens="uniform:600:1200", output_tokens="4", seed=2)
    r = simulate(s)
    steps = r.recorder.step_arrays()
    pre = steps["num_prefill_tokens"]
    assert pre.max() == 256
    assert int((pre > 0).sum()) == int(sum(-(-int(p) // 256) for p in r.recorder.prompt_tokens))
    assert np.isin(pre[pre > 0], np.arange(1, 257)).all()
