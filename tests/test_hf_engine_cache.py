"""profiles/hf_engine.py passes the KV cache under the name the installed transformers' forward
takes (`cache` where it exists, else `past_key_values`), so serving and engine-step timing raise
no FutureWarning (issue 18: `past_key_values` is deprecated and goes in transformers 5.40), and
the installed transformers lies in the range pyproject's `profile` extra declares."""
from __future__ import annotations

import importlib.util
import inspect
import tomllib
import warnings
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch is not installed (pip install 'servesim[profile]')")
if importlib.util.find_spec("transformers") is None:
    pytest.skip("transformers is not installed (pip install 'servesim[profile]')", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = dict(hidden_size=64, intermediate_size=128, num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                   vocab_size=256, num_hidden_layers=2, max_position_embeddings=256)


def test_cache_argument_matches_the_forward_signature():
    from profiles.hf_engine import _cache_kwarg, build_model

    model = build_model(TINY_CONFIG)
    params = inspect.signature(type(model).forward).parameters
    assert _cache_kwarg(type(model)) == ("cache" if "cache" in params else "past_key_values")
    assert _cache_kwarg(type(model)) in params


def test_serving_and_step_timing_raise_no_future_warning():
    from profiles.hf_engine import build_model, serve_static, time_engine_steps
    from profiles.timers import TimingPlan

    model = build_model(TINY_CONFIG)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        run = serve_static(model, num_requests=2, batch_size=2, prompt_tokens=5, output_tokens=3)
        rows = time_engine_steps(model, decode_points=((2, 5),), prefill_points=((1, 4),),
                                 plan=TimingPlan(warmup=1, min_repeats=2, max_repeats=2, budget_s=0.01))
    assert len(run.decode_step_s) == 2 and [r.op for r in rows] == ["engine_decode", "engine_prefill"]


def test_installed_transformers_is_in_the_declared_range():
    from importlib.metadata import version

    from packaging.requirements import Requirement

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["profile"]
    req = next(Requirement(r) for r in extra if r.startswith("transformers"))
    assert req.specifier.contains(version("transformers")), (str(req), version("transformers"))
    assert any(s.operator == "<" for s in req.specifier), "the transformers range needs an upper bound"
