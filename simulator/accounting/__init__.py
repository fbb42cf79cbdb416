"""Accounting: what a run costs beyond time: Kinetics eFLOPs (kinetics.py), energy and price
(energy.py), from the run's records.

Owns the cost formulas and their sources. Reads what the engine records; never prices time
(cost/) or computes latency metrics (results/).
"""
from simulator.accounting.energy import money_sections
from simulator.accounting.kinetics import (
                                           ATTENTION_MODES,
                                           COUNTINGS,
                                           PAPER_INTENSITY,
                                           PAPER_PEAK_FLOPS,
                                           KineticsInputs,
                                           kinetics_cost,
                                           kinetics_section,
)

__all__ = ["ATTENTION_MODES", "COUNTINGS", "PAPER_INTENSITY", "PAPER_PEAK_FLOPS", "KineticsInputs", "kinetics_cost",
           "kinetics_section", "money_sections"]
