"""Device calibration from measured tables: kernel-class efficiencies and collective latency and
bandwidth, fitted on one device's tables and tested on models held out of the fit.

Owns fitting profiles/device_model.py's classes:
- gemm: every GEMM row of every training table pooled (attn_qkv, attn_out, mlp_up, mlp_down),
  t = t0 + (t_c^p + t_m^p)^(1/p) with p = GEMM_P; eta_compute, eta_memory and t0 fitted;
- each elementwise op (rms_norm, residual_add, activation, rotary, embedding) its own
  t = t0 + bytes/(eta_memory*BW); "memory" (ops with no table, e.g. sampling) pools them;
- all-reduce per GPU count from Vidur's network tables (intra-node rows: devices_per_node =
  num_workers), t = latency + 2(n-1)/n * bytes / bus_bandwidth.
Fits minimise the mean absolute log error (scipy's Nelder-Mead in log space). The test error of a
class is leave-one-model-out: fit on every table but one, predict that one, over all models.
Inputs are Vidur's CSVs (profiles/vidur.py) or servesim profile tables.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from hardware import DeviceSpec
from profiles.device_model import CollectiveFit, DeviceKernels, KernelClass
from profiles.table import ProfileError, ProfileRow
from profiles.work import ELEMENTWISE_OPS, kernel_work

GEMM_P = 1.5  # leave-one-model-out error on A100/H100/A40: best of p in {1.5, 2, 3, 4, max}
VIDUR_GEMM_OPS = ("attn_qkv", "attn_out", "mlp_up", "mlp_down")


def _minimise(loss, x0: list[float]) -> np.ndarray:
    from scipy.optimize import minimize

    best = None
    for scale in (1.0, 0.5, 2.0):  # a few starts: the loss is not convex in the last parameter
        x = np.log(np.asarray(x0, dtype=float))
        x[-1] += math.log(scale)
        res = minimize(loss, x, method="Nelder-Mead", options={"xatol": 1e-5, "fatol": 1e-8, "maxiter": 4000})
        if best is None or res.fun < best.fun:
            best = res
    return np.exp(best.x)


def _arrays(rows: list[ProfileRow]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    work = np.array([kernel_work(r.op, r.shape, r.dtype) for r in rows], dtype=float).reshape(-1, 2)
    return work[:, 0], work[:, 1], np.array([r.time_s for r in rows], dtype=float)


def _ape(pred: np.ndarray, t: np.ndarray) -> dict:
    e = np.abs(pred / t - 1.0) * 100
    return {"num_rows": int(len(e)), "median_ape_pct": float(np.median(e)), "p90_ape_pct": float(np.percentile(e, 90))}


def fit_gemm(rows: list[ProfileRow], peak_flops: float, bytes_per_s: float, *, p: float = GEMM_P) -> KernelClass:
    f, b, t = _arrays(rows)

    def predict(x):
        ec, em, t0 = x
        return t0 + ((f / (ec * peak_flops)) ** p + (b / (em * bytes_per_s)) ** p) ** (1 / p)

    def loss(logx):
        return float(np.mean(np.abs(np.log(predict(np.exp(logx)) / t))))

    ec, em, t0 = _minimise(loss, [0.7, 0.8, float(np.min(t)) / 4])
    return KernelClass(eta_compute=ec, eta_memory=em, overhead_s=t0, p=p,
                       error={"train": _ape(predict((ec, em, t0)), t)})


def fit_memory_bound(rows: list[ProfileRow], bytes_per_s: float) -> KernelClass:
    _, b, t = _arrays(rows)

    def predict(x):
        em, t0 = x
        return t0 + b / (em * bytes_per_s)

    def loss(logx):
        return float(np.mean(np.abs(np.log(predict(np.exp(logx)) / t))))

    em, t0 = _minimise(loss, [0.8, float(np.min(t)) / 2])
    return KernelClass(eta_compute=1.0, eta_memory=em, overhead_s=t0, p=None,
                       error={"train": _ape(predict((em, t0)), t)})


def _predict(cls: KernelClass, rows: list[ProfileRow], peak_flops: float, bytes_per_s: float) -> np.ndarray:
    return np.array([cls.time_s(*kernel_work(r.op, r.shape, r.dtype), peak_flops, bytes_per_s, "bf16")
                     for r in rows])


def _held_out(tables: dict[str, list[ProfileRow]], fit, peak_flops: float, bytes_per_s: float) -> dict:
    """Leave-one-model-out error of `fit(rows) -> KernelClass` over the tables' rows."""
    if len(tables) < 2:
        return {}
    preds, times, per_model = [], [], {}
    for held, rows in tables.items():
        cls = fit([r for name, rs in tables.items() if name != held for r in rs])
        preds.append(_predict(cls, rows, peak_flops, bytes_per_s))
        times.append(np.array([r.time_s for r in rows]))
        per_model[held] = _ape(preds[-1], times[-1])
    return {"leave_one_model_out": _ape(np.concatenate(preds), np.concatenate(times)), "per_model": per_model}


