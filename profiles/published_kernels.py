"""Published kernel measurements (profiles/data/kernels/published.csv), each row with its source.

Owns reading the file into what calibration uses: attention kernel times as profile rows per
device, the best achievable GEMM throughput per device and dtype, achieved memory bandwidth (STREAM
triad, one methodology per `method=` tag), all-reduce bus bandwidths and latencies, and pinned
host-to-device copy bandwidths. The rows are facts as published (a time, a
TFLOP/s figure, a bandwidth); converting a reported rate into a time uses the source's own FLOP
count, written in the row's notes. Columns: id, source, device, kernel, quantity, dtype,
shape ("key=value;..."), value, unit, notes.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from profiles.table import ProfileError, ProfileRow, make_shape

PUBLISHED_KERNELS = Path(__file__).parent / "data" / "kernels" / "published.csv"
QUANTITIES = ("attn_decode_us", "attn_prefill_us", "gemm_best_tflops", "all_reduce_busbw_gb_s", "all_reduce_us",
              "custom_all_reduce_us", "h2d_gb_s", "stream_triad_gb_s")


@dataclass(frozen=True, slots=True)
class Published:
    id: str
    source: str
    device: str
    quantity: str
    dtype: str
    shape: dict[str, str]
    value: float
    kernel: str = ""  # what was measured (benchmark, kernel, copy path)

    def int_shape(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.shape.items() if v.isdigit()}


def read_published(path: str | Path = PUBLISHED_KERNELS) -> list[Published]:
    path = Path(path)
    out = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"id", "source", "device", "quantity", "dtype", "shape", "value"}
        if not need <= set(reader.fieldnames or ()):
            raise ProfileError(f"{path}: needs columns {sorted(need)}")
        for line, raw in enumerate(reader, start=2):
            if raw["quantity"] not in QUANTITIES:
                raise ProfileError(f"{path}:{line}: quantity {raw['quantity']!r}; allowed: {', '.join(QUANTITIES)}")
            try:
                shape = dict(kv.split("=", 1) for kv in raw["shape"].split(";") if "=" in kv)
                out.append(Published(raw["id"], raw["source"], raw["device"], raw["quantity"], raw["dtype"], shape,
                                     float(raw["value"]), raw.get("kernel", "")))
            except ValueError as exc:
                raise ProfileError(f"{path}:{line}: {exc}") from None
    return out


def attention_rows(published: list[Published], device: str) -> dict[str, list[ProfileRow]]:
    """{"attn_decode"|"attn_prefill": rows} measured on `device` (times per call, one layer)."""
    out: dict[str, list[ProfileRow]] = {}
    for p in published:
        if p.device != device or p.quantity not in ("attn_decode_us", "attn_prefill_us"):
            continue
        op = p.quantity.removesuffix("_us")
        out.setdefault(op, []).append(ProfileRow(op=op, dtype=p.dtype, shape=make_shape(**p.int_shape()),
                                                 time_median_us=p.value))
    return out


def best_gemm_fraction(published: list[Published], device: str, dtype: str, peak_tflops: float) -> float | None:
    """The best achievable GEMM throughput published for `device` as a fraction of its dense peak."""
    vals = [p.value for p in published if p.device == device and p.quantity == "gemm_best_tflops" and p.dtype == dtype]
    return max(vals) / peak_tflops if vals else None


def stream_fraction(published: list[Published], device: str, peak_gb_s: float) -> dict[str, float]:
    """{method: achieved STREAM triad bandwidth / peak} published for `device`."""
    return {p.shape.get("method", ""): p.value / peak_gb_s for p in published
            if p.device == device and p.quantity == "stream_triad_gb_s"}


def bus_bandwidth_gb_s(published: list[Published], device: str, num_gpus: int) -> float | None:
    """The best all-reduce bus bandwidth published for `num_gpus` GPUs of `device` (large messages)."""
    vals = [p.value for p in published if p.device == device and p.quantity == "all_reduce_busbw_gb_s"
            and int(p.shape.get("num_gpus", 0)) == num_gpus]
    return max(vals) if vals else None


def host_link_efficiency(published: list[Published], spec) -> tuple[float, str] | None:
    """Effective / nominal host-to-device bandwidth for `spec`'s host-link kind: the median of the
    published pinned H2D copies over devices with the same link kind (copy-engine copies when
    any, as cudaMemcpyAsync uses), as (efficiency, source); None when none is published."""
    from hardware import device_names, load_device

    kinds = {}
    for name in device_names():
        d = load_device(name)
        kinds[name] = (d.host_link_kind, d.host_link_gb_per_s)
    rows = [p for p in published if p.quantity == "h2d_gb_s" and kinds.get(p.device, ("",))[0] == spec.host_link_kind]
    ce = [p for p in rows if "copy engine" in p.kernel or "memcpy_ce" in p.kernel]
    rows = ce or rows
    if not rows:
        return None
    fracs = sorted(min(p.value / kinds[p.device][1], 1.0) for p in rows)
    eff = fracs[len(fracs) // 2] if len(fracs) % 2 else (fracs[len(fracs) // 2 - 1] + fracs[len(fracs) // 2]) / 2
    return eff, f"median published pinned H2D / nominal over {spec.host_link_kind} links ({', '.join(p.id for p in rows)})"


def sources(published: list[Published], ids) -> str:
    ids = set(ids)
    return "; ".join(f"{p.id}: {p.source}" for p in published if p.id in ids)
