"""Roofline figures (formulas.md closed forms), summary fields and the roofline CLI."""
import json
import math

import pytest

from hardware import load_device
from simulator.cli import main
from simulator.models import load_model
from simulator.results.summary import build_summary
from simulator.run import simulate
from simulator.scenario import Scenario
from simulator.studies.roofline import roofline_figures


def test_opt_a100_closed_forms():
    f = roofline_figures(load_model("opt-6.7b"), load_device("a100-80gb"))
    ridge = 312e12 / 2039e9
    assert f["ridge_flops_per_byte"] == pytest.approx(ridge)
    m = load_model("opt-6.7b")
    p, w = m.active_params_per_token, m.weight_bytes("bf16")
    d = 2 * 2 * 32 * 128 * 32  # D = 2*beta*Hkv*d*nL
    assert f["kv_bytes_per_token"] == d
    assert f["decode_attention_intensity"] == 1.0  # r = 1 for MHA in bf16
    assert f["memory_bound_context_any_batch"] == pytest.approx(2 * p / (d * (ridge - 1)))
    assert f["critical_batch_weights_only"] == pytest.approx(ridge * w / (2 * p))
    # batch-1 decode ~ W/BW (the cost model skips the embedding table, a gather)
    assert f["batch1_decode_s_cost_model"] == pytest.approx(w / 2039e9, rel=0.02)


def test_gqa_raises_attention_intensity():
    f = roofline_figures(load_model("llama-3-8b"), load_device("h100-sxm"))
    assert f["gqa_ratio"] == 4 and f["decode_attention_intensity"] == 4.0


def test_roofline_cli_json(capsys):
    assert main(["roofline", "--model", "opt-6.7b", "--hardware", "a100-80gb", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert math.isclose(out["ridge_flops_per_byte"], 312e12 / 2039e9)
    assert main(["roofline", "--model", "opt-6.7b", "--hardware", "a100-80gb"]) == 0
    assert "ctx*" in capsys.readouterr().out


def test_summary_reports_roofline_fields():
    res = simulate(Scenario(model="qwen3-0.6b", num_requests=30, kv_policy="h2o", kv_budget=0.3))
    m = build_summary(res)["metrics"]
    st = res.recorder.step_arrays()
    busy = st["duration_s"].sum()
    assert m["achieved_bandwidth_fraction"] == pytest.approx(st["bytes"].sum() / (busy * 3350e9))
    assert m["arithmetic_intensity"] == pytest.approx(st["flops"].sum() / st["bytes"].sum())
    assert m["ridge_flops_per_byte"] == pytest.approx(989.4e12 / 3350e9)
    assert m["frac_time_memory_bound"] + m["frac_time_compute_bound"] + m["frac_time_overhead_bound"] == pytest.approx(1)
    assert 0 < m["frac_time_kv_eviction"] < 1
    assert m["peak_memory_bytes"] > res.memory.weight_bytes
    assert build_summary(res)["provenance"]["kv_policy"]["budget"] == 0.3


def test_compare_kv_policies_side_by_side(capsys):
    """dense vs h2o vs scissorhands for one model/device/workload is `servesim compare --vary`."""
    assert main(["compare", "--model", "qwen3-0.6b", "--num-requests", "20", "--kv-budget", "64",
                 "--vary", "kv_policy=dense,h2o,scissorhands"]) == 0
    out = capsys.readouterr().out
    assert "h2o" in out and "scissorhands" in out
    assert main(["compare", "--num-requests", "5", "--vary", "kv_policy=lru"]) == 2
