"""`servesim kv-compare`: one scenario under several KV policies, side by side.

Interim command until `servesim compare --vary` lands: every scenario option of `simulate`
applies; --policies lists NAME[:BUDGET] entries (budget: tokens >= 1 or a fraction < 1 of
prompt+output; default --kv-budget, else 0.2). Accuracy is not predicted: the budget is the
user's knob and is printed next to the results.
"""
from __future__ import annotations

import argparse
import json

from simulator.cli_simulate import add_scenario_arguments, scenario_from_args
from simulator.errors import ServesimError
from simulator.scenario import KV_POLICY_NAMES

COLUMNS = (  # (header, metric key, format, scale)
    ("completed", "completed", "{:d}", None),
    ("out tok/s", "output_throughput", "{:.1f}", None),
    ("mean TPOT ms", "mean_tpot_ms", "{:.2f}", None),
    ("p99 TPOT ms", "p99_tpot_ms", "{:.2f}", None),
    ("mean E2EL s", "mean_e2el_ms", "{:.2f}", 1e-3),
    ("peak mem GB", "peak_memory_bytes", "{:.2f}", 1e-9),
    ("max running", "max_num_running", "{:d}", None),
    ("mem-bound", "frac_time_memory_bound", "{:.1%}", None),
    ("evict time", "frac_time_kv_eviction", "{:.1%}", None),
    ("BW used", "achieved_bandwidth_fraction", "{:.1%}", None),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_scenario_arguments(p)
    p.add_argument("--policies", default="dense,h2o,scissorhands",
                   help="comma-separated NAME[:BUDGET] (names: " + ", ".join(KV_POLICY_NAMES) + ")")
    p.add_argument("--json", action="store_true", help="print the metrics per policy as JSON")


def parse_policies(text: str, default_budget: float | None) -> list[tuple[str, float | None]]:
    out = []
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, _, budget = item.partition(":")
        if name not in KV_POLICY_NAMES:
            raise ServesimError(f"--policies: unknown policy {name!r}; allowed: {', '.join(KV_POLICY_NAMES)}")
        b = float(budget) if budget else (None if name == "dense" else (default_budget or 0.2))
        out.append((name, b))
    if not out:
        raise ServesimError("--policies is empty")
    return out


def run(args: argparse.Namespace) -> int:
    from simulator.outputs import build_summary
    from simulator.run import simulate

    base = scenario_from_args(args)
    rows = []
    for name, budget in parse_policies(args.policies, base.kv_budget):
        summary = build_summary(simulate(base.replace(kv_policy=name, kv_budget=budget)))
        rows.append((name, budget, summary["metrics"]))
    if args.json:
        print(json.dumps([{"kv_policy": n, "kv_budget": b, "metrics": m} for n, b, m in rows], indent=2,
                         sort_keys=True, default=str))
        return 0
    print(f"{base.model} on {base.hardware} ({base.dtype}), scheduler {base.scheduler}, "
          f"prompt {base.prompt_tokens}, output {base.output_tokens}; accuracy not modelled")
    head = f"{'policy':<13}{'budget':>8}" + "".join(f"{h:>13}" for h, _, _, _ in COLUMNS)
    print(head)
    for name, budget, m in rows:
        cells = []
        for _, key, fmt, scale in COLUMNS:
            v = m.get(key)
            cells.append("n/a" if v is None else fmt.format(v * scale if scale else v))
        print(f"{name:<13}{'-' if budget is None else f'{budget:g}':>8}" + "".join(f"{c:>13}" for c in cells))
    return 0
