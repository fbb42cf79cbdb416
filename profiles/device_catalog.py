"""Device calibrations for every catalog GPU: fitted where measured tables exist, carried over by
the transfer model elsewhere, adjusted by published kernel measurements (all cited).

Owns the build behind `servesim fit --device-calibrations` (which writes one
profiles/data/<device>/device.json per catalog GPU) and the leave-one-device-out error of the
transfer. Layers, in order:
1. measured devices (Vidur's tables, profiles/vidur.py VIDUR_DEVICES): GEMM and elementwise classes
   fitted on every model table of the device, test error leave-one-model-out; all-reduce latency
   and bus bandwidth from its NVSwitch network table when Vidur has one;
2. attention classes from published kernel times (profiles/data/kernels/published.csv): decode and
   prefill fitted on the device's own rows where it has enough (H100: FlashAttention-2/3,
   B200: FlashInfer/FA4), else carried over like any other class;
3. every other device: profiles/transfer.py from the measured ones, then three published device
   properties: the best achievable GEMM throughput (one methodology for all devices) scales the
   transferred eta_compute by target/basis, the achieved STREAM bandwidth (target/basis within one
   benchmark series) scales eta_memory of the memory-bound classes, and published all-reduce bus
   bandwidths replace the link-fraction estimate;
4. fp8/int8 GEMMs: eta_compute x (best fp8 / best bf16 GEMM fraction) of the same device (or its
   family, or the mean ratio of the devices that have both), never the nominal fp8 peak;
5. the host link: effective / nominal bandwidth of published pinned host-to-device copies over
   links of the same kind (provenance["host_link"]).
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from hardware import DeviceSpec, device_names, load_device
from profiles.device_fit import calibrate_device, fit_attention, fit_collectives, read_collective_csv
from profiles.device_model import CollectiveFit, DeviceKernels, KernelClass, save_device
from profiles.published_kernels import (
    Published,
    attention_rows,
    best_gemm_fraction,
    bus_bandwidth_gb_s,
    host_link_efficiency,
    read_published,
    sources,
    stream_fraction,
)
from profiles.transfer import transfer_device
from profiles.vidur import VIDUR_DEVICES, vidur_all_reduce, vidur_tables
from profiles.work import ELEMENTWISE_OPS

ATTENTION_MIN_ROWS = 3  # fewer published rows: fit the efficiency only, on the best-measured device's shape
FLOOR_MULTIPLE = 10  # ... and only from rows lasting this many per-call floors (a shorter one measures the floor)


def measured_calibrations(vidur_root: str | Path, published: list[Published]) -> dict[str, DeviceKernels]:
    out = {}
    for vidur_name, device in VIDUR_DEVICES.items():
        spec = load_device(device)
        tables = vidur_tables(vidur_root, vidur_name)
        net = vidur_all_reduce(vidur_root, vidur_name)
        colls = fit_collectives(read_collective_csv(net), source=f"Vidur {net.parent.name}/all_reduce.csv") if net else {}
        prov = {"source": f"Vidur profiling tables ({vidur_name}: {', '.join(tables)}; microsoft/vidur @7d47513, MIT)",
                "tables": sorted(tables)}
        out[device] = calibrate_device(spec, tables, collectives=colls, provenance=prov)
    return out


def _attention(device: str, spec: DeviceSpec, published: list[Published], template: dict) -> dict[str, KernelClass]:
    rows = attention_rows(published, device)
    for op, rs in list(rows.items()):
        if len(rs) < ATTENTION_MIN_ROWS and op in template:
            rows[op] = [r for r in rs if r.time_s >= FLOOR_MULTIPLE * template[op].overhead_s]
    out: dict[str, KernelClass] = {}
    decode = rows.get("attn_decode", [])
    if decode:
        tpl = None if len(decode) >= ATTENTION_MIN_ROWS else template.get("attn_decode")
        if tpl is not None or len(decode) >= ATTENTION_MIN_ROWS:
            out["attn_decode"] = fit_attention("attn_decode", decode, spec, template=tpl,
                                               source="published kernels: " + _ids(published, device, "attn_decode_us"))
    prefill = rows.get("attn_prefill", [])
    floor = (out.get("attn_decode") or template.get("attn_decode") or KernelClass(eta_compute=1, eta_memory=1,
                                                                                  overhead_s=0)).overhead_s
    if prefill:
        tpl = None if len(prefill) >= ATTENTION_MIN_ROWS else template.get("attn_prefill")
        if tpl is not None or len(prefill) >= ATTENTION_MIN_ROWS:
            out["attn_prefill"] = fit_attention("attn_prefill", prefill, spec, template=tpl, overhead_s=floor,
                                                source="published kernels: " + _ids(published, device,
                                                                                    "attn_prefill_us"))
    return out


def _ids(published: list[Published], device: str, quantity: str) -> str:
    ids = [p.id for p in published if p.device == device and p.quantity == quantity]
    return f"{', '.join(ids)} ({sources(published, ids[:1])}{' ...' if len(ids) > 1 else ''})"


def _fp8_ratio(device: str, family: str, specs: dict[str, DeviceSpec], published: list[Published]) -> tuple[float, str]:
    """best fp8 / best bf16 GEMM fraction of the device, its family, or the mean over devices with both."""
    def ratio(d: str) -> float | None:
        s = specs[d]
        bf = best_gemm_fraction(published, d, "bf16", s.peak_tflops.get("bf16", math.nan))
        fp = best_gemm_fraction(published, d, "fp8", s.peak_tflops.get("fp8", math.nan))
        if fp is not None and bf is None:  # same silicon in the family (e.g. H200 ~ H100 compute)
            twins = [best_gemm_fraction(published, t, "bf16", specs[t].peak_tflops["bf16"]) for t in specs
                     if specs[t].family == s.family and t != d]
            bf = next((b for b in twins if b is not None), None)
        return fp / bf if fp is not None and bf is not None else None

    own = ratio(device)
    if own is not None:
        return own, f"{device}'s published best fp8 / best bf16 GEMM"
    fam = [r for d in specs if specs[d].family == family and d != device and (r := ratio(d)) is not None]
    if fam:
        return float(np.mean(fam)), f"family {family} published best fp8 / best bf16 GEMM"
    every = [r for d in specs if (r := ratio(d)) is not None]
    return float(np.mean(every)), "mean published best fp8 / best bf16 GEMM of " + ", ".join(
        d for d in specs if ratio(d) is not None)


def _with_fp8(cal: DeviceKernels, ratio: float, why: str) -> DeviceKernels:
    gemm = cal.classes["gemm"]
    if "fp8" not in cal.spec.peak_tflops:
        return cal
    fp8 = replace(gemm, eta_compute_by_dtype={**gemm.eta_compute_by_dtype, "fp8": gemm.eta_compute * ratio},
                  source=gemm.source + f"; fp8 eta_compute = bf16 x {ratio:.3f} ({why})")
    return DeviceKernels(cal.spec, {**cal.classes, "gemm": fp8}, cal.collectives, cal.provenance)


def _scale_gemm(cal: DeviceKernels, published: list[Published], basis: list[DeviceKernels]) -> DeviceKernels:
    """Transferred eta_compute x (target's best bf16 GEMM fraction / the basis devices' mean)."""
    target = best_gemm_fraction(published, cal.device, "bf16", cal.spec.peak_tflops.get("bf16", math.nan))
    base = [f for m in basis if (f := best_gemm_fraction(published, m.device, "bf16", m.spec.peak_tflops["bf16"]))]
    if target is None or not base:
        return cal
    scale = target / float(np.mean(base))
    gemm = cal.classes["gemm"]
    gemm = replace(gemm, eta_compute=gemm.eta_compute * scale,
                   source=gemm.source + f"; eta_compute x {scale:.3f} = published best GEMM fraction {target:.3f} / "
                                        f"basis mean {np.mean(base):.3f}")
    return DeviceKernels(cal.spec, {**cal.classes, "gemm": gemm}, cal.collectives, cal.provenance)


MEMORY_CLASSES = (*ELEMENTWISE_OPS, "memory", "attn_decode")  # classes bound by memory bandwidth


def _scale_memory(cal: DeviceKernels, published: list[Published], basis: list[DeviceKernels]) -> DeviceKernels:
    """Transferred eta_memory x (target's achieved STREAM fraction / the basis devices' mean), both
    from the same benchmark series; unchanged where no series covers the target and a basis device."""
    target = stream_fraction(published, cal.device, cal.spec.memory_bandwidth_bytes_per_s / 1e9)
    for method, frac in sorted(target.items()):
        base = [f for m in basis
                if (f := stream_fraction(published, m.device, m.spec.memory_bandwidth_bytes_per_s / 1e9).get(method))]
        if not base:
            continue
        scale = frac / float(np.mean(base))
        classes = dict(cal.classes)
        for name in MEMORY_CLASSES:
            if name in classes:
                c = classes[name]
                classes[name] = replace(c, eta_memory=c.eta_memory * scale,
                                        source=c.source + f"; eta_memory x {scale:.3f} = achieved STREAM fraction "
                                                          f"{frac:.3f} / basis mean {np.mean(base):.3f} ({method})")
        return DeviceKernels(cal.spec, classes, cal.collectives, cal.provenance)
    return cal


def _published_collectives(cal: DeviceKernels, published: list[Published]) -> DeviceKernels:
    colls = dict(cal.collectives)
    for n, c in cal.collectives.items():
        bus = bus_bandwidth_gb_s(published, cal.device, n)
        if bus is not None and cal.provenance.get("kind") == "transfer":
            ids = [p.id for p in published if p.device == cal.device and p.quantity == "all_reduce_busbw_gb_s"]
            colls[n] = CollectiveFit(num_gpus=n, latency_s=c.latency_s, bus_bytes_per_s=bus * 1e9,
                                     source=c.source.split(";")[0] + f"; bus bandwidth published ({', '.join(ids)})")
    return DeviceKernels(cal.spec, cal.classes, colls, cal.provenance)


def measured_error(cal: DeviceKernels) -> str:
    """The known error of a calibration fitted on measured tables, from its classes' held-out errors."""
    def held(name: str) -> float | None:
        e = cal.classes[name].error if name in cal.classes else {}
        return e.get("test", {}).get("leave_one_model_out", {}).get("median_ape_pct")

    gemm = held("gemm")
    elem = [v for name in ELEMENTWISE_OPS if (v := held(name)) is not None]
    parts = []
    if gemm is not None:
        parts.append(f"GEMM {gemm:.0f}%")
    if elem:
        parts.append(f"elementwise {min(elem):.0f}-{max(elem):.0f}%")
    for op in ("attn_decode", "attn_prefill"):
        e = cal.classes[op].error.get("train", {}) if op in cal.classes else {}
        if e:
            parts.append(f"{op} {e['median_ape_pct']:.0f}% (fit on {e['num_rows']} published kernel times)")
    return ("fitted on measured tables; median error on models left out of the fit: " + ", ".join(parts)
            if parts else "fitted on measured tables")


