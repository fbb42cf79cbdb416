"""Studies: questions answered by many runs: what-if comparisons (compare/), capacity planning
(plan/), test-time scaling sweeps (tts.py), roofline figures (roofline.py), and the resumable
task store they share (sweep_store.py).

Owns sweeps, searches and their documents and tables. Not here: one run (run.py), its summary
(results/).
"""
from simulator.studies.compare import compare_json, format_compare, merge_varies, run_compare, variant_scenarios
from simulator.studies.plan import (
                                    SearchSettings,
                                    Slo,
                                    default_store,
                                    disaggregated_json,
                                    format_disaggregated,
                                    format_plan,
                                    plan_disaggregated,
                                    plan_document,
                                    plan_json,
                                    plan_tasks,
                                    planning_base,
                                    run_sweep,
                                    short_cost_model,
)
from simulator.studies.roofline import format_figures, roofline_figures
from simulator.studies.sweep_store import SweepStore, import_ray
from simulator.studies.tts import TtsPoint, frontier, load_accuracy

__all__ = ["disaggregated_json", "format_disaggregated", "plan_disaggregated", "SearchSettings", "Slo", "SweepStore", "TtsPoint", "compare_json", "default_store", "format_compare",
           "format_figures", "format_plan", "frontier", "import_ray", "load_accuracy", "merge_varies",
           "plan_document", "plan_json", "plan_tasks", "planning_base", "roofline_figures", "run_compare", "run_sweep",
           "short_cost_model", "variant_scenarios"]
