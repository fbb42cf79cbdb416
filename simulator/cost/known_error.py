"""Where a prediction's numbers come from and how wrong they are known to be.

Owns the provenance record every run carries (summary["provenance"]["prediction"]) and its one-line
form: the kernel source (a measured profile, the device calibration fitted on measured tables or
carried over by the transfer model, or the ideal roofline), the engine and where its numbers came
from, the power model, and the known end-to-end error: the held-out error of the published
measurements on this device (profiles/data/fidelity.json, written by benchmarks/fidelity.py from
`servesim validate --published`), or, for a device with no published point, that of the devices
priced the same way (transferred calibrations), with a caveat when the model's architecture class
(MLA, a quantized checkpoint, ...) or the engine has no published point. Speed metrics only;
energy has its own line.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

FIDELITY = Path(__file__).resolve().parents[2] / "profiles" / "data" / "fidelity.json"
IDEAL_NOTE = ("ideal roofline (pre-calibration): 1.71x optimistic at the median of the published set, 0.99x-3.6x "
              "by device; see `servesim validate --published --engine ideal`")


@lru_cache(maxsize=4)
def _fidelity(path: Path = FIDELITY) -> dict:
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def _kernels(cost_model: dict) -> tuple[str, str]:
    """(label, known kernel error) from a cost model's describe()."""
    if cost_model.get("kind") == "speculative" and isinstance(cost_model.get("target"), dict):
        label, error = _kernels(cost_model["target"])  # the target's kernels (the draft's may be another device's)
        return f"{label} for the target", error
    if cost_model.get("kind") == "roofline":
        return "ideal roofline", IDEAL_NOTE
    cal = cost_model.get("calibration") or {}
    if cal.get("calibrated_by"):
        return f"calibrated on your measurements ({cal['calibrated_by']})", cal.get("known_error", "")
    if cal:
        kind = {"fit": "fitted on measured tables", "transfer": "transfer model"}.get(cal.get("kind"), cal.get("kind"))
        label = f"calibrated {cal.get('device')} ({kind})"
        if cost_model.get("measured_profile"):
            label = f"measured profile {cost_model['measured_profile']} over {label}"
        return label, cal.get("known_error", "")
    return f"measured profile {cost_model.get('profile', '')}", cost_model.get("known_error", "")


def end_to_end_error(device: str, calibration_kind: str | None) -> dict:
    """Held-out published error for `device`, or for devices priced the same way when it has none."""
    fid = _fidelity()
    if not fid:
        return {"basis": "none", "text": "end-to-end error not measured (profiles/data/fidelity.json missing)"}
    own = fid.get("device", {}).get(device)
    if own and own.get("points", 0) >= 3:
        return {"basis": f"{own['points']} held-out published points on {device}", **own,
                "text": (f"held-out published points on {device}: median |error| {own['median_abs_error_pct']:.0f}%, "
                         f"p90 {own['p90_abs_error_pct']:.0f}% ({own['points']} speed points)")}
    group = fid.get("calibration_kind", {}).get(calibration_kind or "")
    if group:
        return {"basis": f"no (or < 3) published points on {device}: devices with {calibration_kind} calibrations",
                **group, "text": (f"no published points on {device}; devices with {calibration_kind} calibrations: "
                                  f"median |error| {group['median_abs_error_pct']:.0f}%, p90 "
                                  f"{group['p90_abs_error_pct']:.0f}% ({group['points']} points)")}
    return {"basis": "none", "text": f"no published end-to-end point for {device}"}


def describe_device(device) -> str:
    """A catalog device's kernel source in a few words, with its known end-to-end p90 error."""
    from simulator.cost.device_choice import device_kernels

    cal = device_kernels(device)
    if cal is None:
        return "measured profile / roofline"
    e2e = end_to_end_error(device.name, cal.kind)
    p90 = e2e.get("p90_abs_error_pct")
    return f"{'fitted' if cal.kind == 'fit' else cal.kind}" + (f", p90 err {p90:.0f}%" if p90 is not None else "")


def prediction_provenance(cost_model: dict, engine: dict | None, device: str, power: dict | None = None,
                          architecture: str | None = None) -> dict:
    """The record of where a run's numbers came from (module docstring). `architecture`: the
    model's ModelSpec.architecture_class; a class with no held-out published point says so."""
    label, kernel_error = _kernels(cost_model)
    engine = engine or {}
    ideal = engine.get("device_model") == "ideal" or cost_model.get("kind") == "roofline"
    cal_kind = (cost_model.get("calibration") or {}).get("kind")
    own = (cost_model.get("calibration") or {}).get("calibrated_by")
    e2e = ({"basis": "ideal", "text": IDEAL_NOTE} if ideal
           else {"basis": "your benchmark files", "text": kernel_error_of(cost_model)} if own
           else end_to_end_error(device, cal_kind))
    sources = engine.get("sources") or {}
    fitted = [k for k, v in sources.items() if str(v).startswith("fitted")]
    borrowed = [k for k, v in sources.items() if str(v).startswith("as ") and "fitted" in str(v)]
    engine_text = (f"{engine.get('name', 'none')} {engine.get('version', '')}".strip()
                   + (f" (fitted: {', '.join(fitted)})" if fitted else "")
                   + (f" (borrowed fits: {', '.join(borrowed)})" if borrowed else ""))
    name = engine.get("name")
    covered = _fidelity().get("engine", {})
    if name and not ideal and not own and e2e["basis"] != "none" and covered and name not in covered:
        e2e = {**e2e, "text": e2e["text"] + f"; engine {name} itself has no held-out published points (its cost "
                                            "is not validated end to end)"}
    classes = _fidelity().get("architecture", {})
    if architecture and not own and e2e["basis"] != "none" and classes and architecture not in classes:
        e2e = {**e2e, "text": e2e["text"] + f"; no held-out published point for a {architecture} model (the error "
                                            f"above is for {', '.join(sorted(classes))} models)"}
    kind = ("roofline" if ideal and cost_model.get("kind") == "roofline" else "ideal" if ideal
            else "calibrated" if own else "profile" if cost_model.get("measured_profile") or not cal_kind
            else cal_kind)
    out = {"label": "ideal roofline (uncalibrated)" if ideal and cost_model.get("kind") == "roofline" else label,
           "calibrated": not ideal, "kind": kind, "kernels": label, "kernels_known_error": kernel_error, "engine": engine_text,
           "known_error": e2e["text"], "speed_error_median_pct": e2e.get("median_abs_error_pct"),
           "speed_error_p90_pct": e2e.get("p90_abs_error_pct"), "error_basis": e2e["basis"]}
    if power:
        out["power"] = f"{power.get('kind')}: {power.get('known_error', '')}"
    return out


def kernel_error_of(cost_model: dict) -> str:
    return (cost_model.get("calibration") or {}).get("known_error", "")


def short_label(p: dict | None) -> str:
    """A prediction record in a few words (tables): kernel source and known p90 speed error."""
    if not p:
        return "n/a"
    if not p.get("calibrated"):
        return "ideal (uncalibrated)"
    err = p.get("speed_error_p90_pct")
    kind = {"fit": "fitted"}.get(p.get("kind", "?"), p.get("kind", "?"))
    return f"{kind}, p90 err {err:.0f}%" if err is not None else kind


def provenance_line(p: dict) -> str:
    return f"cost model: {p['label']} + engine {p['engine']}; known error: {p['known_error']}"
