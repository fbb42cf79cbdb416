"""Workload inputs at their exact boundaries, and the request table's own checks (issue 19:
gaps found by mutation testing, benchmarks/mutation.py). Every boundary is tried on both sides;
every error is compared as the whole one-line message.
"""
import math

import numpy as np
import pytest

from simulator.errors import ServesimError
from simulator.workload import LengthDist, RequestArrays, arrival_times, synthetic_requests

RANGE_HELP = ("(constant: an integer >= 1; uniform: 1 <= LOW <= HIGH; normal/lognormal: MEAN >= 1, "
              "0 <= SIGMA (lognormal <= 10); zipf: A > 1, MAX >= 1)")
NOT_A_LENGTH = ("is not a length: use an integer, or uniform:LOW:HIGH, normal:MEAN:STD, "
                "lognormal:MEAN:SIGMA (mean tokens, sigma of log), zipf:A:MAX (A > 1)")


@pytest.mark.parametrize("text, parsed", [
    ("1", ("constant", 1, 0)),
    ("512", ("constant", 512, 0)),
    ("uniform:1:1", ("uniform", 1, 1)),
    ("uniform:1:1000000000", ("uniform", 1, 1e9)),  # the largest parameter allowed
    ("normal:1:0", ("normal", 1, 0)),
    ("lognormal:1:0", ("lognormal", 1, 0)),
    ("lognormal:1:10", ("lognormal", 1, 10)),
    ("zipf:1.01:1", ("zipf", 1.01, 1)),
])
def test_lengths_accepted_at_the_boundary(text, parsed):
    assert LengthDist.parse(text, field="prompt_tokens") == LengthDist(*parsed)


@pytest.mark.parametrize("text, kind", [
    ("0", "constant"), ("1.5", "constant"),
    ("uniform:0:5", "uniform"), ("uniform:5:4", "uniform"),
    ("normal:0:5", "normal"), ("normal:5:-1", "normal"),
    ("lognormal:0:1", "lognormal"), ("lognormal:5:10.5", "lognormal"), ("lognormal:5:-0.1", "lognormal"),
    ("zipf:1:5", "zipf"), ("zipf:2:0", "zipf"),
])
def test_lengths_rejected_out_of_range(text, kind):
    with pytest.raises(ServesimError) as e:
        LengthDist.parse(text, field="output_tokens")
    assert str(e.value) == f"output_tokens={text!r}: parameters out of range for {kind} {RANGE_HELP}"


@pytest.mark.parametrize("text", ["uniform:1:2e9", "uniform:1:inf", "normal:nan:1", "2000000000"])
def test_lengths_rejected_beyond_the_token_limit(text):
    with pytest.raises(ServesimError) as e:
        LengthDist.parse(text, field="prompt_tokens")
    assert str(e.value) == f"prompt_tokens={text!r}: parameters must be finite numbers up to 1e+09 tokens"


@pytest.mark.parametrize("text", ["", "abc", "uniform:1", "foo:1:2", "uniform:a:2", "normal:1:2:3", "constant:5:0"])
def test_not_a_length(text):
    with pytest.raises(ServesimError) as e:
        LengthDist.parse(text, field="prompt_tokens")
    assert str(e.value) == f"prompt_tokens={text!r} {NOT_A_LENGTH}"


@pytest.mark.parametrize("text", ["512", "uniform:1:9", "normal:100:7.5", "lognormal:1024:0.8", "zipf:1.5:300"])
def test_str_round_trips(text):
    d = LengthDist.parse(text, field="x")
    assert str(d) == text and LengthDist.parse(str(d), field="x") == d


def test_unknown_arrival_process():
    with pytest.raises(ServesimError) as e:
        arrival_times(np.random.default_rng(0), 3, 1.0, "weibull", 1.0)
    assert str(e.value) == "arrival='weibull'; allowed: poisson, gamma"


def test_synthetic_requests_draws_gamma_gaps_and_random_outputs():
    req = synthetic_requests(np.random.default_rng(2), num_requests=4000, rate=10.0, arrival="gamma", burstiness=0.5,
                             prompt=LengthDist.parse("7", field="p"), output=LengthDist.parse("uniform:1:3", field="o"))
    gaps = np.diff(req.arrival_s)
    assert abs(gaps.var() - 1 / (10.0**2 * 0.5)) < 0.2 * 0.02  # gamma variance 1/(rate^2 k), within 20%
    assert set(req.output_tokens.tolist()) == {1, 2, 3} and (req.prompt_tokens == 7).all()


