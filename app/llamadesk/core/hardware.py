"""What this machine offers: cores and memory. Pure Python (psutil), no llama.cpp.

psutil is imported when the machine is first asked about, not with this module: the
settings import it on the window's start-up path, and nothing there needs the answer
before the first paint."""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class Hardware:
    """A snapshot of the machine's CPU and memory."""

    cpu_name: str
    physical_cores: int
    logical_cores: int
    total_ram: int
    available_ram: int


def count_physical_cores() -> int:
    """Physical cores, counted now (llama.cpp runs best with one thread per physical
    core)."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


@functools.cache
def physical_cores() -> int:
    """Physical cores, counted once per process: the count does not change while the app
    runs, and psutil reads it from sysfs (~0.4 ms) twice for each send's load options."""
    return count_physical_cores()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def probe() -> Hardware:
    """Read the machine's CPU and memory now."""
    import psutil

    memory = psutil.virtual_memory()
    return Hardware(
        cpu_name=_cpu_name(),
        physical_cores=count_physical_cores(),
        logical_cores=psutil.cpu_count(logical=True) or 1,
        total_ram=int(memory.total),
        available_ram=int(memory.available),
    )
