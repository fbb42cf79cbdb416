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
                "tests/test_malformed_files.py", "tests/test_bench.py"]),
    "metrics": (["simulator/results/metrics.py"], ["tests/test_metrics.py", "tests/test_metrics_oracles.py",
                                                   "tests/test_engine_stats_oracles.py",
                                                   "tests/test_streaming_accounting.py"]),
    "moe": (["simulator/moe/*"], ["tests/test_moe.py", "tests/test_moe_fetch_closed_form.py", "tests/test_moe_oracles.py",
                                  "tests/test_moe_setup_oracles.py"]),
    "speculative": (["simulator/speculative/*"],
                    ["tests/test_spec_decode.py", "tests/test_spec_acceptance.py", "tests/test_spec_adaptive_oracle.py",
                     "tests/test_spec_oracles.py", "tests/test_spec_reporting.py"]),
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
                "tests/test_engine_oracles.py", "tests/test_closed_forms.py", "tests/test_parallel.py"]),
    "kv": (["simulator/kv/*"], ["tests/test_kv_policy.py", "tests/test_kv_oracles.py",
                                "tests/test_static_scheduler_oracles.py", "tests/test_scheduler_admission_oracles.py"]),
    "cost": (["simulator/cost/*"], ["tests/test_closed_forms.py", "tests/test_profiled_cost_model.py",
                                    "tests/test_engine_overhead.py", "tests/test_device_calibration.py"]),
    "accounting": (["simulator/accounting/*"], ["tests/test_kinetics.py", "tests/test_energy.py",
                                                "tests/test_power_model.py"]),
    "planning": (["simulator/studies/plan/*"], ["tests/test_plan.py", "tests/test_plan_search.py",
                                                "tests/test_plan_replicas.py", "tests/test_plan_early_stop.py",
                                                "tests/test_plan_disaggregated.py"]),
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
    if not work.is_dir():
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
