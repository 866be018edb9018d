"""How much CPU other processes use (Linux's ``/proc/stat``), for the decode threads
(``services/decode_threads.py``), and a first look taken at launch.

The first prompt of a launch is read milliseconds after the model's load, so a look
started with the engine spans nothing and the prompt got every thread however busy the
machine was (on 2 busy cores two threads read the bench's first prompt in 2-4 s, one in
0.4-1 s; docs/performance.md, "Launch → first token (round 6)"). ``note_launch`` takes a
sample when the window is shown (the engine's import thread, ``services/engine_import.py``);
the first ``CpuLoad`` starts from it, so its first look spans the launch (up to
``LAUNCH_SPAN``). Imports nothing
of llama.cpp.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

#: A look over a longer span than this (the first of a reply: the span since the last
#: reply or the model's load) says nothing about now: it only starts a new span.
MAX_SPAN = 1.0
#: The longest first span from the launch's sample: the launch is "now" for the first
#: prompt even on a machine so busy that it comes seconds after the window.
LAUNCH_SPAN = 5.0

_STAT = Path("/proc/stat")

#: (wall seconds, busy CPU seconds of the whole machine, this process's CPU)
Sample = tuple[float, float, float]

_launch: Sample | None = None
_TICK = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0


def sample(stat: Path = _STAT, own_cpu: Callable[[], float] = time.process_time,
           clock: Callable[[], float] = time.monotonic) -> Sample | None:
    """Now: the clock, the machine's busy CPU seconds and this process's CPU seconds;
    None where ``stat`` cannot be read."""
    try:
        first = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if len(first) < 5 or first[0] != "cpu":
        return None
    fields = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)
    return clock(), busy / _TICK, own_cpu()


class CpuLoad:
    """Cores used by other processes since the last look (Linux only; None elsewhere);
    the first look spans the time since ``start`` when given (a sample of this process
    from ``launch_sample``), else since this object was made."""

    def __init__(self, stat: Path = _STAT, own_cpu: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.monotonic, start: Sample | None = None
                 ) -> None:
        self._stat = stat
        self._own_cpu = own_cpu
        self._clock = clock
        self._last = start if start is not None else self._sample()
        self._span = LAUNCH_SPAN if start is not None else MAX_SPAN  # the first look's

    def _sample(self) -> Sample | None:
        return sample(self._stat, self._own_cpu, self._clock)

    def others(self) -> float | None:
        """Cores other processes kept busy since the last call (steal time included: a
        core the host took is not ours either), or None where this cannot be read or
        the last call is more than ``MAX_SPAN`` ago (``LAUNCH_SPAN`` from a launch's
        sample; the span starts afresh then: a build that ended a minute ago must not
        halve the next reply's threads)."""
        now, last = self._sample(), self._last
        if now is None or last is None or now[0] - last[0] < 0.05:
            return None
        self._last, span = now, self._span
        self._span = MAX_SPAN
        if now[0] - last[0] > span:
            return None
        busy = (now[1] - last[1]) - (now[2] - last[2])
        return max(0.0, busy / (now[0] - last[0]))


def note_launch() -> None:
    """Take the launch's sample (once per process; where ``/proc/stat`` is readable)."""
    global _launch
    if _launch is None:
        _launch = sample()


def launch_sample() -> Sample | None:
    """The sample ``note_launch`` took, or None."""
    return _launch
