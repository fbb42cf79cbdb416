"""NVML sampler: a background thread reading power, SM/memory clocks, temperature and memory used.

Owns the sampling thread and per-window averages (one window per timed loop); energy per call =
mean power x time per call. pynvml (package nvidia-ml-py) is imported only by `open_sampler`,
and a fake module with the same functions can be injected for tests. Without NVML or a GPU,
`open_sampler` returns (None, reason) and profiling goes on without these columns.
"""
from __future__ import annotations

import threading

import numpy as np

FIELDS = ("power_mean_w", "sm_clock_mhz", "mem_clock_mhz", "temperature_c", "memory_used_bytes")


class NvmlSampler:
    def __init__(self, nvml, handle, *, interval_s: float = 0.01):
        self.nvml, self.handle, self.interval_s = nvml, handle, interval_s
        self._samples: list[tuple[float, ...]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> tuple[float, ...]:
        n, h = self.nvml, self.handle
        return (
            n.nvmlDeviceGetPowerUsage(h) / 1e3,  # milliwatts -> watts
            float(n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM)),
            float(n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_MEM)),
            float(n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
            float(n.nvmlDeviceGetMemoryInfo(h).used),
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            self._record()
            self._stop.wait(self.interval_s)

    def _record(self) -> None:
        s = self.sample()
        with self._lock:
            self._samples.append(s)

    def start(self) -> "NvmlSampler":
        self._thread = threading.Thread(target=self._run, name="nvml-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutdown failures must not lose a profile
            pass

    def begin_window(self) -> int:
        """Mark the start of a timed loop (one synchronous sample so short loops get one)."""
        self._record()
        with self._lock:
            return len(self._samples) - 1

    def end_window(self, start: int, time_per_call_s: float) -> dict[str, float]:
        """Means of the samples since `start` (+ a closing sample) and energy per call."""
        self._record()
        with self._lock:
            window = np.array(self._samples[start:], dtype=float)
        means = dict(zip(FIELDS, window.mean(axis=0).tolist()))
        means["energy_per_call_j"] = means["power_mean_w"] * time_per_call_s
        return means

    def static_info(self) -> dict:
        n, h = self.nvml, self.handle
        info = {}
        for key, call in (("driver", lambda: n.nvmlSystemGetDriverVersion()),
                          ("max_sm_clock_mhz", lambda: n.nvmlDeviceGetMaxClockInfo(h, n.NVML_CLOCK_SM)),
                          ("max_mem_clock_mhz", lambda: n.nvmlDeviceGetMaxClockInfo(h, n.NVML_CLOCK_MEM)),
                          ("power_limit_w", lambda: n.nvmlDeviceGetPowerManagementLimit(h) / 1e3)):
            try:
                value = call()
                info[key] = value.decode() if isinstance(value, bytes) else value
            except Exception:  # noqa: BLE001 - optional fields differ by driver
                info[key] = None
        return info


def open_sampler(device_index: int = 0, *, nvml=None, interval_s: float = 0.01):
    """(sampler, None) when NVML works, else (None, reason it could not record)."""
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            return None, "nvidia-ml-py is not installed (pip install 'servesim[profile]'): no power/clock data"
    try:
        nvml.nvmlInit()
        handle = nvml.nvmlDeviceGetHandleByIndex(device_index)
    except Exception as exc:  # noqa: BLE001 - pynvml raises NVMLError subclasses
        return None, f"NVML unavailable ({exc}): no power/clock data"
    return NvmlSampler(nvml, handle, interval_s=interval_s), None
