"""Exact oracles for simulator/workload/bench_results.py (issue 19, mutation survivors): every error
message whole (file, field, value, what was expected), the defaults of optional fields, the send-time
replay order and shift, and the choice of the SGLang run, on tiny hand-written result files."""
import json
import locale
import math

import numpy as np
import pytest

from simulator.errors import ServesimError
from simulator.workload.bench_results import read_bench_result
from simulator.workload.traces import load_trace

EXPECTED = ("(expected the result JSON of `vllm bench serve --save-result`, or SGLang `bench_serving "
            "--output-file` JSONL written with --output-details)")
BASE = {"input_lens": [100, 200, 300], "output_lens": [3, 1, 2], "ttfts": [0.05, 0.1, 0.2],
        "itls": [[0.01, 0.03], [], [0.02]]}


def _write(tmp_path, obj, name="run.json"):
    f = tmp_path / name
    f.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return f


def _error(path) -> str:
    with pytest.raises(ServesimError) as e:
        read_bench_result(path)
    return str(e.value)


@pytest.mark.parametrize("changes, what", [
    ({"input_lens": []}, "no requests"),
    ({"output_lens": [3, 1]}, "output_lens has 2 entries, input_lens has 3"),
    ({"itls": 5}, "itls has int entries, input_lens has 3"),
    ({"errors": ["", ""]}, "errors has 2 entries, input_lens has 3"),
    ({"start_times": [0.0, 1.0, 2.0, 3.0]}, "start_times has 4 entries, input_lens has 3"),
    ({"output_lens": [3, "x", 2]}, "output_lens[1] is 'x', not a number"),
    ({"ttfts": [0.05, 0.1, "slow"]}, "ttfts[2] is 'slow', not a number"),
    ({"ttfts": [0.05, math.inf, 0.2]}, "ttfts[1] is inf, not a number"),  # json writes Infinity; only rates may be inf
    ({"input_lens": [100, math.inf, 300]}, "input_lens[1] is inf, not a number"),
    ({"itls": [[0.01, None], [], []]}, "itls[0] is None, not a number"),
    ({"itls": [[0.01], "0.02", []]}, "itls[1] is str, not a list of seconds"),
    ({"start_times": [0.0, True, 2.0]}, "start_times[1] is True, not a number"),
    ({"request_rate": "fast"}, "request_rate is 'fast', not a number"),
    ({"burstiness": "high"}, "burstiness is 'high', not a number"),
])
def test_error_messages_whole(tmp_path, changes, what):
    path = _write(tmp_path, {**BASE, **changes})
    assert _error(path) == f"{path}: {what} {EXPECTED}"


def test_missing_lists_are_all_named(tmp_path):
    path = _write(tmp_path, {"input_lens": [1], "output_lens": [1]})
    assert _error(path) == f"{path}: no per-request ttfts, itls {EXPECTED}"


def test_one_line_of_bad_json_is_reported_as_not_json(tmp_path):
    path = _write(tmp_path, '{"input_lens": [1],}')
    assert _error(path) == f"{path}: not JSON (Expecting property name enclosed in double quotes at line 1) {EXPECTED}"


def test_sglang_bad_line_is_named(tmp_path):
    # read from the last line back: line 3 lacks the lists, line 2 is not JSON
    text = json.dumps({"backend": "sglang"}) + "\n{oops\n" + json.dumps({"mean_ttft_ms": 1.0}) + "\n"
    path = _write(tmp_path, text, "runs.jsonl")
    assert _error(path) == (f"{path}: line 2 is not JSON (Expecting property name enclosed in double quotes) "
                            f"{EXPECTED}")


@pytest.mark.parametrize("order", ["details first", "details in the middle"])
def test_sglang_takes_the_last_line_with_the_per_request_lists(tmp_path, order):
    details = {**BASE, "backend": "sglang", "request_rate": 2.0}
    plain = {"backend": "sglang", "request_rate": 9.0}  # a run written without --output-details
    lines = [details, plain] if order == "details first" else [plain, details, plain]
    path = _write(tmp_path, "\n".join(json.dumps(x) for x in lines) + "\n", "runs.jsonl")
    b = read_bench_result(path)
    assert b.tool == "sglang bench_serving" and b.request_rate == 2.0 and b.input_lens.tolist() == [100, 200, 300]


def test_defaults_of_optional_fields(tmp_path):
    path = _write(tmp_path, BASE)
    b = read_bench_result(path)
    assert b.path == path and b.tool == "vllm bench serve"
    assert b.request_rate == math.inf and b.burstiness == 1.0 and b.max_concurrency is None
    assert b.errors == ["", "", ""] and b.ok.tolist() == [True, True, True] and b.num_failed == 0
    assert b.start_times_s is None and b.identity == {} and b.reported == {}
    assert b.input_lens.dtype == np.int64 and b.output_lens.dtype == np.int64
    assert b.input_lens.tolist() == [100, 200, 300] and b.output_lens.tolist() == [3, 1, 2]
    assert b.ttfts_s.tolist() == [0.05, 0.1, 0.2] and [x.tolist() for x in b.itls_s] == [[0.01, 0.03], [], [0.02]]