# ---- RequestArrays -------------------------------------------------------------------------------
def table(**kw):
    cols = {"arrival_s": np.array([0.0, 1.0]), "prompt_tokens": np.array([5, 6]), "output_tokens": np.array([2, 3])}
    cols.update(kw)
    return RequestArrays(**cols)


@pytest.mark.parametrize("kw, message", [
    ({"group": np.array([0])}, "group column has 1 rows, expected 2"),
    ({"prefix": [()]}, "prefix column has 1 rows, expected 2"),
    ({"prompt_tokens": np.array([5])}, "request columns differ in length: arrival_s=2, prompt_tokens=1, output_tokens=2"),
    ({"output_tokens": np.array([5, 6, 7])},
     "request columns differ in length: arrival_s=2, prompt_tokens=2, output_tokens=3"),
    ({"prompt_tokens": np.array([5, 0])}, "prompt_tokens and output_tokens must be >= 1 for every request"),
    ({"output_tokens": np.array([0, 3])}, "prompt_tokens and output_tokens must be >= 1 for every request"),
    ({"arrival_s": np.array([0.0, math.inf])}, "arrival_s must be finite and >= 0 for every request"),
    ({"arrival_s": np.array([-1.0, 0.0])}, "arrival_s must be finite and >= 0 for every request"),
    ({"arrival_s": np.array([1.0, 0.5])}, "arrival_s must be sorted (non-decreasing)"),
])
def test_request_table_checks(kw, message):
    with pytest.raises(ServesimError) as e:
        table(**kw)
    assert str(e.value) == message


def test_request_table_accepts_valid_rows():
    t = table(group=np.array([0, 0]), prefix=[(), ()], arrival_s=np.array([0.0, 0.0]))
    assert len(t) == 2
    assert len(RequestArrays(np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64))) == 0


def test_fan_out_repeats_rows_and_marks_group_leaders():
    t = RequestArrays(np.array([0.0, 2.0]), np.array([10, 20]), np.array([1, 1]))
    f = t.fan_out(3, np.array([4, 5, 6, 7, 8, 9], dtype=np.int32))
    assert f.arrival_s.tolist() == [0.0, 0.0, 0.0, 2.0, 2.0, 2.0]
    assert f.prompt_tokens.tolist() == [10, 10, 10, 20, 20, 20]
    assert f.output_tokens.tolist() == [4, 5, 6, 7, 8, 9] and f.output_tokens.dtype == np.int64
    assert f.group.tolist() == [0, 0, 0, 3, 3, 3] and f.group.dtype == np.int64


def test_from_columns_sorts_stably_shifts_and_casts():
    n = 40  # > 16 equal keys: an unstable sort would reorder them
    arrival = [5.0] * n + [4.5]
    prompt = list(range(1, n + 1)) + [99]
    prefix = [(("c", p),) for p in prompt]
    t = RequestArrays.from_columns(arrival, prompt, [1.0] * (n + 1), prefix=prefix)
    assert t.arrival_s.tolist() == [0.0] + [0.5] * n  # sorted, the first moved to t = 0
    assert t.prompt_tokens.tolist() == [99] + list(range(1, n + 1))  # ties keep file order
    assert t.prefix == [(("c", p),) for p in t.prompt_tokens.tolist()]  # reordered with the rows
    assert t.arrival_s.dtype == np.float64 and t.prompt_tokens.dtype == np.int64 and t.output_tokens.dtype == np.int64
    ints = RequestArrays.from_columns([3, 7], [1.9, 2.2], [5, 6])
    assert ints.arrival_s.dtype == np.float64 and ints.arrival_s.tolist() == [0.0, 4.0]
    assert ints.prompt_tokens.tolist() == [1, 2] and ints.prompt_tokens.dtype == np.int64
    assert RequestArrays.from_columns([1.0], [2], [3]).prefix is None
    with pytest.raises(ServesimError) as e:
        RequestArrays.from_columns([0.0, 1.0], [1], [1, 2])
    assert str(e.value) == "request columns differ in length: 2, 1, 2"
    with pytest.raises(ServesimError) as e:
        RequestArrays.from_columns([0.0], [1], [1, 2])
    assert str(e.value) == "request columns differ in length: 1, 1, 2"
