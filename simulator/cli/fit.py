"""`servesim fit`: fit per-op predictors on profile tables and report their error on held-out ones
(or, with --device-calibrations / --engine-fit / --power, rebuild the shipped calibrations:
simulator/cli/fit_shipped.py).

Inputs are profile directories / table.csv files, or Vidur compute CSVs (detected by their
time_stats.* columns, imported with --vidur-device). Prints per op and overall the median and p90
absolute percentage error of the predictions on the --test rows (and where each came from).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from simulator.cli import fit_shipped
from simulator.errors import ServesimError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", nargs="+", metavar="TABLE", help="profile dirs, table.csv or Vidur CSVs")
    p.add_argument("--test", nargs="*", default=[], metavar="TABLE", help="held-out tables to report the error on")
    p.add_argument("--vidur-device", default="a100-80gb", help="catalog device of imported Vidur CSVs")
    p.add_argument("--out", metavar="FIT.json", help="save the fit (loadable by `simulate --profile`)")
    p.add_argument("--no-grids", action="store_true", help="save only the fitted rooflines, not the measured grids")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    fit_shipped.add_arguments(p)


def read_rows(path: str, vidur_device: str) -> tuple[list, dict]:
    from profiles.table import load_profile
    from profiles.vidur import import_vidur_csv, vidur_metadata

    p = Path(path)
    if not p.exists():
        raise ServesimError(f"table {path!r} does not exist")
    if p.is_file() and p.suffix == ".csv" and "time_stats." in p.open().readline():
        return import_vidur_csv(p), vidur_metadata(p, device=vidur_device)
    profile = load_profile(p)
    return profile.rows, profile.metadata


def run(args: argparse.Namespace) -> int:
    if fit_shipped.wanted(args):
        if args.train or args.test:
            raise ServesimError("--train/--test fit a profile; --device-calibrations, --engine-fit and --power "
                                "rebuild the shipped calibrations: use one or the other")
        return fit_shipped.run(args)
    if not args.train:
        raise ServesimError("nothing to fit: give --train TABLE ... (or --device-calibrations, --engine-fit NAME, --power)")
    from hardware import load_device

    load_device(args.vidur_device)  # an unknown --vidur-device is an error before anything is read
    from profiles.fit import FittedProfile, evaluate, save_fit
    from simulator.cost import dtypes_match

    train_rows, metas = [], []
    for path in args.train:
        rows, meta = read_rows(path, args.vidur_device)
        train_rows += rows
        metas.append(meta)
    device, dtype = metas[0]["device"], metas[0]["dtype"]
    for meta, path in zip(metas, args.train):
        if meta["device"] != device or not dtypes_match(meta["dtype"], dtype):
            raise ServesimError(f"{path}: measured on {meta['device']}/{meta['dtype']}, "
                                f"the first table on {device}/{dtype}; fit one device and dtype at a time")
    provenance = {"device": device, "dtype": dtype, "trained_on": args.train,
                  "train_metadata": metas, "model": "t = t0 + max(FLOPs/F_eff, bytes/B_eff) per op"}
    fit = FittedProfile.from_rows(train_rows, provenance)
    report = {"device": device, "dtype": dtype, "train": args.train, "test": args.test,
              "fitted": _fitted_summary(fit, device, dtype)}
    if args.test:
        test_rows = []
        for path in args.test:
            test_rows += read_rows(path, args.vidur_device)[0]
        report["test_error"] = evaluate(fit, test_rows)
        fit.provenance["test_error"] = {"tables": args.test, "overall": report["test_error"]["overall"],
                                        "per_op_median_ape_pct": {op: v["median_ape_pct"] for op, v in
                                                                  report["test_error"]["per_op"].items()}}
    if args.out:
        save_fit(fit, Path(args.out), include_grids=not args.no_grids)
        report["saved"] = args.out
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else format_report(report))
    return 0


def _fitted_summary(fit, device: str, dtype: str) -> dict:
    """Achieved rates per op, and as efficiencies of the catalog device's peaks when known."""
    from hardware import load_device

    try:
        spec = load_device(device)
        peak, bw = spec.peak_flops("bf16" if dtype == "fp16" and "fp16" not in spec.peak_tflops else dtype), \
            spec.memory_bandwidth_bytes_per_s
    except (ValueError, LookupError):
        peak = bw = None
    out = {}
    for op, f in fit.ops.items():
        row = {"flops_per_s": f.flops_per_s, "bytes_per_s": f.bytes_per_s, "overhead_us": f.overhead_s * 1e6,
               "train_rows": f.num_rows, "train_median_ape_pct": f.train_median_ape}
        if peak:
            row |= {"eta_compute": f.flops_per_s / peak, "eta_memory": f.bytes_per_s / bw}
        out[op] = row
    return out


def format_report(r: dict) -> str:
    lines = [f"fit on {', '.join(r['train'])} ({r['device']}, {r['dtype']})",
             f"{'op':<14}{'eta_c':>8}{'eta_m':>8}{'t0 us':>8}{'train med%':>11}"]
    for op, f in r["fitted"].items():
        lines.append(f"{op:<14}{f.get('eta_compute', float('nan')):>8.3f}{f.get('eta_memory', float('nan')):>8.3f}"
                     f"{f['overhead_us']:>8.2f}{f['train_median_ape_pct']:>11.2f}")
    if "test_error" in r:
        e = r["test_error"]
        lines += ["", f"test on {', '.join(r['test'])}",
                  f"{'op':<14}{'rows':>7}{'median APE %':>14}{'p90 APE %':>11}  sources"]
        for op, v in e["per_op"].items():
            lines.append(f"{op:<14}{v['num_rows']:>7}{v['median_ape_pct']:>14.2f}{v['p90_ape_pct']:>11.2f}  {v['sources']}")
        o = e["overall"]
        lines.append(f"{'overall':<14}{o['num_rows']:>7}{o['median_ape_pct']:>14.2f}{o['p90_ape_pct']:>11.2f}")
        if e["unpredicted_ops"]:
            lines.append(f"not predicted (never measured in training): {', '.join(e['unpredicted_ops'])}")
    if "saved" in r:
        lines.append(f"saved {r['saved']}")
    return "\n".join(lines)
