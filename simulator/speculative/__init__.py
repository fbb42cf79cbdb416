"""Speculative decoding as a component: acceptance models (acceptance.py), the per-iteration
speculator (speculator.py), its decode set (decode_set.py), the draft + verify step cost
(cost.py) and the composition from a Scenario (setup.py).

Owns everything a draft model changes. Not here: the scheduler and engine loop it plugs into
(engine/), the target's and draft's own step costs (cost/).
"""
from simulator.speculative.acceptance import PositionalAcceptance, parse_rates
from simulator.speculative.setup import Speculation, baseline_comparison

__all__ = ["PositionalAcceptance", "Speculation", "baseline_comparison", "parse_rates"]
