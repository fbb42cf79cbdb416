"""The text table (simulator/results/table.py): every enabled feature prints its own section with
the summary's numbers, and a plain run prints none of them."""
import pytest

from simulator.results.summary import build_summary
from simulator.results.table import format_summary
from simulator.run import simulate
from simulator.scenario import Scenario


def table_of(**kw) -> tuple[dict, str]:
    summary = build_summary(simulate(Scenario(**kw)))
    return summary, format_summary(summary)


def row(text: str, label: str) -> str:
    """The value printed on the line `label:`."""
    line = next(ln for ln in text.splitlines() if ln.startswith(label + ":"))
    return line[len(label) + 1:].strip()


def test_plain_run_has_no_feature_sections():
    _, text = table_of(num_requests=40)
    for title in ("MoE experts", "Test-time scaling", "Speculative decoding", "KV cache policy"):
        assert title not in text


def test_moe_section_prints_the_moe_figures():
    """README's MoE example."""
    summary, text = table_of(model="mixtral-8x7b", hardware="l4", host="xeon-8462y", expert_placement="static",
                             expert_exec="fiddler", closed_loop_users=1, num_requests=4, prompt_tokens="128",
                             output_tokens="128")
    moe = summary.get("moe") or summary["metrics"]
    assert "MoE experts (placement static, exec fiddler)" in text
    assert row(text, "Expert hit rate (resident on GPU)") == f"{moe['moe_expert_hit_rate']:.1%}"
    assert row(text, "Experts fetched over the host link") == str(moe["moe_experts_fetched"])
    assert row(text, "Host-link traffic (GB)") == f"{moe['moe_host_link_bytes'] / 1e9:.2f}"
    assert row(text, "Expert time on CPU (s)") == f"{moe['moe_cpu_expert_time_s']:.2f}"


def test_best_of_n_prints_the_tts_section():
    summary, text = table_of(samples_per_prompt=4, output_budget_tokens=256, num_requests=8)
    tts = summary["tts"]
    assert "Test-time scaling (Best-of-4, budget 256 tokens)" in text
    assert row(text, "Questions completed") == str(tts["questions_completed"])
    assert row(text, "P99 time to last sample (ms)") == f"{tts['p99_time_to_last_sample_ms']:.2f}"
    assert row(text, "USD per question") == f"{tts['usd_per_question']:.6f}"


@pytest.mark.parametrize("kw,title", [
    ({"kv_policy": "h2o", "kv_budget": 0.2}, "KV cache policy: h2o"),
    ({"model": "mistral-7b"}, "KV cache policy: sliding_window"),
])
def test_kv_policy_section(kw, title):
    summary, text = table_of(num_requests=20, **kw)
    assert title in text
    if kw.get("kv_policy") == "h2o":
        assert "budget=0.2" in text
        assert row(text, "Time in KV eviction bookkeeping") == f"{summary['metrics']['frac_time_kv_eviction']:.1%}"
