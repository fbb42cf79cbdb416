"""`servesim tts`: test-time-scaling sweep over model x samples per prompt x length budget."""
from __future__ import annotations

import argparse
import itertools
import json
import sys

from simulator.cli.simulate import add_scenario_arguments, scenario_from_args
from simulator.errors import ServesimError


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x]
    except ValueError:
        raise ServesimError(f"{flag}={text!r}: give comma-separated integers") from None
    if not values or min(values) < 1:
        raise ServesimError(f"{flag}={text!r}: give comma-separated integers >= 1")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", required=True, help="comma-separated models, e.g. qwen3-0.6b,qwen3-8b")
    p.add_argument("--samples", default="1,4,16", help="samples per prompt (Best-of-N), comma-separated")
    p.add_argument("--budgets", default="4096,16384", help="output length budgets in tokens, comma-separated")
    p.add_argument("--accuracy", metavar="CSV", help="your accuracy table: model,samples,budget,accuracy")
    p.add_argument("--table-json", action="store_true", dest="as_json", help="print JSON instead of a table")
    add_scenario_arguments(p)


def run(args: argparse.Namespace) -> int:
    from simulator.results import build_summary
    from simulator.run import simulate
    from simulator.studies import TtsPoint, frontier, load_accuracy

    base = scenario_from_args(args)
    if args.num_requests is None:
        base = base.replace(num_requests=16, rate=float("inf"))
    accuracy = load_accuracy(args.accuracy) if args.accuracy else {}
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise ServesimError(f"--models {args.models!r} names no model; give comma-separated models, e.g. qwen3-0.6b,qwen3-8b")
    grid = list(itertools.product(models, _ints(args.samples, "--samples"), _ints(args.budgets, "--budgets")))
    points = []
    for i, (model, n, budget) in enumerate(grid, start=1):
        if not args.as_json:
            print(f"[{i}/{len(grid)}] {model} N={n} budget={budget}", file=sys.stderr)
        s = base.replace(model=model, samples_per_prompt=n, output_budget_tokens=budget)
        summary = build_summary(simulate(s))
        section = summary.get("tts") or {}
        points.append(TtsPoint(model, n, budget, section.get("eflops_per_question", float("nan")),
                               section.get("usd_per_question", float("nan")),
                               section.get("joules_per_question", float("nan")),
                               section.get("median_time_to_last_sample_ms", float("nan")),
                               accuracy.get((model.lower(), n, budget))))
    best = frontier(points)
    if args.as_json:
        print(json.dumps({"points": [_as_dict(p) for p in points], "frontier": best}, indent=2))
        return 0
    print(f"{'model':<14} {'N':>4} {'budget':>7} {'eFLOPs/question':>16} {'USD/question':>13} "
          f"{'J/question':>11} {'p50 last sample s':>18} {'accuracy':>9} frontier")
    for i, p in enumerate(points):
        acc = "n/a" if p.accuracy is None else f"{p.accuracy:.3f}"
        print(f"{p.model:<14} {p.samples:>4} {p.budget:>7} {p.eflops_per_question:>16.4e} "
              f"{p.usd_per_question:>13.5f} {p.joules_per_question:>11.1f} "
              f"{p.p50_time_to_last_sample_ms / 1e3:>18.2f} {acc:>9} {'*' if i in best else ''}")
    print("frontier: cheapest eFLOPs per question with no cheaper point that is "
          + ("at least as accurate" if accuracy else "at least as fast (no accuracy table given)"))
    return 0


def _as_dict(p) -> dict:
    return {f: getattr(p, f) for f in p.__slots__}