def write_calibrations(cals: dict[str, DeviceKernels], root: Path | None = None) -> list[Path]:
    """One device.json per calibration under `root` (default profiles/data/<device>/)."""
    root = root or Path(__file__).parent / "data"
    paths = []
    for name, cal in sorted(cals.items()):
        path = root / name / "device.json"
        save_device(cal, path)
        paths.append(path)
    return paths


def build_calibrations(vidur_root: str | Path, published: list[Published] | None = None) -> dict[str, DeviceKernels]:
    """A calibration for every catalog GPU (measured, or transferred + published adjustments)."""
    published = read_published() if published is None else published
    specs = {d: load_device(d) for d in device_names()}
    gpus = {d: s for d, s in specs.items() if s.kind == "gpu"}
    measured = measured_calibrations(vidur_root, published)
    template = {}
    for device in ("h100-sxm", *sorted(gpus)):  # the best-measured attention device first: its shape is the template
        att = _attention(device, gpus[device], published, template)
        for op, cls in att.items():
            template.setdefault(op, cls)
        if device in measured and att:
            m = measured[device]
            measured[device] = DeviceKernels(m.spec, {**m.classes, **att}, m.collectives, m.provenance)
    measured = _fill_attention(measured)
    loo = transfer_error(vidur_root, measured)
    out = {}
    for device, spec in sorted(gpus.items()):
        if device in measured:
            cal = measured[device]
            cal = DeviceKernels(cal.spec, cal.classes, cal.collectives,
                                dict(cal.provenance, known_error=measured_error(cal)))
        else:
            cal = transfer_device(spec, list(measured.values()))
            basis = [m for m in measured.values() if m.device in cal.provenance["basis"]]
            cal = _scale_memory(_published_collectives(_scale_gemm(cal, published, basis), published), published, basis)
            att = _attention(device, spec, published, template)  # the device's own kernel times, not scaled
            prov = dict(cal.provenance, known_error=loo["summary"])
            cal = DeviceKernels(cal.spec, {**cal.classes, **att}, cal.collectives, prov)
        out[device] = _with_host_link(_with_fp8(cal, *_fp8_ratio(device, spec.family, gpus, published)), published)
    return out


