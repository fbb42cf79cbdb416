"""Kinetics calculator vs hand-computed formulas, and the per-run account vs the calculator."""
import json

import pytest
from toy_model import TOY

from simulator.accounting.kinetics import (
    KineticsInputs,
    dense_attended,
    kinetics_cost,
    run_account,
    topk_attended,
)
from simulator.cli import main
from simulator.models import load_model
from simulator.results.summary import build_summary, summary_json
from simulator.run import simulate
from simulator.scenario import Scenario

P = 1000


def cost(**kw):
    base = dict(model=TOY, prompt_tokens=10, output_tokens=4, params_per_token=P, intensity=2.0)
    return kinetics_cost(KineticsInputs(**{**base, **kw}))


def test_attended_counts():
    assert dense_attended(10, 4) == 10 + 11 + 12 + 13 == 46
    assert dense_attended(10, 4, "paper") == (2 * 10 + 4) * 4 / 2 == 48
    assert topk_attended(10, 4, 12) == 10 + 11 + 12 + 12
    assert topk_attended(10, 4, 5) == 4 * 5
    assert topk_attended(10, 4, 1000) == 46
    assert topk_attended(10, 4, 10) == 40


def test_dense_exact_and_paper_forms():
    c = cost()
    assert c.c_comp_flops == 2 * P * 4 + 4 * 64 * 46 == 19776
    assert c.c_mem_bytes == 128 * 46 == 5888
    assert c.eflops_compute == 19776 and c.eflops_memory == 2 * 5888
    assert c.eflops_total == 19776 + 2 * 5888
    p = cost(counting="paper")  # formulas.md as printed: 2NPL + 2*H*(d*nL)*(2L_in+L)*L ; 2*Hkv*(d*nL)*(2L_in+N*L)*L
    assert p.c_comp_flops == 2 * P * 4 + 2 * 4 * 16 * (2 * 10 + 4) * 4 == 20288
    assert p.c_mem_bytes == 2 * 2 * 16 * (2 * 10 + 4) * 4 == 6144


def test_dense_samples_share_prompt_kv():
    c = cost(num_samples=3)
    assert c.c_comp_flops == 3 * 19776
    assert c.c_mem_bytes == 128 * (4 * 10 + 3 * (0 + 1 + 2 + 3)) == 7424
    p = cost(num_samples=3, counting="paper")
    assert p.c_mem_bytes == 2 * 2 * 16 * (2 * 10 + 3 * 4) * 4 == 8192
    assert p.c_comp_flops == 3 * (2 * P * 4 + 2 * 4 * 16 * (2 * 10 + 4) * 4)


def test_topk_nothing_shared():
    c = cost(attention="topk", budget=12, num_samples=2)
    assert c.c_comp_flops == 2 * (2 * P * 4 + 4 * 64 * 45) == 39040
    assert c.c_mem_bytes == 2 * 128 * 45 == 11520
    wide = cost(attention="topk", budget=1000, num_samples=2)
    assert wide.c_comp_flops == cost(num_samples=2).c_comp_flops  # B >= context: dense compute
    assert wide.c_mem_bytes == 2 * 128 * 46 > cost(num_samples=2).c_mem_bytes  # but no prompt sharing


def test_block_topk_adds_search():
    c = cost(attention="block_topk", budget=12, block_size=4)
    search_flops = 2 * 64 * 46 / 4  # one key per block of every context: 2*H*d*nL*ctx/bs per token
    search_bytes = 2 * 32 * 46 / 4  # beta*Hkv*d*nL*ctx/bs
    assert c.c_comp_flops == 2 * P * 4 + 4 * 64 * 45 + search_flops == 20992
    assert c.c_mem_bytes == 128 * 45 + search_bytes == 6496
    assert c.terms["search_flops"] == 1472 and c.terms["search_bytes"] == 736


