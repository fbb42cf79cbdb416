"""Which link a scenario's GPUs use to talk to each other (hardware/data/links/).

Owns turning a scenario field naming a link (or None: the device's own interconnect, else its
host link; hardware.device_link) into a LinkSpec, with errors that name the field.
"""
from __future__ import annotations

from hardware import DeviceSpec, LinkSpec, device_link
from simulator.errors import ServesimError


def gpu_link(device: DeviceSpec, name: str | None = None, *, field: str = "link") -> LinkSpec:
    """The named link, or the device's interconnect (else host link) when `name` is None.
    Raises ServesimError naming `field` for an unknown link."""
    try:
        return device_link(device, name)
    except ValueError as exc:
        raise ServesimError(f"{field}={name!r}: {exc}") from None
