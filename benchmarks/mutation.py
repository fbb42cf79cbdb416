"""Mutation testing of the core packages with mutmut 3 (issue 19). Slow: not run in CI.

    pip install -e '.[test,mutation]'
    python benchmarks/mutation.py                      # every package below
    python benchmarks/mutation.py workload metrics     # some of them
    python benchmarks/mutation.py --jobs 2 --workdir /tmp/mut --keep

Never touches this checkout: the repository (simulator/, hardware/, profiles/, reports/, tests/,
pyproject.toml) is copied to a temporary directory and mutmut runs there, one package at a
time, with a [tool.mutmut] section written into the copy's pyproject.toml: the whole simulator
package is copied into mutmut's `mutants/` tree (so every import resolves inside the copy: pytest's
pythonpath = ["."] puts mutants/ first), `only_mutate` limits the mutations to the package's files, and
only the package's own test files run (PACKAGES below), so a package takes minutes on 2 cores.
mutmut itself only runs, per mutant, the tests that executed the mutated function.

Prints, per package: mutants, killed, survived (incl. "no tests": code no selected test runs),
timeout, equivalent (surviving mutants whose diff matches an EQUIVALENT entry, each with a one-line
reason), other (skipped, suspicious, segfault) and the score = (killed + timeout) / (killed +
timeout + survived);
then every surviving mutant with the line it changed. Per-package results are also saved as
JSON under <workdir>/results/ (kept with --keep).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPY = ("simulator", "hardware", "profiles", "reports", "tests", "pyproject.toml")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", "mutants", "*.egg-info")

# package -> (files mutated, as globs relative to the repository root; test files that judge them)
PACKAGES: dict[str, tuple[list[str], list[str]]] = {
    "workload": (["simulator/workload/synthetic.py", "simulator/workload/requests.py"],
                 ["tests/test_workload_distributions.py", "tests/test_workload_validation.py", "tests/test_traces.py"]),
    "traces": (["simulator/workload/traces.py", "simulator/workload/sharegpt.py", "simulator/workload/bench_results.py"],
               ["tests/test_traces.py", "tests/test_traces_real_files.py", "tests/test_sharegpt_bytes.py",
                "tests/test_malformed_files.py", "tests/test_bench.py", "tests/test_traces_mutation_oracles.py",
                "tests/test_sharegpt_oracles.py", "tests/test_bench_results_oracles.py"]),
    "metrics": (["simulator/results/metrics.py"], ["tests/test_metrics.py", "tests/test_metrics_oracles.py",
                                                   "tests/test_engine_stats_oracles.py",
                                                   "tests/test_streaming_accounting.py"]),
    "moe": (["simulator/moe/*"], ["tests/test_moe.py", "tests/test_moe_fetch_closed_form.py", "tests/test_moe_oracles.py",
                                  "tests/test_moe_setup_oracles.py"]),
    "speculative": (["simulator/speculative/*"],
                    ["tests/test_spec_decode.py", "tests/test_spec_acceptance.py", "tests/test_spec_adaptive_oracle.py",
                     "tests/test_spec_oracles.py", "tests/test_spec_reporting.py",
                     "tests/test_spec_summary_oracles.py"]),
    "schedulers": (["simulator/engine/schedulers.py", "simulator/engine/static_scheduler.py"],
                   ["tests/test_engine_golden.py", "tests/test_sarathi_chunk_cap.py", "tests/test_run_invariants.py",
                    "tests/test_best_of_n.py", "tests/test_prefix_cache.py", "tests/test_kv_policy.py",
                    "tests/test_static_scheduler_oracles.py", "tests/test_scheduler_admission_oracles.py",
                    "tests/test_engine_oracles.py"]),
    "engine": (["simulator/engine/block_pool.py", "simulator/engine/sequence_pool.py", "simulator/engine/decode_set.py",
                "simulator/engine/replica.py", "simulator/engine/memory_plan.py", "simulator/engine/kv_phases.py",
                "simulator/engine/recorder.py"],
               ["tests/test_engine_golden.py", "tests/test_run_invariants.py", "tests/test_best_of_n.py",
                "tests/test_kv_policy.py", "tests/test_sarathi_chunk_cap.py", "tests/test_prefix_cache.py",
                "tests/test_static_scheduler_oracles.py", "tests/test_scheduler_admission_oracles.py",
                "tests/test_engine_oracles.py", "tests/test_closed_forms.py", "tests/test_parallel.py",
                "tests/test_host_memory_bound.py"]),
    "kv": (["simulator/kv/*"], ["tests/test_kv_policy.py", "tests/test_kv_oracles.py",
                                "tests/test_static_scheduler_oracles.py", "tests/test_scheduler_admission_oracles.py"]),
    "cost": (["simulator/cost/*"], ["tests/test_closed_forms.py", "tests/test_profiled_cost_model.py",
                                    "tests/test_engine_overhead.py", "tests/test_device_calibration.py",
                                    "tests/test_engine_spec.py", "tests/test_cost_mutation_oracles.py",
                                    "tests/test_cost_choice_oracles.py", "tests/test_cost_profiled_oracles.py"]),
    "accounting": (["simulator/accounting/*"], ["tests/test_kinetics.py", "tests/test_energy.py",
                                                "tests/test_power_model.py",
                                                "tests/test_accounting_mutation_oracles.py"]),
    "planning": (["simulator/studies/plan/*"], ["tests/test_plan.py", "tests/test_plan_search.py",
                                                "tests/test_plan_replicas.py", "tests/test_plan_early_stop.py",
                                                "tests/test_plan_disaggregated.py", "tests/test_plan_mutation_oracles.py",
                                                "tests/test_plan_report_oracles.py", "tests/test_plan_sweep_oracles.py"]),
    "kv_features": (["simulator/engine/prefix_cache.py", "simulator/engine/kv_offload.py"],
                    ["tests/test_prefix_cache.py", "tests/test_scheduler_admission_oracles.py",
                     "tests/test_engine_oracles.py", "tests/test_kv_features_mutation_oracles.py"]),
    "streaming": (["simulator/engine/step_totals.py", "simulator/engine/gap_log.py", "simulator/engine/arrivals.py"],
                  ["tests/test_streaming_accounting.py", "tests/test_multi_turn_causality.py",
                   "tests/test_metrics_oracles.py", "tests/test_prefix_cache.py",
                   "tests/test_streaming_mutation_oracles.py"]),
}

_STABLE = "argsort kind='stable' -> 'STABLE': numpy reads sort kind names case-insensitively"
_TIES = "argsort of equal values in any order gives the same sorted values and cumulative counts"
_INT_COUNTS = "counts are integers either way (np.ones / int arrays), and weighted_percentiles casts to int64"
_NAN = "float('NAN') is nan"
_FLOAT_ANYWAY = "dtype dropped: the inputs are float (or become float in the arithmetic right after) either way"
_INT_SUM = "numpy sums integer arrays in int64 on 64-bit platforms by default"
_LRU_INIT = ("LRU recency: an expert is touched (so its last use is set) whenever it is fetched, before it can be "
             "evicted; only the order of ticks matters, not their start or step")

_NO_LIMIT = ("'no prompt limit': prompts are bounded by max_model_len and the KV pool far below 2**62 tokens, "
             "so any larger bound is the same")
_FORM_BATCH = "reassigned by _form_batch before anything reads it"

_EPOCH = ("epochs only have to differ from the values captured with pending events: any step that never "
          "repeats a value (+= 2, -= 1) invalidates them the same")
_GROUP_ONLY = "shared_tokens is read only for members of a sample group, which always pass it"
_COLLAPSE = "only merges the list of kept blocks into one array (memory); the concatenated values are the same"
_ORDER = "orders are only compared (latest admitted = largest): any increasing sequence gives the same victims"
_ORDERED_SET = "the OrderedDict is an ordered set: its values are never read"
_BLOCK_SIZE_SET = "block_size is then summed too, but out.update sets it to pools[0]'s right after"
_ANY_COUNT = ("_fold_moments returned already when no count is > 0 (n == 0), so the condition is true here "
              "either way")
_DUR_FLOAT = ("every use of the durations (sum, dot, bincount weights, start + duration) gives the same floats "
              "for int or float input")
# extra pytest arguments per package (slow tests that add nothing for that package's mutants)
PYTEST_ARGS: dict[str, list[str]] = {
    "traces": ["-k", "not calibrate"],  # test_bench's calibration fits take ~17 s each and only read bench files
}

# Mutants that cannot change behaviour, by mutmut's name; each with why (keep this list small
# and re-check it when the code changes: a name may then point at another mutation).
EQUIVALENT: list[tuple[str, str, str, str]] = [
    # (function of the mutant (its name without __mutmut_N; "" = any), a fragment of the old line, a fragment
    # of the new line, why the mutant cannot change behaviour). Matched on the diff, so renumbering is harmless.
    ("simulator.workload.requests.xǁRequestArraysǁ__post_init__", "if n > 1 and", "if n >= 1 and",
     "np.diff of a single arrival is empty, so the sortedness check passes either way"),
    ("", 'kind="stable"', 'kind="STABLE"', _STABLE),
    ("simulator.results.metrics.x_weighted_percentiles", 'kind="stable"', "kind=None", _TIES),
    ("simulator.results.metrics.x_weighted_percentiles", 'kind="stable"', "np.argsort(values, )", _TIES),
    ("simulator.results.metrics.x_weighted_percentiles", "dtype=np.int64", "np.asarray(counts, ", _INT_COUNTS),
    ("simulator.results.metrics.x__dist", "np.ones(len(values_ms), dtype=np.int64)", "np.ones(len(values_ms), ",
     _INT_COUNTS),
    ("", 'float("nan")', 'float("NAN")', _NAN),
    ("simulator.results.metrics.x_summarise_requests", "sum(dtype=np.int64)", ".sum(dtype=None)", _INT_SUM),
    ("simulator.results.metrics.x_summarise_requests", "sum(dtype=np.int64)", ".sum()", _INT_SUM),
    ("simulator.results.metrics.x_summarise_requests", "np.asarray(itl_s, dtype=np.float64) * 1e3",
     "np.asarray(itl_s, ", _FLOAT_ANYWAY),
    ("simulator.results.metrics.x_summarise_requests", "good &= scratch <= slo_ttft_ms",
     "good = scratch <= slo_ttft_ms", "the first SLO check: `good` is all True before it"),
    ("simulator.results.metrics.x_summarise_requests", "every = bool(ok.all())", "every = ",
     "`every` only skips indexing with an all-True mask, which gives the same arrays"),
    ("simulator.results.metrics.x_summarise_requests", "scratch if multi.all() else scratch[multi]", "and False",
     "a shortcut: scratch[multi] with an all-True mask is the same values"),
    ("simulator.results.metrics.x__sketch_dist", "return _dist(name, np.zeros(0))", "",
     "unreachable: a folded GapLog holds at least one gap, so gaps.total is never 0 here"),
    ("simulator.moe.routing.x_route_counts", "axis=2", "", "axis=2 dropped: it is the last axis, numpy's default"),
    ("simulator.moe.routing.x_load_routing", "s = -1.0", "s = -2.0",
     "the sentinel for a non-number exponent: any value <= 0 is rejected by the same check"),
    ("simulator.moe.routing.x_load_routing", "w = np.tile(1.0 /", "w = np.tile(2.0 /",
     "cap_inclusion normalises each row, so a constant factor cancels"),
    ("simulator.moe.routing.x_cap_inclusion", "need, 0.0)", "need, 1.0)",
     "the value outside `free` is never read (over = free & ..., out = where(free, pi, 1))"),
    ("simulator.moe.routing.x_cap_inclusion", "pi >= 1.0", "pi > 1.0",
     "pi exactly 1: capped or not, the expert ends at 1 and the rest share top_k - 1 in the same proportion"),
    ("simulator.moe.routing.x_cap_inclusion", "dtype=np.float64", "np.asarray(weights, ", _FLOAT_ANYWAY),
    ("simulator.moe.routing.x__from_file", "dtype=np.float64", '["expert_popularity"], ',
     "counts + 1e-9 makes the array float anyway"),
    ("simulator.moe.placement.xǁStaticPlacementǁ__init__", "dtype=np.float64", "np.asarray(popularity, ",
     "-flat and argsort give the same order for int or float popularity"),
    ("simulator.moe.placement.xǁLruPlacementǁ__init__", "self._last_", "", _LRU_INIT),
    ("simulator.moe.placement.xǁLruPlacementǁ__init__", "self._tick = 0", "self._tick = 1", _LRU_INIT),
    ("simulator.moe.placement.xǁLruPlacementǁupdate", "self._tick += 1", "self._tick += 2", _LRU_INIT),
    ("simulator.moe.placement.xǁLruPlacementǁupdate", "np.flatnonzero(over > 0)", "np.flatnonzero(over >= 0)",
     "a layer exactly at capacity evicts order[:0], nothing"),
    ("simulator.moe.placement.xǁLruPlacementǁupdate", "= False", "= None", "None written into a bool array is False"),
    ("simulator.moe.cost.xǁMoELayersǁstep", "counts.astype(np.float64)", "counts.astype(None)",
     "astype(None) is astype(float64)"),
    ("simulator.moe.cost.xǁMoELayersǁstep", "min(axis=1, initial=np.inf)", "min(axis=1, ",
     "min over experts: every row has experts, so `initial` never decides"),
    ("simulator.moe.cost.xǁMoELayersǁstep", "fetch_chain_l = np.where(n_fetch_l > 0", "",
     "a layer without fetches takes link_l from the outer where(n_fetch > 0, ...) whatever the inner branch or "
     "the condition's edge gives (last_fetch_gpu_l is inf exactly when nothing is fetched)"),
    ("simulator.moe.setup.x__auto_slots", "free // expert_bytes", "free / expert_bytes",
     "int(free / bytes) == free // bytes for positive free"),
    ("simulator.moe.setup.x_build_moe_cost_models", "[s.seed, 6]", "[s.seed, 7]",
     "another constant seed tag: a different, equally valid routing stream"),
    # schedulers (issue 19, helper issue19b)
    ("", "return 2**62", "return 3**62", _NO_LIMIT),
    ("", "return 2**62", "return 2**63", _NO_LIMIT),
    ("simulator.engine.schedulers.x__build_plan", "if pool.kv is not None else None", "or True",
     "SequencePool.kv_work returns None itself when the pool has no KV policy"),
    ("", "extra = pool.swap_in(lim.max_num_seqs) if pool.swapped else 0.0", "or True",
     "swap_in with nothing swapped returns 0.0"),
    ("simulator.engine.schedulers.xǁVllmSchedulerǁplan", "return None if extra == 0.0 else _build_plan(pool, [], 0, extra)", "",
     "unreachable else: vLLM's extra is swap-in seconds, which come with swapped-in decode members, so with no "
     "member and no prefill extra is 0.0"),
    ("simulator.engine.schedulers.xǁSarathiSchedulerǁplan", "return None if extra == 0.0 else _build_plan(pool, [], 0, extra)", "",
     "unreachable else in a run that ends: transfer seconds with no decode left means the latest-admitted member "
     "swapped itself out, so an earlier running prefill holds the rest and gets >= 1 token of the freed blocks"),
    ("simulator.engine.schedulers.xǁSarathiSchedulerǁplan", "if budget <= 0:", "if budget < 0:",
     "a 0 budget gives a 0-token chunk, which is neither grown nor scheduled"),
    ("simulator.engine.schedulers.xǁSarathiSchedulerǁplan", "whole=False", "whole=None", "None is falsy: the same as whole=False"),
    ("simulator.engine.schedulers.xǁSarathiSchedulerǁ_fit_chunk", "if chunk and pool.blocks_to_grow", "if chunk or pool.blocks_to_grow",
     "chunk 0 grows nothing either way; a chunk > 0 that fits its own blocks entered the loop only for the "
     "copies of its last chunk, so the condition is true either way"),
    ("simulator.engine.schedulers.xǁSarathiSchedulerǁ_fit_chunk", "if chunk and pool.blocks_to_grow(seq, chunk) > pool",
     ">= pool.blocks.num_free",
     "after the room cut, blocks_to_grow == num_free only for a cut chunk (< tokens left), which "
     "min(chunk, left - 1) leaves as it is"),
    ("simulator.engine.schedulers.xǁSarathiSchedulerǁ_fit_chunk", "chunk = min(chunk, seq.total - seq.computed - 1)", "chunk = None",
     "a None chunk is treated as 0: not grown (if chunk) and not scheduled (plan's if chunk)"),
    ("simulator.engine.static_scheduler.xǁStaticSchedulerǁ__init__", "self.max_prompt = self.max_output = self.step_index = 0", "", _FORM_BATCH),
    ("simulator.engine.static_scheduler.xǁStaticSchedulerǁ__init__", "self.batch_blocks: list[int] = []", "", _FORM_BATCH),
    ("simulator.engine.static_scheduler.xǁStaticSchedulerǁ__init__", "self.transient_blocks: list[int] = []", "", _FORM_BATCH),
    ("simulator.engine.static_scheduler.xǁStaticSchedulerǁcommit", "self.transient_blocks = []", "self.transient_blocks = None", _FORM_BATCH),
    ("simulator.engine.static_scheduler.xǁStaticSchedulerǁ__init__", "self._last_token_s = 0.0", "",
     "set by the prefill's commit (step 0) before any decode step reads it"),
    ("simulator.engine.static_scheduler.xǁStaticSchedulerǁ_form_batch", "max_p = max_o = 0", "max_p = max_o = 1",
     "prompts and outputs are >= 1 token (RequestArrays checks), so max(1, length) == length"),
    ("simulator.engine.static_scheduler.xǁStaticSchedulerǁbatch_blocks_needed", "return max(reserved, b * blocks_for(max_p)), 0", "b / blocks_for(max_p)",
     "in this branch (prompt kept whole) every policy's decode peak is >= the prompt, so reserved already "
     "covers b * blocks_for(prompt) and a smaller second term changes nothing"),
    # engine (issue 19, helper issue19b)
    ("simulator.engine.decode_set.xǁDecodeSetǁ__init__", 'getattr(policy, "compaction", "")', "",
     "a policy without a compaction attribute is not 'gather' whatever the default"),
    ("simulator.engine.decode_set.xǁDecodeSetǁ__init__", "self.k = 0", "self.k = 1",
     "every event and length is kept relative to k (c0 = ctx - k, end_k = k + remaining): a shift changes nothing"),
    ("simulator.engine.decode_set.xǁDecodeSetǁ__init__", "self._last_decode_s = 0.0", "",
     "read only for members that joined before a decode step, which sets it"),
    ("simulator.engine.decode_set.xǁDecodeSetǁ_end_phases", "keep < m.nblocks", "keep <= m.nblocks", "keep == nblocks frees blocks[keep:] = []"),
    ("simulator.engine.decode_set.xǁDecodeSetǁ_end_phases", "m.alloc_epoch += 1", "m.alloc_epoch -= 1", _EPOCH),
    ("simulator.engine.decode_set.xǁDecodeSetǁ_end_phases", "m.alloc_epoch += 1", "m.alloc_epoch += 2", _EPOCH),
    ("simulator.engine.decode_set.xǁDecodeSetǁremove", "m.epoch += 1", "", _EPOCH + "; remove() runs once per Member object"),
    ("simulator.engine.decode_set.xǁDecodeSetǁremove", "m.alloc_epoch += 1", "m.alloc_epoch += 2", _EPOCH),
    ("simulator.engine.decode_set.xǁDecodeSetǁ_enter_phase", "if ph.steps < INF:", "if ph.steps <= INF:",
     "an endless phase's event is filed at k + 2**62, a step no run reaches"),
    ("simulator.engine.decode_set.xǁDecodeSetǁadd", "shared_tokens: int = 0", "shared_tokens: int = 1", _GROUP_ONLY),
    ("simulator.engine.decode_set.xǁMemberǁ__init__", "shared_tokens: int = 0", "shared_tokens: int = 1", _GROUP_ONLY),
    ("simulator.engine.decode_set.xǁDecodeSetǁadd", "self._enter_phase(m, ctx if retained is None else retained)", "and False",
     "SequencePool always passes `retained` for a policy member (kept tokens, or the swapped-out count)"),
    ("simulator.engine.decode_set.xǁMemberǁ__init__", "self.budget = self.phase = None", "",
     "dense members never read budget or phase; policy members get both in add/_enter_phase"),
    ("simulator.engine.decode_set.xǁMemberǁ__init__", "self.read_slope = self.held_slope = 1", "= 2",
     "dense members only test the slopes for truth (retained, _leave_phase); policy members set them"),
    ("simulator.engine.recorder.xǁRunRecorderǁstep_arrays", "if len(self._blocks) > 1:", "", _COLLAPSE),
    ("simulator.engine.recorder.xǁRunRecorderǁhead_arrays", "if len(self._head) > 1:", "", _COLLAPSE),
    ("simulator.engine.sequence_pool.xǁPrefillSeqǁ__init__", "self.ncached = 0", "",
     "read only with prefix caching, where admit_cached sets it before the first commit"),
    ("simulator.engine.sequence_pool.xǁSequencePoolǁpreempt_one", "victim.computed, victim.ncached = [], [], 0, 0", "0, 1",
     "a preempted prefill is re-admitted through admit_cached, which sets ncached"),
    ("simulator.engine.sequence_pool.xǁSequencePoolǁpreempt_one", "member.order > above_order else above_order", "member.order >= above_order",
     "equal orders give best == above_order either way"),
    ("simulator.engine.sequence_pool.xǁSequencePoolǁ__init__", "self.swap_free = swap.num_blocks if swap else 0", "else 1",
     "swap_free is read only when a swap space exists"),
    ("simulator.engine.sequence_pool.xǁSequencePoolǁ__init__", 'getattr(blocks, "prefix_caching", False)', 'getattr(blocks, "prefix_caching", None)',
     "None and False are both falsy"),
    ("simulator.engine.sequence_pool.xǁSequencePoolǁ_finished", "self._committed -= self._promised.pop(req, 0)", "",
     "under reserve admission every request that finishes was promised at admission (samples too), so the "
     "default is never used"),
    ("simulator.engine.sequence_pool.xǁSequencePoolǁadmit_head", "self._next_order += 1", "self._next_order += 2", _ORDER),
    ("simulator.engine.sequence_pool.xǁSequencePoolǁswap_in", "self._next_order += 1", "self._next_order += 2", _ORDER),
    ("simulator.engine.sequence_pool.xǁSequencePoolǁadmit_head", "if self.reserve and seq.req not in self._promised:",
     "if self.reserve or seq.req not in self._promised:",
     "promises are read only under reserve admission (admissible returns True otherwise)"),
    ("simulator.engine.sequence_pool.xǁSequencePoolǁblocks_to_grow", "if seq.siblings else 0", "or True",
     "_sibling_copies returns 0 itself for a sequence without siblings"),
    ("simulator.engine.sequence_pool.xǁSequencePoolǁgrow", "if seq.siblings else 0", "or True",
     "_sibling_copies returns 0 itself for a sequence without siblings"),
    ("simulator.engine.sequence_pool.xǁSequencePoolǁ_spawn_samples", "seq.sibling_blocks = []", "seq.sibling_blocks = None",
     "the finished prefill object is dropped right after"),
    ("simulator.engine.sequence_pool.xǁSequencePoolǁ_start_decode", "shared_tokens: int = 0, budget=None", "shared_tokens: int = 1",
     "samples always pass shared_tokens; other members are not in a group"),
    ("simulator.engine.sequence_pool.xǁSequencePoolǁ_start_decode", "if keep < len(blocks):", "if keep <= len(blocks):",
     "keep == len(blocks) frees blocks[keep:] = []"),
    # kv (issue 19, helper issue19b)
    ("", "moved, 0.0)", "moved, )", "KvWork's last field (search_keys) defaults to 0.0"),
    ("simulator.kv.policies.xǁScissorhandsPolicyǁ__post_init__", "(self.drop >= 1 and self.drop != int(self.drop))",
     "(self.drop > 1 and", "drop == 1 is an integer, so the non-integer test is false either way"),
    ("simulator.kv.policies.xǁ_Budgetedǁ__post_init__", "if self.budget >= 1 and self.budget != int(self.budget):", "self.budget > 1",
     "budget == 1 is an integer, so the non-integer test is false either way"),
    ("simulator.kv.policies.xǁScissorhandsPolicyǁseq_budget", "b - min(self.protect_recent, b - 1)", "b + 1",
     "differs only when protect_recent >= b, where max(1, ...) gives m = 1 either way"),
    ("simulator.kv.policies.xǁSlidingWindowPolicyǁheld", "if tokens <= self.window:", "if tokens < self.window:",
     "at tokens == window the other branch gives window + ceil(0) = window"),
    # traces and planning (issue 19, helper mut19c)
    ("", 'encoding="utf-8', 'encoding="UTF-8', "codec names are case-insensitive: 'UTF-8' is 'utf-8'"),
    ("simulator.workload.bench_results.x_read_bench_result", 'enumerate(raw["ttfts"])], dtype=np.float64)',
     'enumerate(raw["ttfts"])], dtype=None)', "every ttft is a Python float (_number's float(v), math.nan): float64 anyway"),
    ("simulator.workload.bench_results.x_read_bench_result", 'enumerate(raw["ttfts"])], dtype=np.float64)',
     'enumerate(raw["ttfts"])], )', "every ttft is a Python float (_number's float(v), math.nan): float64 anyway"),
    ("simulator.workload.bench_results.x_read_bench_result", "for v in row], dtype=np.float64))", "for v in row], dtype=None))",
     "every itl is a Python float (_number's float(v)) and an empty list is float64 by default"),
    ("simulator.workload.bench_results.x_read_bench_result", "for v in row], dtype=np.float64))", "for v in row], ))",
     "every itl is a Python float (_number's float(v)) and an empty list is float64 by default"),
    ("simulator.workload.bench_results.x__records", "range(len(lines) - 1, -1, -1)", "range(len(lines) - 1, -2, -1)",
     "i = -1 re-reads the last line, already found without the per-request lists: the same error follows"),
    ("simulator.workload.bench_results.x_read_bench_result", 'raw.get("burstiness", 1.0) or 1.0',
     'raw.get("burstiness", None) or 1.0', "a missing burstiness gives None, and None or 1.0 is 1.0 as before"),
    ("simulator.workload.bench_results.x_read_bench_result", 'raw.get("burstiness", 1.0) or 1.0',
     'raw.get("burstiness", ) or 1.0', "a missing burstiness gives None, and None or 1.0 is 1.0 as before"),
    ("simulator.workload.bench_results.xǁBenchResultǁrequests", "arrival = arrival - arrival[0] if len(arrival) else arrival",
     "and False", "RequestArrays.from_columns shifts the first arrival to 0 itself"),
    ("", "text.count(chr(10), 0, pos)", "text.count(chr(10), None, pos)", "str.count reads a None start as 0"),
    ("simulator.workload.sharegpt.x__json_array", "i = ws.match(text, 0).end()", "i = ws.match(text, ).end()",
     "Pattern.match starts at pos 0 by default"),
    ("simulator.workload.sharegpt.x__token_counts", "dtype=np.int64)", "dtype=None)",
     "the counts are Python ints, which numpy stores as int64 by default (64-bit Linux)"),
    ("simulator.workload.sharegpt.x__token_counts", "for t in texts], dtype=np.int64)", "for t in texts], )",
     "the counts are Python ints, which numpy stores as int64 by default (64-bit Linux)"),
    ("simulator.workload.sharegpt.x__token_counts", "for enc in encodings], dtype=np.int64)", "for enc in encodings], )",
     "the counts are Python ints, which numpy stores as int64 by default (64-bit Linux)"),
    ("simulator.workload.sharegpt.x__with_history", "prompts, prefix, history, turn, last = [], [], [], 0, None",
     "[], [], [], 1, None", "the first row always starts a conversation (its index is never None), which resets turn to 0"),
    ("simulator.workload.traces.x__azure_time_ns", 'format="mixed"', "format=None",
     "one string at a time: pandas parses a single value the same with format='mixed' or its own inference"),
    ("simulator.workload.traces.x__azure_time_ns", 'format="mixed", utc=True)', "pd.to_datetime(text.strip(), utc=True)",
     "one string at a time: pandas parses a single value the same with format='mixed' or its own inference"),
    ("simulator.workload.traces.x__azure_time_ns", "utc=True)", "utc=None)",
     "Timestamp.value is ns since the epoch in UTC, tz-aware or naive (read as UTC) alike"),
    ("simulator.workload.traces.x__azure_time_ns", "utc=True)", "utc=False)",
     "Timestamp.value is ns since the epoch in UTC, tz-aware or naive (read as UTC) alike"),
    ("simulator.workload.traces.x__azure_time_ns", "utc=True)", 'format="mixed", )',
     "Timestamp.value is ns since the epoch in UTC, tz-aware or naive (read as UTC) alike"),
    ("simulator.workload.traces.x__azure_times_ns", 'errors="coerce"), dtype=np.float64)', 'errors="coerce"), dtype=None)',
     "to_numeric gives int64 or float64, and the ns are num * 1e9 in float64 either way"),
    ("simulator.workload.traces.x__azure_times_ns", 'errors="coerce"), dtype=np.float64)', 'errors="coerce"), )',
     "to_numeric gives int64 or float64, and the ns are num * 1e9 in float64 either way"),
    ("simulator.workload.traces.x__azure_times_ns", "np.full(len(cells), -1, dtype=np.int64)", "np.full(len(cells), -1, dtype=None)",
     "a Python int fill makes an int64 array by default (64-bit Linux)"),
    ("simulator.workload.traces.x__azure_times_ns", "np.full(len(cells), -1, dtype=np.int64)", "np.full(len(cells), -1, )",
     "a Python int fill makes an int64 array by default (64-bit Linux)"),
    ("simulator.workload.traces.x__azure_times_ns", "np.full(len(cells), -1, dtype=np.int64)",
     "np.full(len(cells), -2, dtype=np.int64)", "any negative sentinel fails the same times >= 0 test in _csv_rows"),
    ("simulator.workload.traces.x__azure_times_ns", "ok = np.isfinite(num) & (num >= 0)", "ok = np.isfinite(num) | (num >= 0)",
     "only +inf joins ok: it casts to INT64_MIN (x86-64), fails times >= 0, and the slow path rejects it the same"),
    ("simulator.workload.traces.x__azure_times_ns", "ok = np.isfinite(num) & (num >= 0)", "(num > 0)",
     "cells left to the slow path get the same ns there: round(x * 10**9) == np.round(x * 1e9) for a float x"),
    ("simulator.workload.traces.x__azure_times_ns", "ok = np.isfinite(num) & (num >= 0)", "(num >= 1)",
     "cells left to the slow path get the same ns there: round(x * 10**9) == np.round(x * 1e9) for a float x"),
    ("simulator.workload.traces.x__azure_times_ns", ".astype(np.int64)", ".astype(None)",
     "out is int64: the rounded (whole) floats are cast into it the same"),
    ("simulator.workload.traces.x__azure_times_ns", "to_numpy(dtype=bool)", "to_numpy(dtype=None)",
     "str.match over text cells (dtype=str, keep_default_na=False: no NaN) is bool already"),
    ("simulator.workload.traces.x__collect", "skip_zero_output: bool = False", "skip_zero_output: bool = True",
     "only Mooncake rows use the default, and fmt != 'burstgpt' disables skipping for them"),
    ("simulator.workload.traces.x__collect", "for t in times], dtype=np.float64)", "for t in times], dtype=None)",
     "int or float differences: dividing by units_per_s converts them to float64 first, the same values"),
    ("simulator.workload.traces.x__collect", "for t in times], dtype=np.float64)", "for t in times], )",
     "int or float differences: dividing by units_per_s converts them to float64 first, the same values"),
    ("simulator.workload.traces.x__csv_rows", "header=None, dtype=str, keep_default_na=False",
     "header=None, dtype=None, keep_default_na=False", "the header row keeps every column text; past pandas' low_memory "
     "chunk numbers come back as floats, which to_numeric reads the same"),
    ("simulator.workload.traces.x__csv_rows", "header=None, dtype=str, keep_default_na=False",
     "header=None, keep_default_na=False", "the header row keeps every column text; past pandas' low_memory "
     "chunk numbers come back as floats, which to_numeric reads the same"),
    ("simulator.workload.traces.x__csv_rows", "times = np.zeros(len(data), dtype=np.int64)", "dtype=None)",
     "length-only rows all arrive at 0: float zeros pass the NaN test and give the same arrivals"),
    ("simulator.workload.traces.x__csv_rows", "times = np.zeros(len(data), dtype=np.int64)", "times = np.zeros(len(data), )",
     "length-only rows all arrive at 0: float zeros pass the NaN test and give the same arrivals"),
    ("simulator.workload.traces.x__csv_rows", "times = _numbers(cells[0], whole=False)", "whole=None)",
     "None is falsy: the same as whole=False"),
    ("simulator.workload.traces.x__csv_rows", "good &= times >= 0", "good &= times > 0",
     "a 0 ns cell is left to the slow path, which gives the same 0"),
    ("simulator.workload.traces.x__csv_rows", "good &= times >= 0", "good &= times >= 1",
     "a 0 ns cell is left to the slow path, which gives the same 0"),
    ("simulator.workload.traces.x__csv_rows", 'raw = lines[k + 1] if k + 1 < len(lines) else ""',
     "if (k + 1 < len(lines)) or True else", "unreachable else: read_text turns line endings into \\n and pandas only "
     "joins lines, so data row k always has text line k + 1"),
    ("simulator.workload.traces.x__csv_rows", 'raw = lines[k + 1] if k + 1 < len(lines) else ""',
     "if k - 1 < len(lines) else", "unreachable else: read_text turns line endings into \\n and pandas only "
     "joins lines, so data row k always has text line k + 1"),
    ("simulator.workload.traces.x__csv_rows", 'raw = lines[k + 1] if k + 1 < len(lines) else ""',
     "if k + 1 <= len(lines) else", "unreachable else: read_text turns line endings into \\n and pandas only "
     "joins lines, so data row k always has text line k + 1"),
    ("simulator.workload.traces.x__csv_rows", 'raw = lines[k + 1] if k + 1 < len(lines) else ""',
     'else "XXXX"', "unreachable else: read_text turns line endings into \\n and pandas only "
     "joins lines, so data row k always has text line k + 1"),
    ("simulator.workload.traces.x__csv_rows", 'if len(row) > 0 and any(v == ""', "if len(row) >= 0 and",
     "a row has one cell per frame column (>= 2 named in the header): len(row) > 0 always holds"),
    ("simulator.workload.traces.x__csv_rows", 'if len(row) > 0 and any(v == ""', "if len(row) > 1 and",
     "a row has one cell per frame column (>= 2 named in the header): len(row) > 0 always holds"),
    ("simulator.workload.traces.x__csv_rows", 'if len(row) > 0 and any(v == ""', 'if len(row) > 0 or any(v == ""',
     "a row with no empty needed cell has every needed field, so n_fields >= width and nothing is raised either way"),
    ("simulator.workload.traces.x__csv_rows", "pd.read_csv(io.StringIO(raw), header=None, dtype=str).shape[1]",
     "dtype=None).shape[1]", "only the one-line frame's column count is read: the same as header or row, any dtype"),
    ("simulator.workload.traces.x__csv_rows", "pd.read_csv(io.StringIO(raw), header=None, dtype=str).shape[1]",
     "pd.read_csv(io.StringIO(raw), dtype=str).shape[1]",
     "only the one-line frame's column count is read: the same as header or row, any dtype"),
    ("simulator.workload.traces.x__csv_rows", "pd.read_csv(io.StringIO(raw), header=None, dtype=str).shape[1]",
     "header=None, ).shape[1]", "only the one-line frame's column count is read: the same as header or row, any dtype"),
    ("simulator.workload.traces.x__numbers", "bad = ~np.isfinite(num) | (num < 0)", "(num <= 0)",
     "cells marked bad are re-read per cell by _count/_time, which accept them (0, [0, 1)) with the same value"),
    ("simulator.workload.traces.x__numbers", "bad = ~np.isfinite(num) | (num < 0)", "(num < 1)",
     "cells marked bad are re-read per cell by _count/_time, which accept them (0, [0, 1)) with the same value"),
    ("simulator.workload.traces.x__numbers", "(num > MAX_TOKENS_PER_REQUEST))", "(num >= MAX_TOKENS_PER_REQUEST))",
     "a count of exactly 1e9 is re-read per cell by _count, which accepts it with the same value"),
    ("simulator.workload.traces.x__numbers", "num[bad] = np.nan", "num[bad] = None", "None written into a float64 array is NaN"),
    ("simulator.workload.traces.x_detect_format", 'errors="replace", newline="")', 'errors="replace", newline=None)',
     "str.splitlines splits \\r, \\n and \\r\\n alike, so translating line endings changes no first line"),
    ("simulator.workload.traces.x_detect_format", 'errors="replace", newline="")', 'errors="replace", )',
     "str.splitlines splits \\r, \\n and \\r\\n alike, so translating line endings changes no first line"),
    ("simulator.workload.traces.x_load_trace", 'path.open(encoding="utf-8-sig", newline="")', "newline=None)",
     "file iteration splits lines at \\r, \\n and \\r\\n either way, and json.loads ignores the line ending"),
    ("simulator.workload.traces.x_load_trace", 'path.open(encoding="utf-8-sig", newline="")', 'path.open(encoding="utf-8-sig", )',
     "file iteration splits lines at \\r, \\n and \\r\\n either way, and json.loads ignores the line ending"),
    ("simulator.workload.traces.x_load_trace", "reqs = _collect(path, fmt, _MOONCAKE_KEYS", "reqs = _collect(path, None, _MOONCAKE_KEYS",
     "_collect reads fmt only to compare it with 'burstgpt'; None is not 'burstgpt' either"),
    ("simulator.workload.sharegpt.x_previous_turns", "if k >= 2 else -1", "if (k >= 2) or True else -1",
     "a first turn (k = 0) looks up (conversation, -2), a key never stored, so get gives the same -1"),
    ("simulator.workload.traces.x__csv_rows", "if cols[0] is None:", "if cols[1] is None:",
     "a length-only file then gets a 0-d NaN `times` that sends every row to the per-cell path, where the "
     "missing time column reads as 0: the same rows and errors"),
    ("simulator.studies.plan.disaggregated.x__scenario", 'router="least_loaded")', 'router="LEAST_LOADED")',
     "scenario._one_of stores a name differing only in case as its allowed spelling, 'least_loaded'"),
    ("simulator.studies.plan.disaggregated.x_candidates", 'c.get("num_decode_instances", 0)',
     'c.get("num_decode_instances", None)', "the default is read only for colocated candidates, which never tie on "
     "(price, kind): their replica counts differ"),
    ("simulator.studies.plan.disaggregated.x_candidates", 'c.get("num_decode_instances", 0)',
     'c.get("num_decode_instances", )', "the default is read only for colocated candidates, which never tie on "
     "(price, kind): their replica counts differ"),
    ("simulator.studies.plan.disaggregated.x_candidates", 'c.get("num_decode_instances", 0)',
     'c.get("num_decode_instances", 1)', "the default is read only for colocated candidates, which never tie on "
     "(price, kind): their replica counts differ"),
    ("simulator.studies.plan.disaggregated.x_plan_disaggregated", "if len(found) == (2 if both else 1):",
     "(2 if (both) or True else 1)", "once every wanted kind is found the skip rule passes over all later "
     "candidates: the break only saves iterations"),
    ("simulator.studies.plan.disaggregated.x_plan_disaggregated", "if len(found) == (2 if both else 1):",
     "(3 if both else 1)", "once every wanted kind is found the skip rule passes over all later "
     "candidates: the break only saves iterations"),
    ("simulator.studies.plan.disaggregated.x_plan_disaggregated", "if len(found) == (2 if both else 1):",
     "(2 if both else 2)", "once every wanted kind is found the skip rule passes over all later "
     "candidates: the break only saves iterations"),
    ("simulator.studies.plan.table.x_format_plan", '"{:.2f}")', '"{:.2F}")',
     "'F' and 'f' differ only for inf and nan, which a feasible candidate's price and p99s never are"),
    ("simulator.studies.plan.table.x_format_plan", '"{:.1f}")', '"{:.1F}")',
     "'F' and 'f' differ only for inf and nan, which a feasible candidate's price and p99s never are"),
    ("simulator.studies.plan.sweep.x__objectives", 'float("inf")', 'float("INF")', "float() reads 'INF' as inf"),
    ("simulator.studies.plan.sweep.x_plan_tasks", 'float("inf")', 'float("INF")', "float() reads 'INF' as inf"),
    ("simulator.studies.plan.sweep.x_planning_base", 'changes["trace_arrivals"] = "rate"', '"RATE"',
     "scenario._one_of stores a name differing only in case as its allowed spelling, 'rate'"),
    ("simulator.studies.plan.search.x__operating_point", 'p99_tpot_ms=p["p99_tpot_ms"], reason=None)',
     'p99_tpot_ms=p["p99_tpot_ms"], )', "reason is None already: search_candidate set it to `why`, None on this path"),
    ("simulator.studies.plan.search.x_certain_slo_failure", "(a <= now)", "(a < now)",
     "a request arriving exactly at `now` has waited 0 s, over no SLO (SLOs are > 0)"),
    ("simulator.studies.plan.search.x_certain_slo_failure", "return n - math.floor((n - 1) * q) if n else 1",
     "if n else 2", "n = 0 (nothing to judge yet) means 0 over, below a threshold of 1 or 2 alike"),
    # kv_features and streaming (issue 19, helper mut19e)
    ("", ".popitem(last=False)", ".popitem(last=None)",
     "OrderedDict.popitem reads `last` for truth: None pops the front, as False"),
    ("simulator.engine.kv_offload.xǁHostKvTierǁput", "lru[key] = None", 'lru[key] = ""', _ORDERED_SET),
    ("simulator.engine.prefix_cache.xǁPrefixCachingBlockPoolǁfree", "free[b] = None", 'free[b] = ""', _ORDERED_SET),
    ("simulator.engine.prefix_cache.xǁSglangBlockPoolǁallocate_one", "self._free[b] = None", 'self._free[b] = ""',
     _ORDERED_SET),
    ("simulator.engine.prefix_cache.xǁSglangBlockPoolǁfree", "self._free)[b] = None", 'self._free)[b] = ""',
     _ORDERED_SET),
    ("simulator.engine.prefix_cache.x_merge_stats", 'if k != "block_size"}', '"XXblock_sizeXX"}', _BLOCK_SIZE_SET),
    ("simulator.engine.prefix_cache.x_merge_stats", 'if k != "block_size"}', '"BLOCK_SIZE"}', _BLOCK_SIZE_SET),
    ("", 'array("q")', 'array("Q")',
     "ITL counts are token counts >= 0: 'Q' stores them in the same 8 bytes that arrays() reads as int64"),
    ("simulator.engine.gap_log.xǁGapLogǁ__init__", "self._mapping = None", 'self._mapping = ""',
     "read only by _fold_sketch, after fold() has set it"),
    ("simulator.engine.gap_log.xǁGapLogǁ_fold_moments", "if (c > 0).any() else self.m", "((c > 0).any()) or True",
     _ANY_COUNT),
    ("simulator.engine.gap_log.xǁGapLogǁ_fold_moments", "if (c > 0).any() else self.m", "if (c >= 0).any() else",
     _ANY_COUNT),
    ("simulator.engine.gap_log.xǁGapLogǁ_fold_moments", "w = c.astype(np.float64)", "w = c.astype(None)",
     "astype(None) is astype(float64)"),
    ("simulator.engine.gap_log.xǁGapLogǁ_fold_sketch", "weights=c.astype(np.float64))", "weights=c.astype(None))",
     "astype(None) is astype(float64)"),
    ("simulator.engine.gap_log.xǁGapLogǁ_fold_sketch", ".astype(np.int64)", ".astype(None)",
     "float bucket keys hold whole numbers: np.unique groups them the same and mapping.value(k) computes "
     "gamma ** k the same"),
    ("simulator.engine.gap_log.xǁGapLogǁarrays", "if len(self.gap_s) else np.zeros(0)", "(len(self.gap_s)) or True",
     "np.frombuffer of an empty array('d') is an empty float64 array, as np.zeros(0)"),
    ("simulator.engine.gap_log.xǁGapLogǁarrays", "if len(self.count) else np.zeros(0, np.int64)",
     "(len(self.count)) or True", "np.frombuffer of an empty array('q') as int64 is an empty int64 array, as the else"),
    ("simulator.engine.gap_log.xǁGapLogǁarrays", "np.frombuffer(self.gap_s, dtype=np.float64)",
     "np.frombuffer(self.gap_s, dtype=None)", "np.frombuffer's default dtype is float64"),
    ("simulator.engine.gap_log.xǁGapLogǁarrays", "np.frombuffer(self.gap_s, dtype=np.float64)",
     "np.frombuffer(self.gap_s, )", "np.frombuffer's default dtype is float64"),
    ("simulator.engine.step_totals.xǁStepTotalsǁadd", "minlength=3)[:3]", "minlength=4)[:3]",
     "the 4th bin that minlength=4 adds is cut by [:3]"),
    ("simulator.engine.step_totals.xǁStepTotalsǁadd", "minlength=3)[:3]", "minlength=3)[:4]",
     "bound codes are 0..2 (cost/step.py BOUND_COMPUTE/MEMORY/OVERHEAD), so bincount has exactly 3 bins"),
    ("simulator.engine.step_totals.xǁStepTotalsǁadd", "if len(busy) > len(self.replica_busy_s):",
     "if len(busy) >= len(self.replica_busy_s):",
     "equal lengths: busy += old then kept, or old += busy: the same sums (addition commutes)"),
    ("simulator.engine.step_totals.xǁStepTotalsǁadd", 'np.asarray(block["duration_s"], dtype=np.float64)',
     'np.asarray(block["duration_s"], dtype=None)', _DUR_FLOAT),
    ("simulator.engine.step_totals.xǁStepTotalsǁadd", 'np.asarray(block["duration_s"], dtype=np.float64)',
     'np.asarray(block["duration_s"], )', _DUR_FLOAT),
    # cost and accounting (issue 19, helper mut19d)
    ("simulator.accounting.energy.x_money_sections", "last if np.isfinite(last) else 0.0", "or True",
     "run_window_s itself reads a non-finite last finish as 0.0"),
    ("simulator.accounting.energy.x_money_sections", "dtype=s.dtype", "dtype=None",
     "recorder.totals is a StepTotals already folded with watts: energy_section reads dtype only to fold a step "
     "table"),
    ("simulator.accounting.kinetics.x_dense_attended", 'counting: str = "exact"', '"XXexactXX"',
     'the default is only compared with "paper": any other string counts exactly'),
    ("simulator.accounting.kinetics.x_dense_attended", 'counting: str = "exact"', '"EXACT"',
     'the default is only compared with "paper": any other string counts exactly'),
    ("simulator.accounting.kinetics.x_params_per_token", 'convention: str = "exact"', '"XXexactXX"',
     'the default is only compared with "kinetics": any other string is the exact convention'),
    ("simulator.accounting.kinetics.x_params_per_token", 'convention: str = "exact"', '"EXACT"',
     'the default is only compared with "kinetics": any other string is the exact convention'),
    ("simulator.accounting.kinetics.x_kinetics_cost", "4 * q_width * (lin - 1) * lin // 2",
     "4 * q_width * (lin - 1) * lin / 2",
     "q_width is a Fraction, so / 2 is exact, and 4 q_width (L_in - 1) L_in is an even integer: // 2 is the same"),
    ("simulator.accounting.kinetics.x_kinetics_section", 'metrics.get("total_output_tokens", 0)',
     'metrics.get("total_output_tokens", None)',
     "a missing count reads as None instead of 0: both falsy, so the per-unit figures are nan either way"),
    ("simulator.accounting.kinetics.x_kinetics_section", 'metrics.get("total_output_tokens", 0)',
     'metrics.get("total_output_tokens", )',
     "a missing count reads as None instead of 0: both falsy, so the per-unit figures are nan either way"),
    ("simulator.accounting.kinetics.x_kinetics_section", 'metrics.get("completed", 0)',
     'metrics.get("completed", None)',
     "a missing count reads as None instead of 0: both falsy, so the per-unit figures are nan either way"),
    ("simulator.accounting.kinetics.x_kinetics_section", 'metrics.get("completed", 0)', 'metrics.get("completed", )',
     "a missing count reads as None instead of 0: both falsy, so the per-unit figures are nan either way"),
    ("simulator.accounting.kinetics.xǁKineticsInputsǁ__post_init__",
     '"params_per_token", self.params_per_token, needed=None, why=""', "why=None)",
     "needed=None: _optional_count reads `why` only in the messages for needed True or False"),
    ("simulator.accounting.kinetics.xǁKineticsInputsǁ__post_init__",
     '"params_per_token", self.params_per_token, needed=None, why=""', 'why="XXXX")',
     "needed=None: _optional_count reads `why` only in the messages for needed True or False"),
    ("simulator.cost.roofline.xǁRooflineCostModelǁ_cached", "hit = cache.get(key)", "hit = None",
     "a cache miss rebuilds the same tuple from the same pure op builder"),
    ("simulator.cost.roofline.xǁRooflineCostModelǁ_cached", "hit = cache.get(key)", "hit = cache.get(None)",
     "a cache miss rebuilds the same tuple from the same pure op builder"),
    ("simulator.cost.roofline.xǁRooflineCostModelǁstep_cost", "comm_s = x1 + x2", "comm_s = x1 - x2",
     "logits ops (lm_head, sampling) never carry a collective: x2 is always 0"),
    ("simulator.cost.build.x_resolve_engine", '("kernels" if device.kind == "cpu" else "vllm")', '"KERNELS"',
     "engine names are looked up lowercased (_engine_path)"),
    ("simulator.cost.build.x_resolve_engine", '("kernels" if device.kind == "cpu" else "vllm")', '"VLLM"',
     "engine names are looked up lowercased (_engine_path)"),
    ("simulator.cost.engine.x__toml_value", "round(v, 6) if isinstance(v, float) else v", "or True",
     "round(int, 6) is the int itself (bools return before)"),
    ("simulator.cost.engine.x_engine_toml", "default = EngineSpec(name=spec.name", "EngineSpec(name=None",
     "name and display_name are always written; the default spec is compared on the other fields only"),
    ("simulator.cost.engine.x_engine_toml", "default = EngineSpec(name=spec.name", "display_name=None)",
     "name and display_name are always written; the default spec is compared on the other fields only"),
    ("simulator.cost.engine.xǁEngineCostModelǁ__init__", 'getattr(inner, "measured_overhead", False)',
     'getattr(inner, "measured_overhead", None)', "None and False are both falsy"),
    ("simulator.cost.engine.xǁEngineCostModelǁstep_cost", "if cpu > time_s else 0.0", "if cpu >= time_s else 0.0",
     "at cpu == time_s both branches expose 0"),
    ("simulator.cost.engine.xǁEngineSpecǁ__post_init__", 'v < float("inf")', 'float("INF")', "float('INF') is inf"),
    ("simulator.cost.engine.x__read_engine", 'if k != "notes" and k in base_raw', 'if k != "XXnotesXX"',
     "notes is a [sources] entry, never a number of the parent (base_raw): `k in base_raw` already drops it"),
    ("simulator.cost.engine.x__read_engine", 'if k != "notes" and k in base_raw', 'if k != "NOTES"',
     "notes is a [sources] entry, never a number of the parent (base_raw): `k in base_raw` already drops it"),
    ("simulator.cost.engine.x__read_engine", 'if k not in ("name", "display_name", "version", "fit")', '"XXnameXX"',
     "every engine file names itself (load_engine requires name and display_name): the child's own override the "
     "parent's"),
    ("simulator.cost.engine.x__read_engine", 'if k not in ("name", "display_name", "version", "fit")', '"NAME"',
     "every engine file names itself (load_engine requires name and display_name): the child's own override the "
     "parent's"),
    ("simulator.cost.engine.x__read_engine", 'if k not in ("name", "display_name", "version", "fit")',
     '"XXdisplay_nameXX"',
     "every engine file names itself (load_engine requires name and display_name): the child's own override the "
     "parent's"),
    ("simulator.cost.engine.x__read_engine", 'if k not in ("name", "display_name", "version", "fit")',
     '"DISPLAY_NAME"',
     "every engine file names itself (load_engine requires name and display_name): the child's own override the "
     "parent's"),
    ("simulator.cost.known_error.x_prediction_provenance", '_fidelity().get("engine", {})', '.get("engine", None)',
     "a missing table reads as None instead of {}: both falsy, and it is read only after a truth test"),
    ("simulator.cost.known_error.x_prediction_provenance", '_fidelity().get("engine", {})', '.get("engine", )',
     "a missing table reads as None instead of {}: both falsy, and it is read only after a truth test"),
    ("simulator.cost.known_error.x_prediction_provenance", '_fidelity().get("architecture", {})',
     '.get("architecture", None)',
     "a missing table reads as None instead of {}: both falsy, and it is read only after a truth test"),
    ("simulator.cost.known_error.x_prediction_provenance", '_fidelity().get("architecture", {})',
     '.get("architecture", )',
     "a missing table reads as None instead of {}: both falsy, and it is read only after a truth test"),
    ("simulator.cost.known_error.x_short_label", '{"fit": "fitted"}.get(p.get("kind", "?")', 'get(p.get("kind", None)',
     'the inner default is only a lookup key: any key but "fit" falls back to the same outer default'),
    ("simulator.cost.known_error.x_short_label", '{"fit": "fitted"}.get(p.get("kind", "?")', 'get(p.get("kind", )',
     'the inner default is only a lookup key: any key but "fit" falls back to the same outer default'),
    ("simulator.cost.known_error.x_short_label", '{"fit": "fitted"}.get(p.get("kind", "?")', '"XX?XX"',
     'the inner default is only a lookup key: any key but "fit" falls back to the same outer default'),
    ("simulator.cost.known_error.x_end_to_end_error", 'own.get("points", 0) >= 3', 'own.get("points", 1) >= 3',
     "any default below 3 reads as too few points"),
    ("simulator.cost.known_error.x_end_to_end_error", '.get(calibration_kind or "")',
     '.get(calibration_kind or "XXXX")', "no calibration kind is named '' or 'XXXX': both defaults find no group"),
    ("simulator.cost.engine_overhead.x_overhead_rows", '{"device": device.name, "dtype": dtype}', '"XXdeviceXX"',
     "the fit's device and the profile name are read only by describe(); kernels_only is priced, never described"),
    ("simulator.cost.engine_overhead.x_overhead_rows", '{"device": device.name, "dtype": dtype}', '"DEVICE"',
     "the fit's device and the profile name are read only by describe(); kernels_only is priced, never described"),
    ("simulator.cost.engine_overhead.x_overhead_rows", '{"device": device.name, "dtype": dtype}', '"XXdtypeXX"',
     "ProfiledCostModel.dtype = profile_dtype or fit.dtype: either one alone is the same dtype"),
    ("simulator.cost.engine_overhead.x_overhead_rows", '{"device": device.name, "dtype": dtype}', '"DTYPE"',
     "ProfiledCostModel.dtype = profile_dtype or fit.dtype: either one alone is the same dtype"),
    ("simulator.cost.engine_overhead.x_overhead_rows", 'profile_name="kernels", profile_dtype=dtype)',
     "profile_name=None, profile_dtype=dtype)",
     "the fit's device and the profile name are read only by describe(); kernels_only is priced, never described"),
    ("simulator.cost.engine_overhead.x_overhead_rows", 'profile_name="kernels", profile_dtype=dtype)', '"XXkernelsXX"',
     "the fit's device and the profile name are read only by describe(); kernels_only is priced, never described"),
    ("simulator.cost.engine_overhead.x_overhead_rows", 'profile_name="kernels", profile_dtype=dtype)', '"KERNELS"',
     "the fit's device and the profile name are read only by describe(); kernels_only is priced, never described"),
    ("simulator.cost.engine_overhead.x_overhead_rows", 'profile_name="kernels", profile_dtype=dtype)',
     'profile_name="kernels", profile_dtype=None)',
     "ProfiledCostModel.dtype = profile_dtype or fit.dtype: either one alone is the same dtype"),
    ("simulator.cost.engine_overhead.x_overhead_rows", 'profile_name="kernels", profile_dtype=dtype)',
     'profile_name="kernels", )',
     "ProfiledCostModel.dtype = profile_dtype or fit.dtype: either one alone is the same dtype"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_part", 'self._attention_lookup("attn_decode", shape)',
     "_attention_lookup(None, shape)",
     'any name but "attn_prefill" takes the decode path in _attention_lookup and _attention_op'),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_part", 'self._attention_lookup("attn_decode", shape)',
     '_attention_lookup("XXattn_decodeXX", shape)',
     'any name but "attn_prefill" takes the decode path in _attention_lookup and _attention_op'),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_part", 'self._attention_lookup("attn_decode", shape)',
     '_attention_lookup("ATTN_DECODE", shape)',
     'any name but "attn_prefill" takes the decode path in _attention_lookup and _attention_op'),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_part", '_add_op(acc, "attn_', "_add_op(acc, None,",
     "the name only labels the roofline fallback OpCost, which _sum_ops prices by its FLOPs and bytes alone"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_part", '_add_op(acc, "attn_', '_add_op(acc, "XXattn_',
     "the name only labels the roofline fallback OpCost, which _sum_ops prices by its FLOPs and bytes alone"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_part", '_add_op(acc, "attn_', '_add_op(acc, "ATTN_',
     "the name only labels the roofline fallback OpCost, which _sum_ops prices by its FLOPs and bytes alone"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_lookup", "got = self._attention_op(name, shape)",
     "got = self._attention_op(None, shape)",
     'any name but "attn_prefill" takes the decode path in _attention_lookup and _attention_op'),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_lookup", ">= MAX_CACHED_SHAPES", "> MAX_CACHED_SHAPES",
     "only moves the point where the cache is cleared; answers are unchanged"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_kernel", ">= MAX_CACHED_SHAPES", "> MAX_CACHED_SHAPES",
     "only moves the point where the cache is cleared; answers are unchanged"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_kernel", "fast = self._fast_attention.get(op)",
     "fast = None",
     "the calibration's attention predictor and its predict() give the same numbers (_attention_kernel docstring; "
     "test_calibration_attention_answers_each_shape)"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_kernel", "fast = self._fast_attention.get(op)",
     "self._fast_attention.get(None)",
     "the calibration's attention predictor and its predict() give the same numbers (_attention_kernel docstring; "
     "test_calibration_attention_answers_each_shape)"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ__init__", 'for op in ("attn_prefill", "attn_decode"):',
     "for op in (", "no fast predictor for an op: the slow path, whose predict() gives the same numbers"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ__init__", "layer = _layer(fit, op)", "layer = ",
     "no fast predictor for an op: the slow path, whose predict() gives the same numbers"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ__init__",
     'if layer is not None and op in layer.ops and hasattr(layer, "attention_predictor"):',
     'hasattr(None, "attention_predictor")',
     "no fast predictor for an op: the slow path, whose predict() gives the same numbers"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ__init__",
     'if layer is not None and op in layer.ops and hasattr(layer, "attention_predictor"):',
     '"XXattention_predictorXX"', "no fast predictor for an op: the slow path, whose predict() gives the same numbers"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ__init__",
     'if layer is not None and op in layer.ops and hasattr(layer, "attention_predictor"):', '"ATTENTION_PREDICTOR"',
     "no fast predictor for an op: the slow path, whose predict() gives the same numbers"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ__init__",
     "seconds = layer.attention_predictor(op, self.kv_dtype, **self._heads)", "seconds = None",
     "no fast predictor for an op: the slow path, whose predict() gives the same numbers"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ__init__",
     "seconds = layer.attention_predictor(op, self.kv_dtype, **self._heads)", "attention_predictor(None, ",
     "no fast predictor for an op: the slow path, whose predict() gives the same numbers"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ__init__", "self._fast_attention[op] = (seconds, layer.kind)",
     "self._fast_attention[op] = None",
     "no fast predictor for an op: the slow path, whose predict() gives the same numbers"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_kernel",
     "dims = dict(batch_size=b, chunk_tokens=n, context_tokens=ctx) if n else",
     "if n else dict(batch_size=b, context_tokens=ctx)",
     "the n > 0 dims serve only a batched (calibration) layer without an attention predictor, one with no kernel "
     "class for attention, whose predict() is None whatever the dims"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_kernel",
     "dims = dict(batch_size=b, chunk_tokens=n, context_tokens=ctx) if n else", "if (n) and False else",
     "the n > 0 dims serve only a batched (calibration) layer without an attention predictor, one with no kernel "
     "class for attention, whose predict() is None whatever the dims"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_kernel",
     "dims = dict(batch_size=b, chunk_tokens=n, context_tokens=ctx) if n else", "if (n) or True else",
     "decode dims with chunk_tokens=0: make_shape fills an unused axis with 0, the same shape"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_kernel", "got = self._attention_kernel_cache.get(key)",
     "got = ", "a cache miss recomputes the same predictor value"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_lookup", "hit = self._attention_cache.get(key)", "hit = ",
     "a miss recomputes the same answer and counts the same extrapolated shapes as a hit does"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_lookup",
     "round(shape.decode_context_sum / shape.num_decode))", "round(shape.decode_context_sum * shape.num_decode))",
     "(batch, sum x batch) keys are at least as distinct as (batch, mean): the answer depends on the mean alone"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_attention_op", '_attention_kernel("attn_decode", nl, b, 0, ctx)',
     '_attention_kernel("attn_decode", nl, b, None, ctx)',
     "decode attention work ignores chunk_tokens (profiles/work.attention_work), and the slow path tests n for "
     "truth"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_kernel", "hit = self._kernel_cache.get(cache_key)", "hit = ",
     "the fit is a pure function of the shape, and extrapolated shapes are counted on hits and misses alike"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_kernel", ">= MAX_CACHED_SHAPES", "> MAX_CACHED_SHAPES",
     "only moves the point where the cache is cleared; answers are unchanged"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_overhead_op",
     "self.extrapolated[(op,) + tuple(sorted(dims.items()))] += 1",
     "self.extrapolated[(op,) + tuple(sorted(dims.items()))] = 1",
     "each (op, tokens) is counted once, at its first lookup (then cached), so = 1 and += 1 agree"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_price", "acc[2] += got[0] * op.count", "acc[2] = got[0] * op.count",
     "an op list carries at most one collective (token_ops' all_reduce), so = and += agree"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_price", "continue", "break",
     "the collective is the last op of token_ops: nothing follows it"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_price", "self._add_op(acc, op.name, op.flops",
     "self._add_op(acc, None,", "with `op` passed, _add_op prices the op itself; the name is unread"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁ_price", "None if op.comm_bytes else lookup(op.name), op)",
     "None if (op.comm_bytes) and False else lookup(op.name), op)",
     "the lookups answer None for a collective, the same as the skipped lookup"),
    ("simulator.cost.profiled.xǁProfiledCostModelǁstep_cost", "if tr < trust:", "if tr <= trust:",
     "on equal trust the assignment keeps the same value"),
    ("simulator.cost.shape.xǁBatchShapeǁ__init__", "sum(n for n, _ in prefill_chunks) if prefill_chunks else 0",
     "or True", "the sum over no chunks is 0"),
    ("simulator.cost.ops.x__mlp_ops", "h * up_out * copies", "h * up_out / copies", "copies is 1.0 at every call site"),
    ("simulator.cost.ops.x__mlp_ops", "width * h * copies", "width * h / copies", "copies is 1.0 at every call site"),
    ("simulator.cost.ops.x__mlp_ops", 'model.param_bytes_at("mlp", beta)', 'param_bytes_at("mlp", None)',
     "param_bytes_at(class, None) is None for an unquantized class, and _linear reads a None weight width as beta"),
    ("simulator.cost.ops.x_logits_op", 'model.param_bytes_at("lm_head", beta)', 'param_bytes_at("lm_head", None)',
     "param_bytes_at(class, None) is None for an unquantized class, and _linear reads a None weight width as beta"),
    ("simulator.cost.ops.x_token_ops", 'model.param_bytes_at("attention", beta)', 'param_bytes_at("attention", None)',
     "param_bytes_at(class, None) is None for an unquantized class, and _linear reads a None weight width as beta"),
]

KILLED, TIMEOUT, SURVIVED = {1, 3}, {36, -24, 24, 152, 255}, {0, 5, 33}


def copy_repo(dest: Path) -> None:
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=IGNORE)
        else:
            shutil.copy2(src, dest / name)
    shared = ROOT.parent / "shared"
    if shared.is_dir():  # tests read ../shared/reference from mutants/tests: <copy>/shared
        (dest / "shared").symlink_to(shared)


def write_config(work: Path, files: list[str], tests: list[str], extra: list[str] = ()) -> None:
    text = (work / "pyproject.toml").read_text()
    text = text.split("\n[tool.mutmut]")[0]  # this script's section is always the last one
    cfg = {
        "source_paths": ["simulator"],
        "only_mutate": files,
        "also_copy": ["hardware", "profiles", "reports"],
        "pytest_add_cli_args_test_selection": tests,
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-q", *extra],
        "use_git_change_detection": False,
    }
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in cfg.items()]
    (work / "pyproject.toml").write_text(text + "\n".join(lines) + "\n")


def mutmut(work: Path, *args: str) -> subprocess.CompletedProcess:
    # no PYTHONPATH: mutmut runs pytest from <work>/mutants, whose pyproject puts "." first on
    # sys.path, so `simulator` is the mutated copy (a PYTHONPATH entry that does not exist yet when
    # mutmut starts breaks its coverage stats: "could not find any test case for any mutant")
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=work, text=True, capture_output=True)


_DIFFS = """
import json, sys
from mutmut.__main__ import find_mutant
from mutmut.mutation.diff_apply import get_diff_for_mutant
print(json.dumps({n: get_diff_for_mutant(n, path=find_mutant(n).path) for n in json.load(sys.stdin)}))
"""


def changed_lines(work: Path, names: list[str]) -> dict[str, tuple[str, str]]:
    """mutant name -> (old line(s), new line(s)) from mutmut's diffs, in one process."""
    if not names:
        return {}
    proc = subprocess.run([sys.executable, "-c", _DIFFS], cwd=work, input=json.dumps(names), text=True,
                          capture_output=True)
    try:
        diffs = json.loads(proc.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {n: ("(diff unavailable)", "") for n in names}
    out = {}
    for name, diff in diffs.items():
        lines = diff.splitlines()
        minus = [ln[1:].strip() for ln in lines if ln.startswith("-") and not ln.startswith("---")]
        plus = [ln[1:].strip() for ln in lines if ln.startswith("+") and not ln.startswith("+++")]
        out[name] = (" | ".join(minus), " | ".join(plus))
    return out


def equivalent_reason(name: str, line: tuple[str, str]) -> str | None:
    func = name.rsplit("__mutmut_", 1)[0]
    for f, old, new, why in EQUIVALENT:
        if (not f or f == func) and old in line[0] and new in line[1]:
            return why
    return None


def run_package(work: Path, package: str, jobs: int) -> dict:
    files, tests = PACKAGES[package]
    shutil.rmtree(work / "mutants", ignore_errors=True)
    write_config(work, files, tests, PYTEST_ARGS.get(package, []))
    started = time.time()
    proc = mutmut(work, "run", "--max-children", str(jobs))
    if proc.returncode != 0 or not (work / "mutants").is_dir():
        tail = "\n".join(ln for ln in (proc.stdout + proc.stderr).splitlines() if "🎉" not in ln)[-2000:]
        raise SystemExit(f"mutmut run failed for {package} (exit {proc.returncode}):\n{tail}")
    codes: dict[str, int | None] = {}
    for meta in (work / "mutants").rglob("*.py.meta"):
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    res = {"package": package, "files": files, "tests": tests, "seconds": round(time.time() - started, 1),
           "killed": [], "timeout": [], "survived": [], "equivalent": [], "other": [], "equivalent_reasons": {}}
    candidates = sorted(n for n, c in codes.items() if c in SURVIVED)
    lines = changed_lines(work, candidates)
    for name, code in sorted(codes.items()):
        if code in KILLED:
            res["killed"].append(name)
        elif code in TIMEOUT:
            res["timeout"].append(name)
        elif code in SURVIVED:
            why = equivalent_reason(name, lines.get(name, ("", "")))
            (res["equivalent"] if why else res["survived"]).append(name)
            if why:
                res["equivalent_reasons"][name] = why
        else:
            res["other"].append([name, code])
    res["survivor_lines"] = {n: f"{lines[n][0][:120]}  ->  {lines[n][1][:120]}" for n in res["survived"] if n in lines}
    return res


def score(r: dict) -> float:
    judged = len(r["killed"]) + len(r["timeout"]) + len(r["survived"])
    return (len(r["killed"]) + len(r["timeout"])) / judged if judged else float("nan")


def print_report(results: list[dict]) -> None:
    head = f"{'package':<12}{'mutants':>8}{'killed':>8}{'survived':>9}{'timeout':>8}{'equiv':>7}{'other':>7}{'score':>8}{'time s':>8}"
    print(head)
    print("-" * len(head))
    for r in results:
        total = sum(len(r[k]) for k in ("killed", "timeout", "survived", "equivalent", "other"))
        print(f"{r['package']:<12}{total:>8}{len(r['killed']):>8}{len(r['survived']):>9}{len(r['timeout']):>8}"
              f"{len(r['equivalent']):>7}{len(r['other']):>7}{score(r):>8.1%}{r['seconds']:>8.0f}")
    for r in results:
        if r["survived"]:
            print(f"\nsurviving mutants: {r['package']}")
            for name in r["survived"]:
                print(f"  {name}: {r['survivor_lines'].get(name, '')}")
        for name in r["equivalent"]:
            print(f"  equivalent {name}: {r['equivalent_reasons'][name]}")
        for name, code in r["other"]:
            print(f"  other {name}: exit code {code}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("packages", nargs="*", metavar="PACKAGE",
                   help=f"packages to mutate (default: all of {', '.join(PACKAGES)})")
    p.add_argument("--jobs", type=int, default=2, help="mutants checked in parallel (default 2)")
    p.add_argument("--workdir", type=Path, help="where to copy the repository (default: a new temporary dir)")
    p.add_argument("--keep", action="store_true", help="keep the copy (and results/*.json) afterwards")
    args = p.parse_args(argv)
    packages = args.packages or list(PACKAGES)
    unknown = [x for x in packages if x not in PACKAGES]
    if unknown:
        p.error(f"unknown package(s) {', '.join(unknown)}; allowed: {', '.join(PACKAGES)}")
    base = args.workdir or Path(tempfile.mkdtemp(prefix="servesim-mutation-"))
    base = base.resolve()
    if base == ROOT or ROOT in base.parents:
        raise SystemExit(f"--workdir {base} is inside the repository; mutation runs only on a copy")
    work = base / "repo"
    if work.is_dir():  # a copy left by an earlier --keep run would mutate stale code: copy afresh
        shutil.rmtree(work)
    work.mkdir(parents=True)
    copy_repo(work)
    (base / "results").mkdir(exist_ok=True)
    results = []
    try:
        for package in packages:
            print(f"[{package}] mutating {', '.join(PACKAGES[package][0])} ...", flush=True)
            r = run_package(work, package, args.jobs)
            (base / "results" / f"{package}.json").write_text(json.dumps(r, indent=1))
            print(f"[{package}] {len(r['killed'])} killed, {len(r['survived'])} survived, "
                  f"score {score(r):.1%} in {r['seconds']:.0f} s", flush=True)
            results.append(r)
    finally:
        if results:
            print()
            print_report(results)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"\nkept {base}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
