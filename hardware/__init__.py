"""hardware: device specs as data (peaks, memory, links, power, prices). Imports nothing else."""
from hardware.catalog import UnknownDeviceError, device_names, load_device
from hardware.spec import DeviceSpec

__all__ = ["DeviceSpec", "UnknownDeviceError", "device_names", "load_device"]
