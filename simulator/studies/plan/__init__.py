"""Capacity planning: one candidate's rate search (search.py), the sweep over candidates and the
plan document (sweep.py), and its table (table.py)."""
from simulator.studies.plan.disaggregated import disaggregated_json, format_disaggregated, plan_disaggregated
from simulator.studies.plan.search import SearchSettings, Slo
from simulator.studies.plan.sweep import default_store, plan_document, plan_json, plan_tasks, planning_base, run_sweep
from simulator.studies.plan.table import format_plan, short_cost_model

__all__ = ["disaggregated_json", "format_disaggregated", "plan_disaggregated", "SearchSettings", "Slo", "default_store", "format_plan", "plan_document", "plan_json", "plan_tasks",
           "planning_base", "run_sweep", "short_cost_model"]