def test_switches_and_seconds():
    c = cost(include_prefill=True, include_weight_traffic=True, peak_flops=1000.0)
    prefill = 2 * P * 9 + 4 * 64 * (9 * 10 // 2)  # rows 0..8 of the prompt; row 9 is generated token 0
    assert c.c_comp_flops == 19776 + prefill
    assert c.c_mem_bytes == 5888 + 128 * 10 + P * 2 * 4  # KV write of the prompt + weights per pass
    assert c.seconds_on_device == c.eflops_total / 1000.0
    assert cost().seconds_on_device is None


@pytest.mark.parametrize("bad", [
    dict(prompt_tokens=0), dict(output_tokens=-1), dict(num_samples=0), dict(budget=8),
    dict(attention="topk"), dict(attention="block_topk", budget=8), dict(attention="sparse"),
    dict(block_size=4, attention="topk", budget=8), dict(counting="approx"), dict(intensity=0.0),
])
def test_invalid_inputs(bad):
    with pytest.raises(ValueError):
        cost(**bad)


# ---- the per-run account equals the calculator on a matching workload ---------------------------
@pytest.mark.parametrize("scheduler,chunk", [("static", 512), ("vllm", 512), ("sarathi", 64)])
def test_run_account_equals_calculator(scheduler, chunk):
    lin, out, n = 100, 20, 5
    s = Scenario(model="qwen3-0.6b", scheduler=scheduler, rate=float("inf"), num_requests=n, max_num_seqs=2,
                 prompt_tokens=str(lin), output_tokens=str(out), chunk_size=chunk)
    result = simulate(s)
    assert int(result.recorder.num_preemptions.sum()) == 0
    model = load_model("qwen3-0.6b")
    calc = kinetics_cost(KineticsInputs(model=model, prompt_tokens=lin, output_tokens=out))
    acc = run_account(result.recorder.step_arrays(), model)
    assert acc.c_comp_flops == n * calc.c_comp_flops
    assert acc.c_mem_bytes == n * calc.c_mem_bytes
    summary = build_summary(result)
    kin = summary["kinetics"]["paper_intensity"]
    assert kin["eflops_per_request"] == pytest.approx(calc.eflops_total, rel=1e-14)
    assert kin["eflops_per_output_token"] == pytest.approx(calc.eflops_total / out, rel=1e-14)
    assert summary["kinetics"]["num_forward_passes"] == n * out
    json.loads(summary_json(summary))


# ---- CLI ----------------------------------------------------------------------------------------
BASE = ["cost", "--model", "qwen3-0.6b", "--prompt-tokens", "1024", "--output-tokens", "4096"]


@pytest.mark.parametrize("extra", [
    ["--samples", "0"], ["--budget", "64"], ["--attention", "topk"], ["--hardware", "h100-sxm", "--intensity", "3"],
    ["--attention", "dense", "--block-size", "16"], ["--attention", "nope"], ["--hardware", "no-such-gpu"],
    ["--intensity", "-1"],
])
def test_cli_bad_input_exit_2(extra, capsys):
    assert main(BASE + extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err


def test_cli_negative_length_exit_2(capsys):
    assert main(["cost", "--model", "qwen3-0.6b", "--prompt-tokens", "-5", "--output-tokens", "10"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_json_matches_calculator(capsys):
    assert main(BASE + ["--samples", "8", "--attention", "topk", "--budget", "1024", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["results"][0]
    want = kinetics_cost(KineticsInputs(model=load_model("qwen3-0.6b"), prompt_tokens=1024, output_tokens=4096,
                                        num_samples=8, attention="topk", budget=1024, peak_flops=4.5e15))
    assert got["eflops_total"] == want.eflops_total and got["intensity"] == 562.5
    assert main(BASE + ["--hardware", "h100-sxm"]) == 0
    assert "h100-sxm" in capsys.readouterr().out


def test_kinetics_params_convention_reproduces_the_authors_numbers():
    """The Kinetics authors count every parameter of the model card (embeddings, a tied head again),
    at three significant figures: Qwen3-8B 8.19e9, Qwen3-0.6B 0.752e9; their top-k case costs
    26448.81e12 eFLOPs (prompt 128, 32768 generated tokens, N = 8, B = 1024, exact min(B, ctx))."""
    from simulator.accounting import KineticsInputs, kinetics_cost, params_per_token
    from simulator.models import load_model

    q8, q06 = load_model("qwen3-8b"), load_model("qwen3-0.6b")
    assert params_per_token(q8, "kinetics") == 8_190_000_000 and params_per_token(q06, "kinetics") == 752_000_000
    assert params_per_token(q8) == q8.active_params_per_token  # the exact convention stays the default
    cost = kinetics_cost(KineticsInputs(model=q8, prompt_tokens=128, output_tokens=32768, num_samples=8,
                                        attention="topk", budget=1024, params_convention="kinetics"))
    assert round(cost.eflops_total / 1e12, 2) == 26448.81
    with pytest.raises(ValueError, match="params_convention='paper' is invalid"):
        KineticsInputs(model=q8, prompt_tokens=1, output_tokens=1, params_convention="paper")
