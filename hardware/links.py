"""GPU-to-GPU and node-to-node links as data: NVLink, InfiniBand, RoCE, PCIe.

Owns the LinkSpec record, its TOML files (hardware/data/links/<name>.toml: nominal per-direction
bandwidth, small-message latency, a measured effective bandwidth where one is published, and
the source of each number) and the loader. What moves over a link (KV caches between prefill and
decode instances, activations between pipeline stages, MoE all-to-all) is priced elsewhere
(simulator/parallel, simulator/disagg) as  time = bytes / bandwidth + latency.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from hardware.catalog import catalog_file
from hardware.spec import check_positive

LINK_DIR = Path(__file__).parent / "data" / "links"


class UnknownLinkError(ValueError):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSpec:
    """One link, one direction. bandwidth_gb_per_s: nominal (10^9 bytes/s); effective_gb_per_s:
    a measured large-message rate (None: unmeasured, the nominal rate is used); latency_us: the
    time of a small message."""

    name: str
    display_name: str
    bandwidth_gb_per_s: float
    latency_us: float
    effective_gb_per_s: float | None = None
    sources: dict = field(default_factory=dict, compare=False)
    origin: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        check_positive("bandwidth_gb_per_s", self.bandwidth_gb_per_s)
        if self.effective_gb_per_s is not None:
            check_positive("effective_gb_per_s", self.effective_gb_per_s)
        if not (isinstance(self.latency_us, (int, float)) and 0 <= self.latency_us < 1e6):
            raise ValueError(f"latency_us must be a number in [0, 1e6), got {self.latency_us!r}")

    @property
    def bytes_per_s(self) -> float:
        """The rate transfers are priced at: measured effective where published, else nominal."""
        return (self.effective_gb_per_s or self.bandwidth_gb_per_s) * 1e9

    @property
    def latency_s(self) -> float:
        return self.latency_us * 1e-6

    def transfer_s(self, nbytes: float) -> float:
        """Seconds to move `nbytes` in one message: nbytes / bandwidth + latency (0 bytes: 0 s)."""
        return nbytes / self.bytes_per_s + self.latency_s if nbytes > 0 else 0.0

    def describe(self) -> dict:
        return {"name": self.name, "bandwidth_gb_per_s": self.bandwidth_gb_per_s,
                "effective_gb_per_s": self.effective_gb_per_s, "latency_us": self.latency_us,
                "sources": dict(self.sources), "file": self.origin}


def link_names() -> list[str]:
    return sorted(p.stem for p in LINK_DIR.glob("*.toml"))


def load_link(name_or_path: str | Path) -> LinkSpec:
    """A shipped link (`nvlink4`, `infiniband-ndr`, ...) or a path to a link TOML file."""
    path, _ = catalog_file(name_or_path, LINK_DIR, what="link", example=str(LINK_DIR / "nvlink4.toml"),
                           error=UnknownLinkError)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UnknownLinkError(f"{path}: not valid TOML: {exc}") from None
    allowed = {"name", "display_name", "bandwidth_gb_per_s", "latency_us", "effective_gb_per_s", "sources"}
    if unknown := sorted(set(raw) - allowed):
        raise UnknownLinkError(f"{path}: unknown field(s) {unknown}; allowed: {', '.join(sorted(allowed))}")
    try:
        return LinkSpec(**raw, origin=str(path))
    except (TypeError, ValueError) as exc:
        raise UnknownLinkError(f"{path}: {exc}") from None


def device_link(device, name: str | Path | None = None) -> LinkSpec:
    """The named link, or the device's own interconnect (its `[interconnect] kind`) where a link
    file of that name exists, else its host link (PCIe). `device`: a hardware.DeviceSpec."""
    if name is not None:
        return load_link(name)
    known = set(link_names())
    for kind in (device.interconnect_kind, device.host_link_kind):
        if kind in known:
            return load_link(kind)
    raise UnknownLinkError(f"device {device.name} has no known link (interconnect {device.interconnect_kind!r}, "
                           f"host link {device.host_link_kind!r}); name one of {', '.join(link_names())} or a link .toml")
