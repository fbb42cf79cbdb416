"""`servesim fit --device-calibrations | --engine NAME | --power`: rebuild what servesim ships.

- device calibrations: profiles/device_catalog.py on Vidur's tables (--vidur-root) and the cited
  kernel measurements, one profiles/data/<device>/device.json per catalog GPU;
- an engine: the numbers its file's [fit] table names, fitted on the published points declared
  for calibration (simulator/validation/engine_fit.py); the file is rewritten with the fitted
  values, the points and their errors before and after;
- power: simulator/validation/power_fit.py on the NVML runs, one power.json per catalog GPU.
Each prints what it fitted and the error it measured.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from simulator.errors import ServesimError

DEFAULT_VIDUR_ROOT = Path(__file__).resolve().parents[3] / "shared" / "reference" / "vidur"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("rebuild the shipped calibrations (instead of --train)")
    g.add_argument("--device-calibrations", action="store_true",
                   help="fit every catalog GPU's kernel calibration (profiles/data/<device>/device.json)")
    g.add_argument("--vidur-root", default=str(DEFAULT_VIDUR_ROOT), metavar="DIR",
                   help="Vidur's reference tables (compute/ and network/), default ../shared/reference/vidur")
    g.add_argument("--engine-fit", metavar="NAME", dest="engine_fit",
                   help="fit the numbers an engine file's [fit] table names on its declared calibration points")
    g.add_argument("--power", action="store_true", help="fit the per-device power models to the NVML runs")
    g.add_argument("--out-dir", metavar="DIR", help="write here instead of profiles/data (device and power files)")


def wanted(args: argparse.Namespace) -> bool:
    return bool(args.device_calibrations or args.engine_fit or args.power)


def run(args: argparse.Namespace) -> int:
    if args.device_calibrations:
        _device_calibrations(args)
    if args.engine_fit:
        _engine(args.engine_fit)
    if args.power:
        _power(args)
    return 0


def _device_calibrations(args: argparse.Namespace) -> None:
    from profiles.device_catalog import build_calibrations, write_calibrations

    root = Path(args.vidur_root)
    if not (root / "compute").is_dir():
        raise ServesimError(f"--vidur-root {root}: no compute/ folder of Vidur profiling tables there")
    cals = build_calibrations(root)
    paths = write_calibrations(cals, Path(args.out_dir) if args.out_dir else None)
    for name, cal in sorted(cals.items()):
        g = cal.classes["gemm"]
        print(f"{name:10s} {cal.kind:8s} gemm eta_c {g.eta_compute:.3f} eta_m {g.eta_memory:.3f}  "
              f"{cal.provenance.get('known_error', '')}")
    print(f"wrote {len(paths)} files under {paths[0].parent.parent}")


def _engine(name: str) -> None:
    from simulator.cost import engine_toml, load_engine
    from simulator.validation import calibration_points, fit_engine, read_points

    base = load_engine(name)
    bounds = base.fit.get("bounds")
    if not bounds:
        raise ServesimError(f"engine {name!r} ({base.origin}) has no [fit] bounds: nothing to fit")
    points = calibration_points(read_points(), base.name)
    print(f"fitting {', '.join(bounds)} of {base.name} on {len(points)} points ...", file=sys.stderr)
    result = fit_engine(base, {k: tuple(v) for k, v in bounds.items()}, points)
    fitted = result.engine
    record = {"bounds": bounds, **result.describe()}
    Path(base.origin).write_text(engine_toml(fitted.__class__(**{**_fields(fitted), "fit": record})))
    for k in bounds:
        print(f"  {k} = {getattr(fitted, k):.6g}")
    for pid, b, a in zip(result.points, result.errors_before_pct, result.errors_after_pct):
        print(f"  {pid:40s} error {b:+7.2f}% -> {a:+7.2f}%")
    print(f"wrote {base.origin}")


def _fields(spec) -> dict:
    import dataclasses

    return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}


def _power(args: argparse.Namespace) -> None:
    from simulator.validation import fit_power_models, read_power_runs, write_power_models

    models, report = fit_power_models(read_power_runs())
    paths = write_power_models(models, Path(args.out_dir) if args.out_dir else None)
    print(json.dumps(report, indent=1))
    for name, m in sorted(models.items()):
        print(f"{name:10s} {m.kind:8s} active {m.active_w:6.0f} W  compute {m.compute_w:6.0f} W  memory {m.memory_w:6.0f} W"
              f"  ({m.known_error})")
    print(f"wrote {len(paths)} files")
