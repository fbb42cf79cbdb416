"""What-if comparison: a base scenario and the cross product of `--vary key=v1,v2` changes.

Owns the --vary syntax (key = a Scenario field name or its CLI spelling with dashes; values
parsed to the field's type), the cross product, running the variants (through
sweep_store.run_tasks, so --jobs uses local processes) and the compare document that report
renderers read:
    {"kind": "compare", "servesim_version", "base": summary, "variants": [{"vary", "summary"}],
     "varied_keys"}
Does not render tables (table.py) or compute metrics (results.build_summary).
"""
from __future__ import annotations

import itertools
import json
import math

from simulator.errors import ServesimError
from simulator.scenario import SCENARIO_KEYS, Scenario, parse_value, scenario_from_dict


def parse_vary(spec: str) -> tuple[str, list]:
    """'max-num-seqs=64,128' -> ('max_num_seqs', [64, 128])."""
    key, sep, values = spec.partition("=")
    key = key.strip().lstrip("-").replace("-", "_")
    if not sep or not key:
        raise ServesimError(f"--vary {spec!r}: expected KEY=V1,V2,...")
    if key not in SCENARIO_KEYS:
        raise ServesimError(f"--vary: unknown key {key!r}; valid keys: {', '.join(SCENARIO_KEYS)}")
    if not values.strip():
        raise ServesimError(f"--vary {spec!r}: no values after '='")
    items = values.split(",")
    if any(not v.strip() for v in items):
        raise ServesimError(f"--vary {spec!r}: empty value in the list; allowed: comma-separated values "
                            "with none empty, e.g. max_num_seqs=64,128")
    parsed = [parse_value(key, v, where=f"--vary {key}") for v in items]
    seen = set()
    for raw, value in zip(items, parsed):
        marker = repr(value)
        if marker in seen:
            raise ServesimError(f"--vary {key}: value {raw.strip()!r} given twice; list each value once")
        seen.add(marker)
    return key, parsed


def merge_varies(specs: list[str]) -> dict[str, list]:
    """Several --vary options -> {key: values} (a key given twice is an error)."""
    out: dict[str, list] = {}
    for spec in specs:
        key, values = parse_vary(spec)
        if key in out:
            raise ServesimError(f"--vary {key} given twice; list all its values in one option")
        out[key] = values
    return out


def cross_product(grid: dict[str, list]) -> list[dict]:
    """{a: [1, 2], b: [x]} -> [{a: 1, b: x}, {a: 2, b: x}] (first key varies slowest)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def variant_scenarios(base: Scenario, grid: dict[str, list]) -> list[tuple[dict, Scenario]]:
    """Validated scenarios for each combination (invalid values fail before anything runs)."""
    out = []
    for vary in cross_product(grid):
        try:
            out.append((vary, base.replace(**vary)))
        except ServesimError as exc:
            raise ServesimError(f"--vary {vary}: {exc}") from None
    return out


def summarise_task(task: dict) -> dict:
    """Worker: simulate one scenario (a plain dict) and return its deterministic summary dict
    (the summary.json content: no wall time, NaN -> null). With task["run_dir"], the run's
    requests table (requests.csv) and summary.json are written there too (the compare report's
    CDFs read them)."""
    from pathlib import Path

    from simulator.results import build_summary, summary_json, write_requests_table
    from simulator.run import simulate

    scenario = scenario_from_dict(task["scenario"])
    result = simulate(scenario)
    text = summary_json(build_summary(result))
    if task.get("run_dir"):
        run_dir = Path(task["run_dir"])
        run_dir.mkdir(parents=True, exist_ok=True)
        write_requests_table(result.recorder, run_dir / "requests.csv", "csv", "")
        (run_dir / "summary.json").write_text(text + "\n")
    return json.loads(text)


def run_compare(base: Scenario, grid: dict[str, list], *, jobs: int | None = None,
                on_progress=None, runs_dir=None) -> dict:
    """Run the base and every variant; return the compare document. `runs_dir` (a directory):
    each run's requests table and summary go to runs_dir/base, runs_dir/variant-1, ... and the
    document lists them in "run_dirs" (relative to runs_dir's parent, where compare.json goes)."""
    from pathlib import Path

    from simulator.results import version
    from simulator.studies.sweep_store import run_tasks

    variants = variant_scenarios(base, grid)
    names = ["base"] + [f"variant-{i + 1}" for i in range(len(variants))]
    tasks = [{"scenario": base.as_dict()}] + [{"scenario": s.as_dict()} for _, s in variants]
    if runs_dir is not None:
        for task, name in zip(tasks, names):
            task["run_dir"] = str(Path(runs_dir) / name)
    results: list[dict | None] = [None] * len(tasks)

    def done(i: int, summary: dict) -> None:
        results[i] = summary
        if on_progress:
            on_progress()

    run_tasks(summarise_task, tasks, on_done=done, jobs=jobs)
    return {
        "kind": "compare",
        "servesim_version": version(),
        "base": results[0],
        "variants": [{"vary": vary, "summary": results[i + 1]} for i, (vary, _) in enumerate(variants)],
        "varied_keys": list(grid),
        **({"run_dirs": [f"{Path(runs_dir).name}/{n}" for n in names]} if runs_dir is not None else {}),
    }


def json_safe(obj):
    """Strict JSON: inf -> "inf" (as summary.json writes it), NaN -> null."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else str(obj)
    return obj


def compare_json(doc: dict) -> str:
    return json.dumps(json_safe(doc), indent=2, sort_keys=True)
