import numpy as np
import pytest

from simulator.results.metrics import summarise_requests, weighted_percentiles


def test_weighted_percentiles_equal_numpy_on_expanded_data():
    rng = np.random.default_rng(0)
    values = rng.random(50)
    counts = rng.integers(1, 20, size=50)
    expanded = np.repeat(values, counts)
    assert weighted_percentiles(values, counts, (0, 10, 50, 90, 99, 100)) == pytest.approx(
        list(np.percentile(expanded, [0, 10, 50, 90, 99, 100])))


def test_vllm_definitions_on_hand_case():
    # two requests: r0 arrives 0, first token 0.5, done 2.5 with 5 tokens; r1 arrives 1, first 1.2, done 1.2, 1 token
    m = summarise_requests(
        arrival_s=[0.0, 1.0], first_token_s=[0.5, 1.2], finish_s=[2.5, 1.2], prompt_tokens=[10, 20],
        output_tokens=[5, 1], ok=[True, True], itl_s=[0.5], itl_count=[4], slo_ttft_ms=300)
    assert m["completed"] == 2 and m["duration"] == 2.5
    assert m["request_throughput"] == pytest.approx(2 / 2.5)
    assert m["output_throughput"] == pytest.approx(6 / 2.5)
    assert m["total_token_throughput"] == pytest.approx(36 / 2.5)
    assert m["mean_ttft_ms"] == pytest.approx(350.0)
    assert m["mean_tpot_ms"] == pytest.approx(500.0)  # (2500-500)/(5-1); r1 has one token: no TPOT
    assert m["mean_e2el_ms"] == pytest.approx((2500 + 200) / 2)
    assert m["p99_itl_ms"] == pytest.approx(500.0)
    assert m["request_goodput"] == pytest.approx(1 / 2.5)  # only r1 meets TTFT <= 300 ms


def test_failed_requests_excluded_from_latency():
    m = summarise_requests(arrival_s=[0, 0], first_token_s=[1, np.nan], finish_s=[2, 0], prompt_tokens=[1, 1],
                           output_tokens=[2, 2], ok=[True, False], itl_s=[1.0], itl_count=[1])
    assert m["completed"] == 1 and m["mean_e2el_ms"] == 2000 and m["request_goodput"] is None
