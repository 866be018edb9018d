"""Shared pieces of the benchmark suite: results, statistics, machine and versions."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median and spread of the measured runs (warm-ups are never passed in)."""
    values = sorted(float(s) for s in samples)
    if not values:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"),
                "rel_spread": float("nan"), "n": 0}
    med = statistics.median(values)
    return {
        "median": med,
        "min": values[0],
        "max": values[-1],
        # (max - min) / median: how far apart the runs were, as a fraction.
        "rel_spread": (values[-1] - values[0]) / med if med else float("nan"),
        "n": len(values),
    }


@dataclass
class Goal:
    """``value op target``, for example ``<= 50`` ms or ``>= 0.97`` ×."""

    op: str
    target: float

    def met(self, value: float | None) -> bool | None:
        if value is None or value != value:  # None or NaN: not measured
            return None
        return value >= self.target if self.op == ">=" else value <= self.target

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {self.target:g}"


@dataclass
class Metric:
    """One line of the table and one object in latest.json."""

    name: str
    title: str
    unit: str
    goal: Goal
    samples: list[float] = field(default_factory=list)
    value: float | None = None  # default: the median of samples
    #: For a ratio: what was divided by what (each with its own median and spread).
    numerator: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    measured: bool = True
    #: Shown for information: its goal is not checked (``met`` is None).
    informational: bool = False

    def to_json(self) -> dict[str, Any]:
        stats = summarize(self.samples)
        value = self.value if self.value is not None else (
            stats["median"] if self.samples else None)
        if not self.measured:
            value = None
        return {
            "name": self.name,
            "title": self.title,
            "value": value,
            "unit": self.unit,
            "goal": {"op": self.goal.op, "value": self.goal.target, "text": str(self.goal)},
            "met": None if self.informational else self.goal.met(value),
            "measured": self.measured,
            "informational": self.informational,
            "median": stats["median"] if self.samples else None,
            "spread": {k: stats[k] for k in ("min", "max", "rel_spread")}
            if self.samples else None,
            "runs": list(self.samples),
            "numerator": self.numerator,
            "reference": self.reference,
            "details": self.details,
            "notes": self.notes,
        }


def side(name: str, unit: str, samples: Sequence[float], **extra: Any) -> dict[str, Any]:
    """One side of a ratio (the app's figure, or the reference's), summarized."""
    return {"name": name, "unit": unit, "runs": list(samples), **summarize(samples), **extra}


def not_measured(name: str, title: str, unit: str, goal: Goal, reason: str) -> Metric:
    """A metric that could not be measured in this run, with the reason."""
    return Metric(name=name, title=title, unit=unit, goal=goal, notes=reason, measured=False)


#: In --quick mode warm-ups are skipped: the smoke test checks that the code runs, and
#: must stay short; its timings mean nothing.
_SKIP_WARMUP = False


def set_quick(quick: bool) -> None:
    """Skip every warm-up run (quick mode)."""
    global _SKIP_WARMUP
    _SKIP_WARMUP = quick


def warmups(n: int) -> int:
    """How many warm-up runs to do: ``n``, or none in quick mode."""
    return 0 if _SKIP_WARMUP else n


def alternate(runs: int, warmup: int, a: Callable[[], float],
              b: Callable[[], float]) -> tuple[list[float], list[float]]:
    """Run ``a`` and ``b`` in turns (warm-ups first, not kept). The machines here are
    shared: only values taken side by side, alternating, are comparable. The order
    flips every round so neither side always runs on a freshly idle machine."""
    for _ in range(warmups(warmup)):
        a()
        b()
    xs: list[float] = []
    ys: list[float] = []
    for i in range(runs):
        if i % 2 == 0:
            xs.append(a())
            ys.append(b())
        else:
            ys.append(b())
            xs.append(a())
    return xs, ys


def repeat(runs: int, warmup: int, fn: Callable[[], float]) -> list[float]:
    """``warmup`` unkept calls, then ``runs`` kept ones."""
    for _ in range(warmups(warmup)):
        fn()
    return [fn() for _ in range(runs)]


def sleeps() -> int:
    """Voluntary context switches of this process's threads so far (0 off Linux)."""
    total = 0
    tasks = Path("/proc/self/task")
    for task in tasks.iterdir() if tasks.is_dir() else ():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def machine_info(threads: int) -> dict[str, Any]:
    """The machine the numbers came from."""
    import psutil

    from llamadesk.core.hardware import probe

    return {
        "cpu": probe().cpu_name,
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cpus": psutil.cpu_count(logical=True),
        "threads_used": threads,
        "ram_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def versions(reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions of what was measured; the llama.cpp build as llama-bench reports it."""
    import llama_cpp

    info = {
        "llamadesk": _version("llamadesk"),
        "llama_cpp_python": _version("llama_cpp_python"),
        "pyside6_essentials": _version("PySide6_Essentials") or _version("PySide6"),
        "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip(),
    }
    if reference:
        info["llama_cpp_build_commit"] = reference.get("build_commit")
        info["llama_cpp_build_number"] = reference.get("build_number")
    return info


def now_iso() -> str:
    """The date and time of this run, with its time zone."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
