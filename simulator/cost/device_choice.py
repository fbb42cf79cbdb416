"""Which kernel calibration a device gets: its shipped one, or the transfer model's.

Owns the lookup: a catalog GPU has a shipped calibration (profiles/data/<device>/device.json,
built by `servesim fit --device-calibrations`: fitted on measured tables, or carried over from
them with published device properties); any other GPU (a user's device TOML) is carried over at
load time from the shipped measured calibrations by profiles/transfer.py, with that rule's
measured leave-one-device-out error as its known error. CPUs get none (their measured profile,
or the roofline, prices them). Never imports torch.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from hardware import DeviceSpec, load_device
from hardware.catalog import DATA_DIR as HARDWARE_DIR
from profiles.device_model import DeviceKernels, load_device_kernels
from profiles.table import ProfileError, read_json
from profiles.transfer import transfer_device
from simulator.errors import ServesimError

DATA_DIR = Path(__file__).resolve().parents[2] / "profiles" / "data"
CALIBRATION_NAME = "device.json"


def _shipped(name: str) -> Path | None:
    path = DATA_DIR / name / CALIBRATION_NAME
    return path if path.is_file() else None


@lru_cache(maxsize=None)
def _measured() -> tuple[DeviceKernels, ...]:
    """Every shipped calibration fitted on measured tables (the transfer model's basis)."""
    out = []
    for path in sorted(DATA_DIR.glob(f"*/{CALIBRATION_NAME}")):
        if read_json(path).get("provenance", {}).get("kind") == "fit":
            out.append(load_device_kernels(path, load_device(path.parent.name)))
    return tuple(out)


@lru_cache(maxsize=64)
def _load(name: str, origin: str) -> DeviceKernels | None:
    spec = load_device(origin or name)
    if spec.kind != "gpu":
        return None
    shipped = _shipped(spec.name)
    try:
        if shipped is not None and _is_catalog(origin):
            return load_device_kernels(shipped, spec)
        return transfer_device(spec, list(_measured()), known_error=_transfer_error())
    except (ProfileError, ValueError) as exc:
        raise ServesimError(f"device calibration of {spec.name}: {exc}") from None


def _is_catalog(origin: str) -> bool:
    return not origin or Path(origin).resolve().parent == HARDWARE_DIR.resolve()


def _transfer_error() -> str:
    """The measured error of the transfer rule, as the shipped transferred calibrations state it."""
    for path in sorted(DATA_DIR.glob(f"*/{CALIBRATION_NAME}")):
        prov = read_json(path).get("provenance", {})
        if prov.get("kind") == "transfer" and prov.get("known_error"):
            return prov["known_error"]
    return "transfer model (error not measured)"


def device_kernels(device: DeviceSpec) -> DeviceKernels | None:
    """The kernel calibration of `device`, or None for a CPU."""
    if device.kind != "gpu":
        return None
    return _load(device.name, device.origin)
