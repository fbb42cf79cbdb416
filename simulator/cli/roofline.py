"""`servesim roofline --model M --hardware H [--dtype bf16] [--json]`: ridge point, critical batch,
the memory-bound context ctx* and batch-1 decode time for a model/device pair."""
from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="catalog name or path to a config.json")
    p.add_argument("--hardware", required=True, help="catalog device name or path to a device .toml")
    p.add_argument("--dtype", default="bf16", help="weight/KV dtype (default bf16)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def run(args: argparse.Namespace) -> int:
    from hardware import load_device
    from simulator.models import load_model
    from simulator.studies import format_figures, roofline_figures

    figures = roofline_figures(load_model(args.model), load_device(args.hardware), args.dtype)
    if args.json:
        print(json.dumps({k: (None if v == float("inf") else v) for k, v in figures.items()}, indent=2))
    else:
        print(format_figures(figures))
    return 0
