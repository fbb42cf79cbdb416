"""A string field given another type says what the field holds: a length spec, one of the
choices, or a name/path, not one hint for all (scenario._STRING_HINTS)."""
import pytest

from simulator.errors import ServesimError
from simulator.scenario import Scenario


@pytest.mark.parametrize("field, value, allowed", [
    ("prompt_tokens", 128, 'a length string: N, uniform:LO:HI, normal:MEAN:STD, lognormal:MEAN:SIGMA or zipf:A:MAX '
                           '(e.g. "128")'),
    ("scheduler", 3, "a string, one of static, vllm, sarathi"),
    ("kv_cache_dtype", 8, "a string, one of fp32, bf16, fp16, fp8, int8, int4 (or unset)"),
    ("model", 5, "a non-empty string (a name or a path)"),
    ("acceptance_position_rates", [0.9], 'a string of comma-separated probabilities (e.g. "0.9,0.8,0.7"; a TOML list '
                                         'of numbers in a scenario file) (or unset)'),
    ("trace_format", 1, "a string, one of splitwise, azure, burstgpt, mooncake, sharegpt, bench, lengths (or unset)"),
    ("kv_transfer_overlap", 1, "a string, one of async, blocking"),
])
def test_type_error_names_what_the_field_holds(field, value, allowed):
    with pytest.raises(ServesimError) as e:
        Scenario(**{field: value})
    assert str(e.value) == f"{field}={value!r} is invalid; allowed: {allowed}"
