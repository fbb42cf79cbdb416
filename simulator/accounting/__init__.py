"""Accounting: what a run costs beyond time: Kinetics eFLOPs (kinetics.py), energy and price
(energy.py) with the device's power model (power.py), from the run's records.

Owns the cost formulas and their sources. Reads what the engine records; never prices time
(cost/) or computes latency metrics (results/).
"""
from simulator.accounting.energy import money_sections, step_energy_w
from simulator.accounting.kinetics import (
                                           ATTENTION_MODES,
                                           COUNTINGS,
                                           PAPER_INTENSITY,
                                           PAPER_PEAK_FLOPS,
                                           PARAMS_CONVENTIONS,
                                           KineticsInputs,
                                           kinetics_cost,
                                           kinetics_section,
                                           params_per_token,
)
from simulator.accounting.power import PowerModel, power_path

__all__ = ["ATTENTION_MODES", "COUNTINGS", "PAPER_INTENSITY", "PAPER_PEAK_FLOPS", "PARAMS_CONVENTIONS", "params_per_token", "KineticsInputs", "kinetics_cost",
           "kinetics_section", "money_sections", "step_energy_w", "PowerModel", "power_path"]
