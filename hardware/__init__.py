"""hardware: device specs as data (peaks, memory, links, power, prices). Imports nothing else."""
from hardware.catalog import UnknownDeviceError, device_names, load_device
from hardware.host import HostSpec, UnknownHostError, host_names, load_host
from hardware.links import LinkSpec, UnknownLinkError, device_link, link_names, load_link
from hardware.spec import DeviceSpec

__all__ = ["DeviceSpec", "HostSpec", "UnknownDeviceError", "UnknownHostError", "device_names", "host_names",
           "load_device", "load_host", "LinkSpec", "UnknownLinkError", "device_link",
           "link_names", "load_link"]
