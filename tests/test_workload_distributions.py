"""Generated workloads against the distributions they name (issue 19): independent oracles.

Every check draws a fixed-seed sample and compares it with scipy.stats' own distribution built
from the user's parameters, never with the generator's expression:
- Kolmogorov-Smirnov: the sample must not be rejected at p < 1e-3 (for a random seed the check
  would fail spuriously one time in a thousand; the seed is fixed, so it is deterministic).
- mean: within 4 standard errors (sd / sqrt(n)) of the named mean; a variance the same way with
  the standard error of the sample variance, sqrt((mu4 - sd^4) / n).
Each bound is far below the shift a wrong parameter causes (a dropped lognormal mean correction
moves the mean by exp(sigma^2 / 2): +38% at sigma 0.8; doubled Poisson gaps double the mean gap).
"""
import math

import numpy as np
import pytest
from scipy import stats

from simulator.workload import LengthDist, arrival_times, synthetic_requests
from simulator.workload.sharegpt import load_sharegpt

N = 20_000
KS_P_MIN = 1e-3


def _mean_within(sample: np.ndarray, mean: float, sd: float, k: float = 4.0) -> None:
    se = sd / math.sqrt(len(sample))
    assert abs(sample.mean() - mean) < k * se, f"sample mean {sample.mean():.5g} vs {mean:.5g} (4 SE = {k * se:.3g})"


def _var_within(sample: np.ndarray, dist, k: float = 4.0) -> None:
    var = dist.var()
    mu4 = dist.expect(lambda x: (x - dist.mean()) ** 4)
    se = math.sqrt((mu4 - var**2) / len(sample))
    assert abs(sample.var() - var) < k * se, f"sample var {sample.var():.5g} vs {var:.5g} (4 SE = {k * se:.3g})"


# ---- lengths ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mean,sigma", [(500.0, 0.8), (2000.0, 0.5)])
def test_lognormal_lengths_have_the_named_mean(mean, sigma):
    """lognormal:MEAN:SIGMA means E[X] = MEAN, so mu = ln(MEAN) - sigma^2/2 (lognormal mean
    exp(mu + sigma^2/2)). Rounding to integers moves a value by <= 0.5 token: negligible here."""
    x = LengthDist.parse(f"lognormal:{mean:g}:{sigma}", field="prompt_tokens").sample(np.random.default_rng(7), N)
    named = stats.lognorm(s=sigma, scale=mean * math.exp(-sigma**2 / 2))
    assert named.mean() == pytest.approx(mean)
    _mean_within(x, mean, named.std())
    assert stats.kstest(x, named.cdf).pvalue > KS_P_MIN


def test_normal_and_uniform_lengths():
    rng = np.random.default_rng(11)
    x = LengthDist.parse("normal:1000:100", field="prompt_tokens").sample(rng, N)
    _mean_within(x, 1000, 100)
    assert abs(x.std() - 100) < 4 * 100 / math.sqrt(2 * N)  # SE of a normal sd: sd / sqrt(2n)
    u = LengthDist.parse("uniform:10:19", field="output_tokens").sample(rng, N)
    assert u.min() == 10 and u.max() == 19  # both ends inclusive
    counts = np.bincount(u - 10, minlength=10)
    assert stats.chisquare(counts).pvalue > KS_P_MIN  # equally likely integers 10..19


def test_zipf_lengths_capped_at_max():
    a, cap = 2.0, 50
    x = LengthDist.parse(f"zipf:{a:g}:{cap}", field="output_tokens").sample(np.random.default_rng(3), N)
    assert x.min() == 1 and x.max() == cap
    p1 = stats.zipf(a).pmf(1)  # P(X = 1) = 1 / zeta(a) = 6 / pi^2 at a = 2
    assert p1 == pytest.approx(6 / math.pi**2)
    frac = (x == 1).mean()
    assert abs(frac - p1) < 4 * math.sqrt(p1 * (1 - p1) / N)
    tail = stats.zipf(a).sf(cap - 1)  # P(X >= cap): every one of them becomes cap
    assert abs((x == cap).mean() - tail) < 4 * math.sqrt(tail * (1 - tail) / N)


def test_constant_length():
    assert (LengthDist.parse("512", field="prompt_tokens").sample(np.random.default_rng(0), 5) == 512).all()


# ---- arrivals ---------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [4.0, 50.0])
def test_poisson_gaps_are_exponential_with_mean_one_over_rate(rate):
    t = arrival_times(np.random.default_rng(5), N + 1, rate, "poisson", 1.0)
    assert t[0] == 0.0 and (np.diff(t) >= 0).all()
    gaps = np.diff(t)
    _mean_within(gaps, 1 / rate, 1 / rate)
    assert stats.kstest(gaps, stats.expon(scale=1 / rate).cdf).pvalue > KS_P_MIN
    # the arrival rate over the run is `rate` (vLLM bench serve's --request-rate)
    assert N / t[-1] == pytest.approx(rate, rel=4 / math.sqrt(N))


@pytest.mark.parametrize("burstiness", [0.25, 1.0, 3.0])
def test_gamma_gaps_have_shape_burstiness_and_mean_one_over_rate(burstiness):
    """vLLM bench serve: gamma(shape=burstiness, scale=1/(rate*burstiness)): mean 1/rate and
    variance 1/(rate^2 * burstiness), so burstiness < 1 is burstier than Poisson."""
    rate = 8.0
    gaps = np.diff(arrival_times(np.random.default_rng(9), N + 1, rate, "gamma", burstiness))
    named = stats.gamma(a=burstiness, scale=1 / (rate * burstiness))
    assert named.mean() == pytest.approx(1 / rate) and named.var() == pytest.approx(1 / (rate**2 * burstiness))
    _mean_within(gaps, 1 / rate, named.std())
    _var_within(gaps, named)
    assert stats.kstest(gaps, named.cdf).pvalue > KS_P_MIN


def test_infinite_rate_and_synthetic_table():
    assert (arrival_times(np.random.default_rng(0), 4, math.inf, "poisson", 1.0) == 0).all()
    req = synthetic_requests(np.random.default_rng(1), num_requests=2000, rate=10.0, arrival="poisson", burstiness=1.0,
                             prompt=LengthDist.parse("uniform:5:9", field="p"), output=LengthDist.parse("3", field="o"))
    assert len(req.arrival_s) == 2000 and req.prompt_tokens.min() == 5 and req.prompt_tokens.max() == 9
    assert (req.output_tokens == 3).all()
    _mean_within(np.diff(req.arrival_s), 0.1, 0.1)


def test_sharegpt_poisson_arrivals(tmp_path):
    """ShareGPT replay at a rate: exponential gaps of mean 1/rate, first arrival at 0."""
    n, rate = 4001, 20.0
    conv = '{"conversations": [{"from": "human", "value": "hi there"}, {"from": "gpt", "value": "hello"}]}'
    path = tmp_path / "sg.json"
    path.write_text("[" + ",".join([conv] * n) + "]")
    req = load_sharegpt(path, None, rate, seed=3)
    gaps = np.diff(req.arrival_s)
    assert req.arrival_s[0] == 0.0 and len(gaps) == n - 1
    _mean_within(gaps, 1 / rate, 1 / rate)
    assert stats.kstest(gaps, stats.expon(scale=1 / rate).cdf).pvalue > KS_P_MIN
