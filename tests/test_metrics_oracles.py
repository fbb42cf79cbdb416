"""summarise_requests on a hand case (issue 19): several ITL gaps with different counts, and
goodput under each SLO kind alone and together. Every expected number is worked out by hand
below from vLLM bench serve's definitions (benchmarks/serve.py calculate_metrics):
TTFT = first - arrival; E2EL = finish - arrival; TPOT = (E2EL - TTFT) / (output - 1) for
output > 1, and 0 in the goodput check for a one-token output; goodput counts requests whose
every given SLO holds with `<=`; percentiles are np.percentile (linear) over every ITL sample.
"""
import numpy as np
import pytest

from simulator.results.metrics import summarise_requests, weighted_percentiles

# request:            0      1      2      3      4 (failed: left out everywhere)
ARRIVAL = [0.0, 0.0, 1.0, 2.0, 0.5]
FIRST = [0.1, 0.3, 1.2, 2.05, 9.0]
FINISH = [1.1, 0.3, 2.2, 3.05, 99.0]
PROMPT = [10, 20, 30, 40, 1000]
OUTPUT = [11, 1, 5, 3, 1000]
OK = [True, True, True, True, False]
# TTFT ms: 100, 300, 200, 50; E2EL ms: 1100, 300, 1200, 1050
# TPOT ms (outputs > 1): (1100-100)/10 = 100, (1200-200)/4 = 250, (1050-50)/2 = 500
# ITL samples: 0.05 s x3, 0.1 s x8, 0.2 s x2, 0.5 s x1 (14 in all), recorded out of order
ITL_S = [0.1, 0.5, 0.05, 0.2]
ITL_COUNT = [8, 1, 3, 2]
DURATION = 3.05


def summary(**slo):
    return summarise_requests(arrival_s=ARRIVAL, first_token_s=FIRST, finish_s=FINISH, prompt_tokens=PROMPT,
                              output_tokens=OUTPUT, ok=OK, itl_s=ITL_S, itl_count=ITL_COUNT, **slo)


def test_counts_and_throughputs():
    m = summary()
    assert m["completed"] == 4 and m["duration"] == DURATION
    assert m["total_input_tokens"] == 100 and m["total_output_tokens"] == 20
    assert m["request_throughput"] == pytest.approx(4 / DURATION, rel=1e-12)
    assert m["output_throughput"] == pytest.approx(20 / DURATION, rel=1e-12)
    assert m["total_token_throughput"] == pytest.approx(120 / DURATION, rel=1e-12)
    assert m["request_goodput"] is None  # no SLO given


def test_ttft_tpot_e2el_distributions():
    m = summary()
    # TTFT sorted 50, 100, 200, 300: median at h = 1.5 -> 150; p90 at h = 2.7 -> 200 + 0.7*100; p99 at 2.97
    assert m["mean_ttft_ms"] == pytest.approx(162.5)
    assert (m["median_ttft_ms"], m["p90_ttft_ms"], m["p99_ttft_ms"]) == pytest.approx((150, 270, 297))
    assert m["std_ttft_ms"] == pytest.approx(np.sqrt(((np.array([100, 300, 200, 50]) - 162.5) ** 2).mean()))
    # TPOT 100, 250, 500 (the one-token request has none): median 250; p90 at h = 1.8 -> 250 + 0.8*250
    assert m["mean_tpot_ms"] == pytest.approx(850 / 3)
    assert (m["median_tpot_ms"], m["p90_tpot_ms"], m["p99_tpot_ms"]) == pytest.approx((250, 450, 495))
    # E2EL sorted 300, 1050, 1100, 1200: median 1075; p99 at h = 2.97 -> 1100 + 0.97*100
    assert m["mean_e2el_ms"] == pytest.approx(912.5)
    assert (m["median_e2el_ms"], m["p99_e2el_ms"]) == pytest.approx((1075, 1197))


