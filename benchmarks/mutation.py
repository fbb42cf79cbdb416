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
timeout, equivalent (surviving mutants whose diff matches an EQUIVALENT entry of
mutation_equivalents.py, each with a one-line reason), other (skipped, suspicious, segfault) and the score = (killed + timeout) / (killed +
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

from mutation_equivalents import EQUIVALENT  # beside this script (its directory is sys.path[0])

ROOT = Path(__file__).resolve().parents[1]
COPY = ("simulator", "hardware", "profiles", "reports", "tests", "pyproject.toml")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", "mutants", "*.egg-info")

# package -> (files mutated, as globs relative to the repository root; test files that judge them)
PACKAGES: dict[str, tuple[list[str], list[str]]] = {
    "workload": (["simulator/workload/synthetic.py", "simulator/workload/requests.py"],
                 ["tests/test_workload_distributions.py", "tests/test_workload_validation.py", "tests/test_traces.py"]),
    "traces": (["simulator/workload/traces.py", "simulator/workload/csv_table.py", "simulator/workload/sharegpt.py",
                "simulator/workload/bench_results.py"],
               ["tests/test_traces.py", "tests/test_traces_real_files.py", "tests/test_sharegpt_bytes.py",
                "tests/test_malformed_files.py", "tests/test_bench.py", "tests/test_traces_mutation_oracles.py",
                "tests/test_sharegpt_oracles.py", "tests/test_bench_results_oracles.py", "tests/test_traces_csv_reader.py",
                "tests/test_traces_multiline_records.py"]),
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

# extra pytest arguments per package (slow tests that add nothing for that package's mutants)
PYTEST_ARGS: dict[str, list[str]] = {
    "traces": ["-k", "not calibrate"],  # test_bench's calibration fits take ~17 s each and only read bench files
}

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