@pytest.mark.parametrize("rate, expected", [("Infinity", math.inf), (" INF ", math.inf), (math.inf, math.inf),
                                            (4, 4.0)])
def test_request_rate_may_be_infinite(tmp_path, rate, expected):
    assert read_bench_result(_write(tmp_path, {**BASE, "request_rate": rate})).request_rate == expected


@pytest.mark.parametrize("burstiness, expected", [(0, 1.0), (None, 1.0), (0.5, 0.5)])
def test_burstiness_zero_or_null_means_poisson(tmp_path, burstiness, expected):
    assert read_bench_result(_write(tmp_path, {**BASE, "burstiness": burstiness})).burstiness == expected


@pytest.mark.parametrize("conc, expected", [(0, None), (None, None), (8, 8), (4.0, 4), ("4", None)])
def test_max_concurrency(tmp_path, conc, expected):
    assert read_bench_result(_write(tmp_path, {**BASE, "max_concurrency": conc})).max_concurrency == expected


def test_identity_keeps_every_named_field(tmp_path):
    ident = {"backend": "vllm", "model_id": "m", "tokenizer_id": "t", "date": "20261130-120000", "version": "1",
             "vllm_version": "0.9.0", "sglang_version": "0.4", "dataset_name": "sharegpt", "num_prompts": 3}
    b = read_bench_result(_write(tmp_path, {**BASE, **ident, "model": "not kept"}))
    assert b.identity == ident


def test_error_text_fails_a_request_even_with_a_ttft(tmp_path):
    b = read_bench_result(_write(tmp_path, {**BASE, "errors": ["", "reset", None]}))
    assert b.errors == ["", "reset", ""] and b.ok.tolist() == [True, False, True] and b.num_failed == 1
    assert b.ttfts_s[0] == 0.05 and math.isnan(b.ttfts_s[1]) and b.ttfts_s[2] == 0.2
    assert b.requests().prompt_tokens.tolist() == [100, 300]


def test_null_ttft_without_error_is_a_failed_request(tmp_path):
    b = read_bench_result(_write(tmp_path, {**BASE, "ttfts": [0.05, None, 0.2]}))
    assert math.isnan(b.ttfts_s[1]) and b.ok.tolist() == [True, False, True]


def test_start_times_are_relative_to_the_earliest(tmp_path):
    b = read_bench_result(_write(tmp_path, {**BASE, "start_times": [2.5, 2.0, 3.25]}))
    assert b.start_times_s.tolist() == [0.5, 0.0, 1.25]
    r = b.requests()  # replayed in send order
    assert r.arrival_s.tolist() == [0.0, 0.5, 1.25] and r.prompt_tokens.tolist() == [200, 100, 300]


def test_replay_shift_when_the_earliest_request_failed(tmp_path):
    # the failed request sent first: the replay starts at the first finished one. In floats
    # 0.3 - 0.1 = 0.19999999999999998 (shifting twice, (0.3 + 0.1) - (0.1 + 0.1), would give 0.2)
    b = read_bench_result(_write(tmp_path, {**BASE, "start_times": [0.0, 0.1, 0.3], "errors": ["x", "", ""]}))
    r = b.requests()
    assert r.arrival_s.tolist() == [0.0, 0.19999999999999998] and r.prompt_tokens.tolist() == [200, 300]


def test_replay_of_one_and_of_no_finished_request(tmp_path):
    one = read_bench_result(_write(tmp_path, {**BASE, "start_times": [0.0, 1.0, 2.0], "errors": ["x", "", "y"]}))
    r = one.requests()
    assert r.arrival_s.tolist() == [0.0] and r.prompt_tokens.tolist() == [200] and r.output_tokens.tolist() == [1]
    none = read_bench_result(_write(tmp_path, {**BASE, "start_times": [0.0, 1.0, 2.0], "errors": ["x", "y", "z"]}))
    assert len(none.requests()) == 0


def test_replay_order_of_equal_send_times_is_the_file_order(tmp_path):
    # 20 requests sent at two instants, alternating; numpy's default (unstable) sort reorders ties
    n = 20
    raw = {"input_lens": list(range(1, n + 1)), "output_lens": [1] * n, "ttfts": [0.1] * n, "itls": [[]] * n,
           "start_times": [float(i % 2) for i in range(n)]}
    r = load_trace(_write(tmp_path, raw), "bench")
    assert r.prompt_tokens.tolist() == list(range(1, n + 1, 2)) + list(range(2, n + 1, 2))
    assert r.arrival_s.tolist() == [0.0] * 10 + [1.0] * 10


def test_read_as_utf8_whatever_the_locale(tmp_path):
    path = _write(tmp_path, json.dumps({**BASE, "model_id": "модель"}, ensure_ascii=False))
    old = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # an ASCII locale: the default text encoding is ASCII
    try:
        b = read_bench_result(path)
    finally:
        locale.setlocale(locale.LC_CTYPE, old)
    assert b.identity == {"model_id": "модель"}
