"""The hardware probe."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from llamadesk.core import hardware

ROOT = Path(__file__).resolve().parents[2]
REAL_RESOURCES = ROOT / "resources"

# -- hardware ---------------------------------------------------------------------------------


def test_probe_reports_this_machine() -> None:
    hw = hardware.probe()
    assert hw.cpu_name.strip()
    assert 1 <= hw.physical_cores <= hw.logical_cores
    assert hw.logical_cores == (psutil.cpu_count(logical=True) or 1)
    assert 0 < hw.available_ram <= hw.total_ram
    assert hw.total_ram == psutil.virtual_memory().total


def test_physical_cores_falls_back_when_psutil_cannot_tell(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: None)
    monkeypatch.setattr(hardware.os, "cpu_count", lambda: 6)
    assert hardware.count_physical_cores() == 6
    monkeypatch.setattr(hardware.os, "cpu_count", lambda: None)
    assert hardware.count_physical_cores() == 1


def test_physical_cores_are_counted_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The load options of every send ask for the count; it is taken once."""
    first = hardware.physical_cores()
    assert first == hardware.count_physical_cores()
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: first + 3)
    assert hardware.count_physical_cores() == first + 3  # counted now
    assert hardware.physical_cores() == first  # the count taken before