def fit_compute_classes(tables: dict[str, list[ProfileRow]], spec: DeviceSpec, *, dtype: str = "fp16",
                        source: str = "") -> dict[str, KernelClass]:
    """gemm + one class per elementwise op + "memory", each with train and held-out errors."""
    peak = spec.peak_flops("bf16" if dtype in ("fp16", "bf16") and "bf16" in spec.peak_tflops else dtype)
    bw = spec.memory_bandwidth_bytes_per_s

    def rows_of(ops, subset=None):
        return {name: [r for r in rs if r.op in ops] for name, rs in (subset or tables).items()}

    out = {}
    gemm_tables = {k: v for k, v in rows_of(VIDUR_GEMM_OPS).items() if v}
    if not gemm_tables:
        raise ProfileError(f"no GEMM rows ({', '.join(VIDUR_GEMM_OPS)}) in the tables for {spec.name}")
    gemm = fit_gemm([r for rs in gemm_tables.values() for r in rs], peak, bw)
    test = _held_out(gemm_tables, lambda rows: fit_gemm(rows, peak, bw), peak, bw)
    out["gemm"] = _with(gemm, source, test)
    for op in ELEMENTWISE_OPS:
        op_tables = {k: v for k, v in rows_of((op,)).items() if v}
        if not op_tables:
            continue
        cls = fit_memory_bound([r for rs in op_tables.values() for r in rs], bw)
        test = _held_out(op_tables, lambda rows: fit_memory_bound(rows, bw), peak, bw)
        out[op] = _with(cls, source, test)
    memory_rows = [r for rs in rows_of(ELEMENTWISE_OPS).values() for r in rs]
    if memory_rows:
        out["memory"] = _with(fit_memory_bound(memory_rows, bw), source + " (all elementwise ops pooled)", {})
    return out


def _with(cls: KernelClass, source: str, test: dict) -> KernelClass:
    error = dict(cls.error)
    if test:
        error["test"] = test
    return KernelClass(eta_compute=cls.eta_compute, eta_memory=cls.eta_memory, overhead_s=cls.overhead_s, p=cls.p,
                       eta_compute_by_dtype=cls.eta_compute_by_dtype, source=source, error=error)


def read_collective_csv(path: str | Path) -> dict[int, list[tuple[float, float]]]:
    """Vidur's network all_reduce.csv -> {num_gpus: [(bytes, seconds), ...]}, intra-node rows only
    (devices_per_node == num_workers). `size` is bytes (Vidur writes 2 x fp16 elements); times
    are the median NCCL kernel time in ms."""
    path = Path(path)
    out: dict[int, list[tuple[float, float]]] = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"size", "num_workers", "devices_per_node"}
        time_col = next((c for c in reader.fieldnames or () if c.endswith(".median")), None)
        if not need <= set(reader.fieldnames or ()) or time_col is None:
            raise ProfileError(f"{path}: not a Vidur collective table (needs size, num_workers, devices_per_node "
                               "and a time_stats.*.median column)")
        for line, raw in enumerate(reader, start=2):
            try:
                n, per_node = int(raw["num_workers"]), int(raw["devices_per_node"])
                size, ms = float(raw["size"]), float(raw[time_col])
            except ValueError as exc:
                raise ProfileError(f"{path}:{line}: {exc}") from None
            if n == per_node and size > 0 and ms > 0:
                out.setdefault(n, []).append((size, ms * 1e-3))
    return out


