"""Device specifications as data: the DeviceSpec record and its validation.

Owns the fields a device file carries (see hardware/data/*.toml for the schema in use) and the
checks on them. Does not read files (catalog.py) or probe the machine (probe.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

GIB = 1024**3
DTYPES = ("bf16", "fp16", "fp8", "fp32")


MAX_FIGURE = 1e12  # no device figure (GiB, GB/s, TFLOPS, W) comes near this; beyond it sizes overflow


def check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0 < value <= MAX_FIGURE):
        raise ValueError(f"{name} must be a number > 0 (finite, <= {MAX_FIGURE:g}), got {value!r}")


def check_peak_tflops(peak_tflops: dict[str, float]) -> None:
    """Dense peak figures: at least one, known dtypes, each > 0."""
    if not peak_tflops:
        raise ValueError("peak_tflops must list at least one dtype")
    for dtype, tflops in peak_tflops.items():
        if dtype not in DTYPES:
            raise ValueError(f"peak_tflops has unknown dtype {dtype!r}; allowed: {DTYPES}")
        check_positive(f"peak_tflops.{dtype}", tflops)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceSpec:
    """One accelerator (or CPU) as the cost model sees it. Peak figures are dense."""

    name: str
    display_name: str
    vendor: str
    kind: str  # "gpu" | "cpu"
    family: str = ""  # architecture generation (ampere, ada, hopper, blackwell, cdna3, cpu): calibration transfer
    memory_gib: float
    memory_bandwidth_gb_per_s: float
    peak_tflops: dict[str, float]
    tdp_w: float
    idle_w: float
    host_link_kind: str
    host_link_gb_per_s: float
    interconnect_kind: str | None = None
    interconnect_bidirectional_gb_per_s: float | None = None
    price_usd_per_hour: float
    price_as_of: str
    price_source: str
    sources: tuple[str, ...] = ()
    notes: str = ""
    origin: str = field(default="", compare=False)  # file the spec was read from

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        if self.kind not in ("gpu", "cpu"):
            raise ValueError(f"kind must be 'gpu' or 'cpu', got {self.kind!r}")
        for name in ("memory_gib", "memory_bandwidth_gb_per_s", "tdp_w", "host_link_gb_per_s"):
            check_positive(name, getattr(self, name))
        if not (0 <= self.idle_w <= self.tdp_w):
            raise ValueError(f"idle_w must be in [0, tdp_w={self.tdp_w}], got {self.idle_w!r}")
        if not (math.isfinite(self.price_usd_per_hour) and self.price_usd_per_hour >= 0):
            raise ValueError(f"price_usd_per_hour must be a finite number >= 0, got {self.price_usd_per_hour!r}")
        check_peak_tflops(self.peak_tflops)
        if self.interconnect_bidirectional_gb_per_s is not None:
            check_positive("interconnect.bidirectional_gb_per_s", self.interconnect_bidirectional_gb_per_s)

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * GIB)

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        return self.memory_bandwidth_gb_per_s * 1e9

    @property
    def host_link_bytes_per_s(self) -> float:
        return self.host_link_gb_per_s * 1e9

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for `dtype`; a clear error when the device lacks it."""
        if dtype not in self.peak_tflops:
            raise ValueError(
                f"device {self.name!r} has no peak figure for dtype {dtype!r}; "
                f"it lists {sorted(self.peak_tflops)}"
            )
        return self.peak_tflops[dtype] * 1e12

    def ridge_flops_per_byte(self, dtype: str) -> float:
        """Arithmetic intensity where compute and memory time are equal (roofline ridge)."""
        return self.peak_flops(dtype) / self.memory_bandwidth_bytes_per_s

    @property
    def link_bytes_per_s(self) -> float:
        """One-direction GPU-GPU bandwidth for collectives; falls back to the host link."""
        if self.interconnect_bidirectional_gb_per_s:
            return self.interconnect_bidirectional_gb_per_s / 2 * 1e9
        return self.host_link_bytes_per_s
