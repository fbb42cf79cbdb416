"""The speculative section's draft record and batch-1 break-even, against numbers written out by
hand: qwen3-0.6b's KV is 28 layers x 8 KV heads x 128 x 2 (K, V) x 2 B = 114688 B per token; its
weights split over tp; a draft as costly as its target with alpha = 0.05 pays best at gamma 1,
where Leviathan et al.'s expected tokens are 1 + alpha (arXiv 2211.17192, eq. 1) and the iteration
is one draft step plus a verify pass of about one target step."""
import pytest

from simulator.results.summary import build_summary
from simulator.run import simulate
from simulator.scenario import Scenario

DRAFT_KEYS = {"model", "hardware", "tp", "weight_bytes", "kv_bytes_per_token"}
BATCH1_KEYS = {"context_tokens", "target_step_ms", "draft_step_ms", "cost_coefficient_c", "best_gamma",
               "best_expected_speedup"}


def spec(**kw) -> dict:
    s = Scenario(model="qwen3-8b", hardware="h100-sxm", scheduler="vllm", rate=float("inf"), seed=3,
                 prompt_tokens="512", output_tokens="32", num_requests=8, max_num_seqs=8, engine="ideal",
                 draft_model="qwen3-0.6b").replace(**kw)
    return build_summary(simulate(s))["speculative"]


@pytest.fixture(scope="module")
def shared():
    return spec(spec_realign_overhead=0.05)


def test_draft_record_shared_with_the_target(shared):
    d = shared["draft"]
    assert set(d) == DRAFT_KEYS
    assert d["model"] == "qwen3-0.6b" and d["hardware"] == "shared with target" and d["tp"] == 1
    assert d["kv_bytes_per_token"] == 28 * 8 * 128 * 2 * 2
    assert shared["realign_overhead"] == 0.05
    assert shared["num_speculative_tokens"] == 4 and shared["gamma_policy"] == "fixed" and shared["advance"] == "ragged"


def test_draft_weights_split_over_tp(shared):
    at_tp2 = spec(tp=2)["draft"]
    assert at_tp2["tp"] == 2
    assert at_tp2["weight_bytes"] == shared["draft"]["weight_bytes"] // 2  # 1192099840 B: an even count


def test_draft_on_its_own_device_reports_its_kv_capacity():
    d = spec(draft_hardware="l4")["draft"]
    assert set(d) == DRAFT_KEYS | {"device_kv_capacity_tokens"} and d["hardware"] == "l4"
    # L4: 24 GiB x 0.9 usable, less 1.19 GB of draft weights and the activation reserve, / 114688 B
    assert (24 * 0.9 * 2**30 - 1192099840 - 2 * 2**30) / 114688 < d["device_kv_capacity_tokens"] \
        < 24 * 0.9 * 2**30 / 114688


def test_batch1_record(shared):
    b = shared["batch1"]
    assert set(b) == BATCH1_KEYS
    assert b["context_tokens"] == 1024
    assert b["cost_coefficient_c"] == pytest.approx(b["draft_step_ms"] / b["target_step_ms"], rel=1e-12)
    assert 0 < b["draft_step_ms"] < b["target_step_ms"]
    assert b["best_gamma"] in range(1, 5)


def test_a_draft_as_costly_as_its_target_pays_best_at_gamma_one():
    b = spec(draft_model="qwen3-8b", acceptance_rate=0.05)["batch1"]
    assert b["cost_coefficient_c"] == 1.0
    assert b["best_gamma"] == 1
    # E(1) = 1 + alpha = 1.05 tokens per iteration of one draft step + a 2-token verify (~ one target step)
    assert b["best_expected_speedup"] == pytest.approx(1.05 / 2, abs=0.002)