def test_itl_weights_every_gap_by_its_count():
    m = summary()
    # 14 samples sorted: idx 0-2 = 50 ms, 3-10 = 100 ms, 11-12 = 200 ms, 13 = 500 ms
    assert m["mean_itl_ms"] == pytest.approx((3 * 50 + 8 * 100 + 2 * 200 + 500) / 14)  # 132.857...
    assert m["median_itl_ms"] == pytest.approx(100)  # h = 6.5
    assert m["p90_itl_ms"] == pytest.approx(200)  # h = 11.7: idx 11 and 12 are both 200
    assert m["p99_itl_ms"] == pytest.approx(200 + 0.87 * 300)  # h = 12.87: between 200 and 500
    flat = np.repeat([100.0, 500.0, 50.0, 200.0], ITL_COUNT)
    assert m["std_itl_ms"] == pytest.approx(flat.std())


@pytest.mark.parametrize("slo, good", [
    ({"slo_ttft_ms": 150}, 2),  # TTFT 100 and 50
    ({"slo_ttft_ms": 100}, 2),  # `<=`: 100 ms meets a 100 ms SLO
    ({"slo_tpot_ms": 300}, 3),  # TPOT 100, (none: 0), 250 -- not 500
    ({"slo_tpot_ms": 99}, 1),  # only the one-token request (TPOT 0)
    ({"slo_e2el_ms": 1100}, 3),  # 1100, 300, 1050 -- not 1200
    ({"slo_e2el_ms": 1000}, 1),  # only 300
    ({"slo_ttft_ms": 150, "slo_tpot_ms": 300, "slo_e2el_ms": 1100}, 1),  # only request 0 meets all three
    ({"slo_tpot_ms": 300, "slo_e2el_ms": 1100}, 2),  # requests 0 and 1
])
def test_goodput_under_each_slo_kind(slo, good):
    assert summary(**slo)["request_goodput"] == pytest.approx(good / DURATION, rel=1e-12)


def test_weighted_percentiles_equal_numpy_on_the_repeated_samples():
    rng = np.random.default_rng(4)
    for _ in range(50):
        k = int(rng.integers(1, 12))
        values = rng.choice([0.5, 1.0, 2.0, 3.5, 7.0, 10.0], size=k)  # ties on purpose
        counts = rng.integers(1, 6, size=k)
        qs = (0, 10, 50, 90, 99, 100)
        assert weighted_percentiles(values, counts, qs) == pytest.approx(
            np.percentile(np.repeat(values, counts), qs).tolist(), rel=1e-12, abs=1e-12)


def _keys(name):
    return {f"{k}_{name}" for k in ("mean", "median", "std", "p90", "p99")}


def test_no_completed_request_gives_nan_metrics_with_vllm_keys():
    m = summarise_requests(arrival_s=[0.0], first_token_s=[np.nan], finish_s=[1.0], prompt_tokens=[5],
                           output_tokens=[3], ok=[False], itl_s=[], itl_count=[], slo_ttft_ms=100)
    assert m["completed"] == 0 and m["duration"] == 0.0 and np.isnan(m["request_throughput"])
    assert np.isnan(m["request_goodput"])
    for name in ("ttft_ms", "tpot_ms", "e2el_ms", "itl_ms"):
        keys = {k for k in m if k.endswith("_" + name)}
        assert keys == _keys(name), name  # no p50 key: the median is median_*
        assert all(isinstance(m[k], float) and np.isnan(m[k]) for k in keys), name


def test_itl_gaps_with_zero_counts_are_no_samples():
    m = summarise_requests(arrival_s=ARRIVAL, first_token_s=FIRST, finish_s=FINISH, prompt_tokens=PROMPT,
                           output_tokens=OUTPUT, ok=OK, itl_s=[0.1, 0.2], itl_count=[0, 0])
    assert all(np.isnan(m[k]) for k in _keys("itl_ms"))
    assert m["mean_ttft_ms"] == pytest.approx(162.5)  # the rest is unaffected


def test_two_token_output_has_a_tpot_and_short_runs_keep_their_rate():
    """Output 2: TPOT = E2EL - TTFT (one gap). Duration 0.5 s: 2 requests -> 4 req/s. `ok` given
    as 0/1 integers marks rows the same as booleans."""
    m = summarise_requests(arrival_s=[0.0, 0.1, 0.2], first_token_s=[0.1, 0.2, 0.3], finish_s=[0.3, 0.5, 9.0],
                           prompt_tokens=[4, 4, 4], output_tokens=[2, 3, 2], ok=[1, 1, 0], itl_s=[0.2], itl_count=[1])
    assert m["completed"] == 2 and m["duration"] == 0.5
    assert m["request_throughput"] == pytest.approx(4.0) and m["output_throughput"] == pytest.approx(10.0)
    # TPOT: (300 - 100) / 1 = 200 and (400 - 100) / 2 = 150
    assert m["mean_tpot_ms"] == pytest.approx(175.0) and m["median_tpot_ms"] == pytest.approx(175.0)