def _with_host_link(cal: DeviceKernels, published: list[Published]) -> DeviceKernels:
    got = host_link_efficiency(published, cal.spec)
    if got is None:
        return cal
    eff, source = got
    return DeviceKernels(cal.spec, cal.classes, cal.collectives,
                         dict(cal.provenance, host_link={"efficiency": round(eff, 4), "source": source}))


def _fill_attention(measured: dict[str, DeviceKernels]) -> dict[str, DeviceKernels]:
    """Measured devices without published attention kernels take the class carried over from the
    ones that have it (same family first), like any unmeasured device."""
    from profiles.transfer import transfer_class

    out = {}
    for device, cal in measured.items():
        classes = dict(cal.classes)
        for op in ("attn_decode", "attn_prefill"):
            if op in classes:
                continue
            have = [m for m in measured.values() if op in m.classes and m.device != device]
            same = [m for m in have if m.spec.family == cal.spec.family] or have
            if same:
                classes[op] = transfer_class(op, same)
        out[device] = DeviceKernels(cal.spec, classes, cal.collectives, cal.provenance)
    return out


def transfer_error(vidur_root: str | Path, measured: dict[str, DeviceKernels]) -> dict:
    """Leave-one-device-out: each measured device's Vidur rows predicted by the transfer from the
    other measured devices; median and p90 absolute percentage error per class kind."""
    by_device = {}
    for vidur_name, device in VIDUR_DEVICES.items():
        rows = [r for rs in vidur_tables(vidur_root, vidur_name).values() for r in rs]
        moved = transfer_device(measured[device].spec, [m for d, m in measured.items() if d != device])
        errs: dict[str, list[float]] = {}
        for r in rows:
            got = moved.predict(r.op, r.shape, r.dtype)
            kind = "gemm" if r.op in ("attn_qkv", "attn_out", "mlp_up", "mlp_down") else "elementwise"
            errs.setdefault(kind, []).append(abs(got[0] / r.time_s - 1) * 100)
        by_device[device] = {k: {"median_ape_pct": float(np.median(v)), "p90_ape_pct": float(np.percentile(v, 90)),
                                 "num_rows": len(v)} for k, v in errs.items()}
    gemm = [v["gemm"]["median_ape_pct"] for v in by_device.values()]
    elem = [v["elementwise"]["median_ape_pct"] for v in by_device.values()]
    summary = (f"transfer model, leave-one-device-out on Vidur's A100/H100/A40 tables: GEMM median error "
               f"{min(gemm):.0f}-{max(gemm):.0f}%, elementwise {min(elem):.0f}-{max(elem):.0f}%")
    return {"per_device": by_device, "summary": summary}
