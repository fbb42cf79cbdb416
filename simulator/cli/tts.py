"""`servesim tts`: test-time-scaling sweep over model x samples per prompt x length budget."""
from __future__ import annotations

import argparse
import itertools
import json
import sys

from simulator.cli.inert_flags import refuse_inert_flags
from simulator.cli.simulate import add_scenario_arguments, scenario_from_args
from simulator.errors import ServesimError
from simulator.scenario import scenario_file_keys

# fields the sweep sets itself (refused typed or in a --scenario file)
TTS_SETS = {"samples_per_prompt": "tts sweeps --samples", "output_budget_tokens": "tts sweeps --budgets"}


def _ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x]
    except ValueError:
        raise ServesimError(f"{flag}={text!r}: give comma-separated integers") from None
    if not values or min(values) < 1:
        raise ServesimError(f"{flag}={text!r}: give comma-separated integers >= 1")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "--models", dest="models", metavar="A,B",
                   help="a model or comma-separated models, e.g. qwen3-0.6b,qwen3-8b (default: the scenario's "
                        "model, llama-3-8b unless --scenario names another)")
    p.add_argument("--samples", default="1,4,16", help="samples per prompt (Best-of-N), comma-separated")
    p.add_argument("--budgets", default="4096,16384", help="output length budgets in tokens, comma-separated")
    p.add_argument("--accuracy", metavar="CSV", help="your accuracy table: model,samples,budget,accuracy")
    p.add_argument("--json", "--table-json", action="store_true", dest="as_json",
                   help="print JSON instead of a table")
    add_scenario_arguments(p, exclude=("--model",))
    p.epilog = ("Without --num-requests (or num_requests in the --scenario file): 16 prompts, all at t=0 (at "
                "the rate when one is given, typed or in the file). A budget caps each "
                "sample's output at that many tokens; it changes nothing when no output is that long "
                "(--output-tokens sets the lengths drawn), and the table says so.")


def run(args: argparse.Namespace) -> int:
    from simulator.results import build_summary
    from simulator.run import simulate
    from simulator.studies import TtsPoint, frontier, load_accuracy

    base = scenario_from_args(args)
    in_file = scenario_file_keys(args.scenario) if args.scenario else {}
    if args.num_requests is None and "num_requests" not in in_file:  # 16 prompts, at t=0 unless a rate is given
        given = args.rate is not None or "rate" in in_file
        base = base.replace(num_requests=16, rate=base.rate if given else float("inf"))
    refuse_inert_flags(args, [base], replaced=TTS_SETS)
    accuracy = load_accuracy(args.accuracy) if args.accuracy else {}
    models = [m.strip() for m in (args.models or base.model).split(",") if m.strip()]
    if not models:
        raise ServesimError(f"--model {args.models!r} names no model; give one or comma-separated models, "
                            "e.g. qwen3-0.6b,qwen3-8b")
    grid = list(itertools.product(models, _ints(args.samples, "--samples"), _ints(args.budgets, "--budgets")))
    points, longest = [], []
    for i, (model, n, budget) in enumerate(grid, start=1):
        if not args.as_json:
            print(f"[{i}/{len(grid)}] {model} N={n} budget={budget}", file=sys.stderr)
        s = base.replace(model=model, samples_per_prompt=n, output_budget_tokens=budget)
        result = simulate(s)
        summary = build_summary(result)
        section = summary.get("tts") or {}
        lengths = result.recorder.output_tokens
        longest.append(int(lengths.max()) if len(lengths) else 0)
        points.append(TtsPoint(model, n, budget, section.get("eflops_per_question", float("nan")),
                               section.get("usd_per_question", float("nan")),
                               section.get("joules_per_question", float("nan")),
                               section.get("median_time_to_last_sample_ms", float("nan")),
                               accuracy.get((model.lower(), n, budget))))
    best = frontier(points)
    if args.as_json:
        rows = [{**_as_dict(p), "max_output_tokens": m, "budget_reached": m >= p.budget}
                for p, m in zip(points, longest)]
        print(json.dumps({"points": rows, "frontier": best}, indent=2))
        return 0
    w = max(14, *(len(p.model) for p in points))
    print(f"{'model':<{w}} {'N':>4} {'budget':>7} {'eFLOPs/question':>16} {'USD/question':>13} "
          f"{'J/question':>11} {'p50 last sample s':>18} {'accuracy':>9} frontier")
    for i, p in enumerate(points):
        acc = "n/a" if p.accuracy is None else f"{p.accuracy:.3f}"
        print(f"{p.model:<{w}} {p.samples:>4} {p.budget:>7} {p.eflops_per_question:>16.4e} "
              f"{p.usd_per_question:>13.5f} {p.joules_per_question:>11.1f} "
              f"{p.p50_time_to_last_sample_ms / 1e3:>18.2f} {acc:>9} {'*' if i in best else '':<8}"
              f"{budget_note(p.budget, longest[i])}".rstrip())
    print("frontier: cheapest eFLOPs per question with no cheaper point that is "
          + ("at least as accurate" if accuracy else "at least as fast (no accuracy table given)"))
    if any(m < p.budget for p, m in zip(points, longest)):
        print("budget not reached: no output was as long as the budget, so it changed nothing in that row; "
              "draw longer outputs with --output-tokens (e.g. lognormal:8192:0.8) to see it bind")
    return 0


def budget_note(budget: int, longest_output: int) -> str:
    """'' when some sample's output reached the budget (it was capped there), else a note with the
    longest output of the run (the budget never bound)."""
    if longest_output >= budget:
        return ""
    return f"  budget not reached (longest output {longest_output} tokens)"


def _as_dict(p) -> dict:
    return {f: getattr(p, f) for f in p.__slots__}