def test_tpot_slo_met_with_equality():
    """Binary-exact times: TTFT 125 ms, E2EL 375 ms, output 2 -> TPOT exactly 250 ms."""
    kw = dict(arrival_s=[0.0], first_token_s=[0.125], finish_s=[0.375], prompt_tokens=[4], output_tokens=[2],
              ok=[True], itl_s=[0.25], itl_count=[1])
    assert summarise_requests(**kw)["mean_tpot_ms"] == 250.0
    assert summarise_requests(**kw, slo_tpot_ms=250.0)["request_goodput"] == pytest.approx(1 / 0.375)
    assert summarise_requests(**kw, slo_tpot_ms=249.9)["request_goodput"] == 0.0


def test_itl_from_a_folded_sketch():
    """The same ITL samples through a GapLog folded into its quantile sketch: count, mean and std
    stay exact; each percentile is within the sketch's relative accuracy of a sample at its rank."""
    from simulator.engine import GapLog

    log = GapLog(exact_limit=2)
    for gap, count in zip(ITL_S, ITL_COUNT):
        log.add(gap, count)
    log.maybe_fold()
    assert not log.exact
    m = summarise_requests(arrival_s=ARRIVAL, first_token_s=FIRST, finish_s=FINISH, prompt_tokens=PROMPT,
                           output_tokens=OUTPUT, ok=OK, itl_s=[], itl_count=[], itl_sketch=log)
    assert m["mean_itl_ms"] == pytest.approx((3 * 50 + 8 * 100 + 2 * 200 + 500) / 14, rel=1e-12)
    assert m["std_itl_ms"] == pytest.approx(np.repeat([100.0, 500.0, 50.0, 200.0], ITL_COUNT).std(), rel=1e-9)
    acc = GapLog.RELATIVE_ACCURACY
    assert m["median_itl_ms"] == pytest.approx(100, rel=acc) and m["p90_itl_ms"] == pytest.approx(200, rel=acc)
    assert any(m["p99_itl_ms"] == pytest.approx(v, rel=acc) for v in (200, 500))
    assert "p50_itl_ms" not in m and m["mean_ttft_ms"] == pytest.approx(162.5)
    empty = GapLog(exact_limit=0)
    empty.maybe_fold()
    e = summarise_requests(arrival_s=ARRIVAL, first_token_s=FIRST, finish_s=FINISH, prompt_tokens=PROMPT,
                           output_tokens=OUTPUT, ok=OK, itl_s=[], itl_count=[], itl_sketch=empty)
    assert all(np.isnan(e[k]) for k in _keys("itl_ms"))


def test_integer_times_and_counts_are_accepted():
    """Times given as integers (seconds) are read as floats: TTFT 1000 and 2000 ms."""
    m = summarise_requests(arrival_s=[0, 0], first_token_s=[1, 2], finish_s=[3, 4], prompt_tokens=[1, 1],
                           output_tokens=[3, 3], ok=[True, True], itl_s=[1, 1], itl_count=[2, 2])
    assert (m["mean_ttft_ms"], m["mean_tpot_ms"], m["mean_itl_ms"]) == (1500.0, 1000.0, 1000.0)


def test_dist_without_counts_weights_each_value_once():
    from simulator.results.metrics import _dist

    d = _dist("x_ms", np.array([1.0, 3.0]))
    assert (d["mean_x_ms"], d["median_x_ms"], d["std_x_ms"]) == (2.0, 2.0, 1.0)


def test_a_single_folded_gap():
    from simulator.engine import GapLog

    log = GapLog(exact_limit=0)
    log.add(0.1, 1)
    log.maybe_fold()
    assert not log.exact
    m = summarise_requests(arrival_s=ARRIVAL, first_token_s=FIRST, finish_s=FINISH, prompt_tokens=PROMPT,
                           output_tokens=OUTPUT, ok=OK, itl_s=[], itl_count=[], itl_sketch=log)
    assert m["mean_itl_ms"] == pytest.approx(100.0) and m["std_itl_ms"] == 0.0
