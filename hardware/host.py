"""Host CPU specs (the machine a GPU hangs off): peak FLOP/s per dtype, DRAM capacity and
bandwidth, cores. Used for CPU-executed MoE experts and host-resident weights/KV.

Owns the HostSpec record, its validation and the host catalog (hardware/data/hosts/*.toml, or a
user file by path). The GPU<->host link bandwidth is the device's (DeviceSpec.host_link_gb_per_s),
not the host's. The "local" entry is this machine: cores and memory are probed; its FLOP/s and
bandwidth are conservative placeholders until the profiler measures them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from hardware.catalog import SOURCES_KEYS, catalog_file, check_keys, read_spec_file
from hardware.probe import local_memory_gib
from hardware.spec import check_peak_tflops, check_positive

HOSTS_DIR = Path(__file__).parent / "data" / "hosts"


class UnknownHostError(ValueError):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class HostSpec:
    """One host (all sockets the serving process uses). Peak figures are dense, whole host."""

    name: str
    display_name: str
    vendor: str
    sockets: int
    cores: int  # physical cores, all sockets
    peak_tflops: dict[str, float]
    memory_gib: float
    memory_bandwidth_gb_per_s: float  # DRAM, theoretical (channels x transfer rate x 8 B)
    sources: tuple[str, ...] = ()
    notes: str = ""
    origin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for name in ("sockets", "cores"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("memory_gib", "memory_bandwidth_gb_per_s"):
            check_positive(name, getattr(self, name))
        check_peak_tflops(self.peak_tflops)

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * 1024**3)

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        return self.memory_bandwidth_gb_per_s * 1e9

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for `dtype`; falls back to fp32 (CPUs without a bf16 unit upcast)."""
        if dtype in self.peak_tflops:
            return self.peak_tflops[dtype] * 1e12
        if "fp32" in self.peak_tflops and dtype in ("bf16", "fp16"):
            return self.peak_tflops["fp32"] * 1e12
        raise ValueError(f"host {self.name!r} has no peak figure for dtype {dtype!r}; "
                         f"it lists {sorted(self.peak_tflops)}")


def host_names() -> list[str]:
    return sorted(p.stem for p in HOSTS_DIR.glob("*.toml"))


def load_host(name_or_path: str | Path) -> HostSpec:
    """A catalog name (`xeon-8462y`, `local`) or a path to a host TOML file."""
    path, shipped = catalog_file(name_or_path, HOSTS_DIR, what="host", example=str(HOSTS_DIR / "xeon-8462y.toml"),
                                 error=UnknownHostError)
    spec = parse_host_file(path)
    return _probe_local(spec) if shipped and spec.name == "local" else spec


def parse_host_file(path: Path) -> HostSpec:
    return read_spec_file(path, _host_from_dict)


HOST_KEYS: dict[str, set[str] | None] = {
    **dict.fromkeys(("name", "display_name", "vendor", "sockets", "cores", "memory_gib", "memory_bandwidth_gb_per_s"),
                    set()),
    "peak_tflops": None, "sources": SOURCES_KEYS,
}


def _host_from_dict(raw: dict, *, origin: str) -> HostSpec:
    check_keys(raw, HOST_KEYS)
    src = raw.get("sources", {})
    return HostSpec(
        name=raw["name"], display_name=raw.get("display_name", raw["name"]), vendor=raw.get("vendor", "unknown"),
        sockets=int(raw.get("sockets", 1)), cores=int(raw["cores"]),
        peak_tflops={k: float(v) for k, v in raw["peak_tflops"].items()},
        memory_gib=float(raw["memory_gib"]), memory_bandwidth_gb_per_s=float(raw["memory_bandwidth_gb_per_s"]),
        sources=tuple(src.get("specs", ())), notes=str(src.get("notes", "")), origin=origin,
    )


def _probe_local(spec: HostSpec) -> HostSpec:
    mem = local_memory_gib()
    cores = os.cpu_count() or spec.cores
    return replace(spec, cores=cores, memory_gib=round(mem, 2) if mem else spec.memory_gib,
                   notes=f"{spec.notes} Probed: {cores} logical cores, {mem or spec.memory_gib:.1f} GiB.")
