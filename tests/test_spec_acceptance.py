"""Acceptance models: closed forms (Leviathan et al.) and sampling within its error."""
import json
import math

import numpy as np
import pytest

from simulator.errors import ServesimError
from simulator.speculative.acceptance import (
    HistogramAcceptance,
    IidAcceptance,
    PositionalAcceptance,
    expected_emitted,
    load_histogram,
    parse_rates,
)
from simulator.speculative.speculator import SpecStats, Speculator


def leviathan(alpha: float, gamma: int) -> float:
    return (1 - alpha ** (gamma + 1)) / (1 - alpha)


def pmf_tokens(survival, gamma):
    """P(emitted = k + 1) for k = 0..gamma from P(a >= j)."""
    s = [survival(j) for j in range(gamma + 1)] + [0.0]
    return np.array([s[k] - s[k + 1] for k in range(gamma + 1)])


def assert_mean_within(samples_tokens, pmf, expected, sigmas=4.0):
    k = np.arange(1, len(pmf) + 1)
    var = float(np.dot(pmf, k**2) - np.dot(pmf, k) ** 2)
    err = sigmas * math.sqrt(var / len(samples_tokens))
    assert abs(samples_tokens.mean() - expected) <= err, (samples_tokens.mean(), expected, err)


@pytest.mark.parametrize("alpha,gamma", [(0.8, 4), (0.6, 2), (0.9, 8), (0.5, 1)])
def test_iid_closed_form_and_sampled_mean(alpha, gamma):
    model = IidAcceptance(alpha)
    assert expected_emitted(model, gamma) == pytest.approx(leviathan(alpha, gamma), rel=1e-12)
    a = model.sample(np.random.default_rng(7), 200_000, gamma)
    assert a.min() >= 0 and a.max() <= gamma
    assert_mean_within(a + 1, pmf_tokens(model.survival, gamma), leviathan(alpha, gamma))


def test_iid_edges():
    rng = np.random.default_rng(0)
    assert (IidAcceptance(1.0).sample(rng, 5, 3) == 3).all()
    assert (IidAcceptance(0.0).sample(rng, 5, 3) == 0).all()
    with pytest.raises(ServesimError, match="acceptance_rate"):
        IidAcceptance(1.2)


@pytest.mark.parametrize("b", [1, 4, 16])
def test_min_advance_is_alpha_to_the_b(b):
    alpha, gamma, iters = 0.8, 4, 30_000
    stats = SpecStats(IidAcceptance(alpha), gamma, "min")
    spec = Speculator(gamma_max=gamma, policy="fixed", advance="min", acceptance=IidAcceptance(alpha),
                      rng=np.random.default_rng(3), stats=stats)
    tokens = np.array([spec.accepted(b, gamma)[0] + 1 for _ in range(iters)])
    expected = leviathan(alpha**b, gamma)
    assert stats.expected(gamma, b) == pytest.approx(expected, rel=1e-12)
    assert_mean_within(tokens, pmf_tokens(lambda j: alpha ** (b * j), gamma), expected)
    a = spec.accepted(b, gamma)
    assert (a == a[0]).all()  # the whole batch advances together


def test_positional_rates():
    rates = (0.9, 0.7, 0.5)
    model = PositionalAcceptance(rates)
    # survival: products of the conditional rates; the last rate repeats
    assert [model.survival(j) for j in range(5)] == pytest.approx([1, 0.9, 0.63, 0.315, 0.1575])
    gamma = 4
    a = model.sample(np.random.default_rng(1), 200_000, gamma)
    expected = 1 + 0.9 + 0.63 + 0.315 + 0.1575
    assert expected_emitted(model, gamma) == pytest.approx(expected)
    assert_mean_within(a + 1, pmf_tokens(model.survival, gamma), expected)
    # constant rates are the i.i.d. model
    assert expected_emitted(PositionalAcceptance((0.8,)), 4) == pytest.approx(leviathan(0.8, 4))
    assert parse_rates("0.9, 0.8,0.7") == (0.9, 0.8, 0.7)
    with pytest.raises(ServesimError, match="acceptance_position_rates"):
        parse_rates("0.9,x")
    with pytest.raises(ServesimError, match="acceptance_position_rates"):
        PositionalAcceptance((0.9, 1.5))


def test_histogram_files_and_truncation(tmp_path):
    counts = [10, 20, 30, 40]  # accepted 0..3 measured at gamma_h = 3
    js = tmp_path / "h.json"
    js.write_text(json.dumps(counts))
    csv_file = tmp_path / "h.csv"
    csv_file.write_text("accepted_tokens,count\n3,40\n0,10\n1,20\n2,30\n")
    obj = tmp_path / "o.json"
    obj.write_text(json.dumps({"0": 10, "1": 20, "2": 30, "3": 40}))
    for path in (js, csv_file, obj):
        model = load_histogram(path)
        assert model.pmf.tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])
        assert [model.survival(j) for j in range(6)] == pytest.approx([1.0, 0.9, 0.7, 0.4, 0.0, 0.0])
    model = load_histogram(js)
    assert expected_emitted(model, 3) == pytest.approx(1 + 0.9 + 0.7 + 0.4)
    assert expected_emitted(model, 1) == pytest.approx(1.9)  # proposing 1 token: min(a, 1)
    a = model.sample(np.random.default_rng(2), 100_000, 2)
    assert a.max() == 2
    assert_mean_within(a + 1, pmf_tokens(model.survival, 2), 2.6)


def test_histogram_errors(tmp_path):
    with pytest.raises(ServesimError, match="does not exist"):
        load_histogram(tmp_path / "missing.json")
    bad = tmp_path / "bad.csv"
    bad.write_text("accepted_tokens,count\none,3\n")
    with pytest.raises(ServesimError, match="not an accepted-length histogram"):
        load_histogram(bad)
    with pytest.raises(ServesimError, match="non-negative"):
        HistogramAcceptance([0, 0])
