"""How many threads decode a reply: fewer when other programs hold the cores.

llama.cpp's CPU threads meet at a barrier several hundred times per token. When another
program takes a core from one of them, the others wait (spinning) until it runs again,
and the whole machine's load turns into lost tokens: on 2 busy cores two threads decoded
at 5–15 tokens/s where one decoded at 50–62 (docs/performance.md, "Decode"). So between
tokens the engine looks, every ``INTERVAL`` seconds, at how much CPU other processes used
(Linux's ``/proc/stat`` less this process's own time) and decodes with as many threads
as there are cores left for it; the prompt read at the start of a reply gets no more
(on the same busy machine one thread read 256 tokens at 28–55 tokens/s, two at 18–21).
The thread count does not change llama.cpp's arithmetic: replies are the same token for
token and logit for logit (tests/services/test_decode_threads.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import llama_cpp

from llamadesk.services import llama_internals as internals

#: Seconds between two looks at the machine's load while a reply is decoded.
INTERVAL = 0.5
#: A look over a longer span than this (the first of a reply: the span since the last
#: reply or the model's load) says nothing about now: it only starts a new span, and the
#: next look comes after ``FIRST_LOOK`` seconds of decoding.
MAX_SPAN = 2 * INTERVAL
FIRST_LOOK = 0.25
#: A core counts as free while other processes use less than this much of it.
SLACK = 0.3

_STAT = Path("/proc/stat")


def threads_for(wanted: int, cores: int, others: float) -> int:
    """Threads for one-token decodes: ``wanted`` while every one of them can have a core
    to itself, else one per core the other processes leave (at least one)."""
    return max(1, min(wanted, int(cores - others + SLACK)))


class CpuLoad:
    """Cores used by other processes since the last look (Linux only; None elsewhere)."""

    def __init__(self, stat: Path = _STAT, own_cpu: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stat = stat
        self._own_cpu = own_cpu
        self._clock = clock
        self._tick = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        """(wall seconds, busy CPU seconds of the whole machine, this process's CPU)."""
        try:
            first = self._stat.read_text().split("\n", 1)[0].split()
        except OSError:
            return None
        if len(first) < 5 or first[0] != "cpu":
            return None
        fields = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
        busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)
        return self._clock(), busy / self._tick, self._own_cpu()

    def others(self) -> float | None:
        """Cores other processes kept busy since the last call (steal time included: a
        core the host took is not ours either), or None where this cannot be read or
        the last call is more than ``MAX_SPAN`` ago (the span starts afresh then: a
        build that ended a minute ago must not halve the next reply's threads)."""
        now, last = self._sample(), self._last
        if now is None or last is None or now[0] - last[0] < 0.05:
            return None
        self._last = now
        if now[0] - last[0] > MAX_SPAN:
            return None
        busy = (now[1] - last[1]) - (now[2] - last[2])
        return max(0.0, busy / (now[0] - last[0]))


class DecodeThreads:
    """Keeps a ``Llama``'s one-token decodes at the threads the machine has room for."""

    def __init__(self, wanted: int, load: CpuLoad | None = None,
                 cores: int | None = None, adaptive: bool = True) -> None:
        if cores is None:
            cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                     else os.cpu_count() or 1)
        self.wanted = wanted
        self.cores = cores
        # Without a look at the load (``adaptive`` False): always ``wanted``.
        self._load = (load or CpuLoad()) if adaptive and wanted > 1 else None
        self._next = 0.0
        self.current = wanted
        #: Tokens decoded at each thread count (the bench reports it).
        self.tokens: dict[int, int] = {}

    def between_tokens(self, llm: llama_cpp.Llama, counted: bool = True) -> None:
        """Called before each decode of a reply; cheap unless a look is due or the
        context was re-created (a new one starts at the load options' threads)."""
        if counted:
            self.tokens[self.current] = self.tokens.get(self.current, 0) + 1
        now = time.monotonic()
        if now >= self._next:
            others = self._load.others() if self._load is not None else None
            if others is not None:
                self.current = threads_for(self.wanted, self.cores, others)
            # No answer (a span too long, or none yet): look again soon, over a real one.
            self._next = now + (INTERVAL if others is not None else FIRST_LOOK)
        if internals.decode_thread_count(llm) != self.current:
            internals.set_decode_threads(llm, self.current)