def fit_collectives(samples: dict[int, list[tuple[float, float]]], *, source: str = "") -> dict[int, CollectiveFit]:
    out = {}
    for n, pts in sorted(samples.items()):
        size, t = np.array(pts).T
        ring = 2.0 * (n - 1) / n * size

        def predict(x, ring=ring):
            lat, bus = x
            return lat + ring / bus

        def loss(logx, predict=predict, t=t):
            return float(np.mean(np.abs(np.log(predict(np.exp(logx)) / t))))

        lat, bus = _minimise(loss, [float(np.min(t)), float(np.max(ring / t))])
        out[n] = CollectiveFit(num_gpus=n, latency_s=lat, bus_bytes_per_s=bus, source=source,
                               error={"train": _ape(predict((lat, bus)), t)})
    return out


def calibrate_device(spec: DeviceSpec, tables: dict[str, list[ProfileRow]], *, collectives: dict[int, CollectiveFit],
                     provenance: dict, extra_classes: dict[str, KernelClass] | None = None) -> DeviceKernels:
    """A measured device's calibration: classes fitted on `tables` (name -> rows), collectives,
    and classes measured elsewhere (e.g. published attention kernels) in `extra_classes`."""
    classes = fit_compute_classes(tables, spec, source=provenance.get("source", ""))
    classes.update(extra_classes or {})
    return DeviceKernels(spec, classes, collectives, dict(provenance, kind="fit"))



def fit_attention(op: str, rows: list[ProfileRow], spec: DeviceSpec, *, template: KernelClass | None = None,
                  overhead_s: float | None = None, source: str = "") -> KernelClass:
    """An attention class fitted on published kernel times of `spec`'s device: decode fits
    (eta_memory, t0, extra_tokens), memory-bound; prefill fits (eta_compute, eta_memory) with the
    plain max (short prompts are memory-bound: Q, K, V and O move once per token) and the per-call
    floor `overhead_s` given (the decode kernel's: published prefill tables all hold 16k tokens
    per call, which cannot separate a floor from an efficiency). With a
    `template` (the same op fitted on a better-measured device) only the efficiency is fitted and
    the rest is the template's: enough for a device with one or two rows."""
    peak, bw = spec.peak_flops("bf16"), spec.memory_bandwidth_bytes_per_s
    t = np.array([r.time_s for r in rows])
    decode = op == "attn_decode"

    def make(x):
        if decode:
            eta, t0, extra = x
            return KernelClass(eta_compute=1.0, eta_memory=min(eta, 2.0), overhead_s=t0, p=None, extra_tokens=extra)
        eta_c, eta_m = x
        return KernelClass(eta_compute=min(eta_c, 2.0), eta_memory=min(eta_m, 2.0), overhead_s=overhead_s or 0.0,
                           p=None)

    def predict(cls):
        out = []
        for r in rows:
            shape = dict(r.shape, context_tokens=r.shape.get("context_tokens", 0) + round(cls.extra_tokens))
            out.append(cls.time_s(*kernel_work(op, shape, r.dtype), peak, bw, "bf16"))
        return np.array(out)

    def loss(build):
        return lambda logx: float(np.mean(np.abs(np.log(predict(build(np.exp(logx))) / t))))

    t_min = float(np.min(t))
    if template is not None:
        rest = (template.overhead_s, template.extra_tokens) if decode else (template.eta_memory,)
        (eta,) = _minimise(loss(lambda x: make((x[0], *rest))), [0.5])
        cls = make((eta, *rest))
    else:
        starts = [[0.5, t_min / 4, e] for e in (16.0, 256.0, 2048.0)] if decode else [[0.6, 0.8]]
        best = min((_minimise(loss(make), x0) for x0 in starts), key=lambda x: loss(make)(np.log(x)))
        cls = make(best)
    return KernelClass(eta_compute=cls.eta_compute, eta_memory=cls.eta_memory, overhead_s=cls.overhead_s, p=cls.p,
                       extra_tokens=cls.extra_tokens, source=source, error={"train": _ape(predict(cls), t)})
