"""Property-based fuzzing (hypothesis, fixed seed, bounded examples): the scenario parser takes any
TOML-like dict and either builds a Scenario or raises ServesimError (one line, naming the field);
`simulate` on random small valid scenarios never crashes and accounts for every request."""
import math

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from simulator.errors import ServesimError  # noqa: E402
from simulator.results import build_summary  # noqa: E402
from simulator.run import simulate  # noqa: E402
from simulator.scenario import SCENARIO_KEYS, Scenario, parse_value, scenario_from_dict  # noqa: E402

FUZZ = settings(max_examples=300, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
values = st.one_of(st.none(), st.booleans(), st.integers(-10**15, 10**15), st.floats(allow_nan=True),
                   st.text(max_size=12), st.lists(st.integers(0, 3), max_size=3),
                   st.sampled_from(["inf", "-inf", "nan", "1e12", "lognormal:inf:1", "uniform:9:3", "qwen3-0.6b",
                                    "h100-sxm", "vllm", "dense", "h2o", "0.9", "-1", ""]))


@FUZZ
@given(st.dictionaries(st.sampled_from(SCENARIO_KEYS + ("modle", "seed ")), values, max_size=4))
def test_the_scenario_parser_accepts_or_refuses_in_one_line(raw):
    try:
        s = scenario_from_dict(raw, origin="fuzz.toml")
    except ServesimError as exc:
        msg = str(exc)
        assert msg.startswith("fuzz.toml: ") and "\n" not in msg
        return
    assert isinstance(s, Scenario)
    for name in SCENARIO_KEYS:  # an accepted scenario holds no NaN and no infinity but rate's
        v = getattr(s, name)
        if isinstance(v, float) and name != "rate":
            assert math.isfinite(v), name


@FUZZ
@given(st.sampled_from(SCENARIO_KEYS), st.text(max_size=10))
def test_vary_values_parse_or_refuse(key, text):
    try:
        value = parse_value(key, text, where=f"--vary {key}")
        Scenario().replace(**{key: value})
    except ServesimError as exc:
        assert "\n" not in str(exc)


small = st.fixed_dictionaries({
    "model": st.sampled_from(["qwen3-0.6b", "llama-3-8b", "mixtral-8x7b", "gemma-2-9b", "deepseek-v2-lite"]),
    "hardware": st.sampled_from(["h100-sxm", "a100-80gb", "l4", "h200"]),
    "scheduler": st.sampled_from(["static", "vllm", "sarathi"]),
    "num_requests": st.integers(1, 12),
    "rate": st.sampled_from([0.5, 8.0, math.inf]),
    "prompt_tokens": st.sampled_from(["1", "17", "uniform:1:300", "lognormal:200:1"]),
    "output_tokens": st.sampled_from(["1", "2", "uniform:1:80"]),
    "block_size": st.sampled_from([1, 16, 32]),
    "max_num_seqs": st.integers(1, 16),
    "chunk_size": st.sampled_from([16, 512]),
    "gpu_memory_utilization": st.sampled_from([0.2, 0.5, 0.9]),
    "samples_per_prompt": st.integers(1, 3),
    "seed": st.integers(0, 3),
})


@settings(max_examples=40, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(small)
def test_random_small_scenarios_simulate_without_crashing(raw):
    try:
        s = scenario_from_dict(raw, origin="fuzz")
        summary = build_summary(simulate(s))
    except ServesimError as exc:  # a refused setting (does not fit, SLO, ...) is one line
        assert "\n" not in str(exc)
        return
    m = summary["metrics"]
    total = raw["num_requests"] * raw["samples_per_prompt"]
    assert m["completed"] + m.get("failed", 0) == total
