"""What-if comparison: the --vary grid and its variants (variants.py) and the delta table (table.py)."""
from simulator.studies.compare.table import format_compare
from simulator.studies.compare.variants import compare_json, merge_varies, run_compare, variant_scenarios

__all__ = ["compare_json", "format_compare", "merge_varies", "run_compare", "variant_scenarios"]
