"""The transfer model: a calibration for a device nobody measured, carried over from the measured
ones by the device's own properties.

Owns the rule and its error. Efficiencies are fractions of a device's dense peaks
(profiles/device_model.py), so what transfers is the fraction, never the time:
- kernel classes (gemm, elementwise, memory, attention): the geometric mean of each efficiency
  over the measured devices of the same architecture family (hopper, ampere, ...), or over every
  measured device when the family has none; per-call floors likewise. The target's own peak
  FLOP/s (per dtype) and memory bandwidth then give its times.
- all-reduce: latency from the same family (else the mean); bus bandwidth = the measured
  devices' achieved fraction of their one-way NVLink bandwidth x the target's; a device without
  NVLink (interconnect none, or PCIe only) uses that fraction of its host link.
The known error of the rule is measured, not assumed: leave_one_device_out() predicts each
measured device's tables from the others and reports the error (the note and `servesim fit
--transfer-error` print it). Never imports torch.
"""
from __future__ import annotations

import math

import numpy as np

from hardware import DeviceSpec
from profiles.device_model import CollectiveFit, DeviceKernels, KernelClass


def _gmean(values: list[float]) -> float:
    return float(math.exp(np.mean(np.log(values))))


def _nvlink_bytes_per_s(spec: DeviceSpec) -> float | None:
    kind = (spec.interconnect_kind or "").lower()
    if spec.interconnect_bidirectional_gb_per_s and ("nvlink" in kind or "infinity" in kind) and "bridge" not in kind:
        return spec.interconnect_bidirectional_gb_per_s / 2 * 1e9
    return None


def _basis(target: DeviceSpec, measured: list[DeviceKernels]) -> tuple[list[DeviceKernels], str]:
    same = [m for m in measured if m.spec.family and m.spec.family == target.family]
    if same:
        return same, f"same family ({target.family}): {', '.join(m.device for m in same)}"
    return measured, f"no measured {target.family or 'same-family'} device: mean of {', '.join(m.device for m in measured)}"


def transfer_class(name: str, basis: list[DeviceKernels]) -> KernelClass | None:
    """One class carried over: geometric means of the basis devices' efficiencies and floors."""
    have = [m.classes[name] for m in basis if name in m.classes]
    if not have:
        return None
    by_dtype: dict[str, list[float]] = {}
    for c in have:
        for dtype, eta in c.eta_compute_by_dtype.items():
            by_dtype.setdefault(dtype, []).append(eta)
    ps = {c.p for c in have}
    return KernelClass(eta_compute=_gmean([c.eta_compute for c in have]), eta_memory=_gmean([c.eta_memory for c in have]),
                       overhead_s=_gmean([max(c.overhead_s, 1e-9) for c in have]),
                       p=ps.pop() if len(ps) == 1 else have[0].p,
                       eta_compute_by_dtype={d: _gmean(v) for d, v in by_dtype.items()},
                       extra_tokens=float(np.mean([c.extra_tokens for c in have])),
                       source="transfer from " + ", ".join(m.device for m in basis if name in m.classes))


def transfer_collectives(target: DeviceSpec, measured: list[DeviceKernels]) -> dict[int, CollectiveFit]:
    """Measured latency (same family first) and link-efficiency x the target's own link."""
    link = _nvlink_bytes_per_s(target) or target.host_link_bytes_per_s
    samples: dict[int, list[tuple[float, float, str, str]]] = {}
    for m in measured:
        m_link = _nvlink_bytes_per_s(m.spec) or m.spec.host_link_bytes_per_s
        for n, c in m.collectives.items():
            samples.setdefault(n, []).append((c.latency_s, c.bus_bytes_per_s / m_link, m.device, m.spec.family))
    out = {}
    for n, rows in samples.items():
        same = [r for r in rows if r[3] and r[3] == target.family] or rows
        out[n] = CollectiveFit(num_gpus=n, latency_s=_gmean([r[0] for r in same]),
                               bus_bytes_per_s=_gmean([r[1] for r in rows]) * link,
                               source=f"transfer: latency of {', '.join(r[2] for r in same)}, link efficiency of "
                                      f"{', '.join(r[2] for r in rows)} x {link / 1e9:.0f} GB/s "
                                      f"({'NVLink' if _nvlink_bytes_per_s(target) else 'host link'})")
    return out


def transfer_device(target: DeviceSpec, measured: list[DeviceKernels], *, known_error: str = "") -> DeviceKernels:
    """A calibration of `target` from the measured devices' calibrations (never the target's own)."""
    measured = [m for m in measured if m.device != target.name]
    if not measured:
        raise ValueError(f"no measured device calibration to transfer to {target.name} from")
    basis, why = _basis(target, measured)
    names = sorted({k for m in measured for k in m.classes})
    classes = {}
    for name in names:
        cls = transfer_class(name, basis) or transfer_class(name, measured)
        if cls is not None:
            classes[name] = cls
    provenance = {"kind": "transfer", "device": target.name,
                  "source": f"transfer model (profiles/transfer.py): {why}; {target.name}'s own peaks",
                  "known_error": known_error or "see `servesim fit --transfer-error` (leave-one-device-out)",
                  "basis": [m.device for m in basis]}
    return DeviceKernels(target, classes, transfer_collectives(target, measured), provenance)


def leave_one_device_out(measured: list[DeviceKernels], rows_by_device: dict[str, list], evaluate) -> dict:
    """For each measured device: its rows predicted by the transfer from the others.
    `evaluate(kernels, rows) -> {"median_ape_pct", "p90_ape_pct", ...}`."""
    out = {}
    for m in measured:
        others = [o for o in measured if o.device != m.device]
        if not others or m.device not in rows_by_device:
            continue
        moved = transfer_device(m.spec, others)
        out[m.device] = evaluate(moved, rows_by_device[m.device])
    return out

