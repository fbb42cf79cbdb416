"""Probing the local machine: replaces the generic CPU entry's core-count and memory fields.

Owns what can be read cheaply and without privileges (os.cpu_count, /proc/meminfo). Peak
FLOP/s and bandwidth are not guessed here: the profiler measures them.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from hardware.spec import GIB, DeviceSpec


def local_memory_gib() -> float | None:
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024 / GIB
    return None


def probe_cpu_overrides(spec: DeviceSpec) -> DeviceSpec:
    """The generic CPU entry with this machine's memory size and core count in its notes."""
    mem = local_memory_gib()
    cores = os.cpu_count() or 1
    notes = f"{spec.notes} Probed: {cores} logical cores, {mem or spec.memory_gib:.1f} GiB.".strip()
    return replace(spec, memory_gib=round(mem, 2) if mem else spec.memory_gib, notes=notes)
