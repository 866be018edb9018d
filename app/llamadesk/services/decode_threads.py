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

import llama_cpp

from llamadesk.services import llama_internals as internals
from llamadesk.services.cpu_load import MAX_SPAN as MAX_SPAN
from llamadesk.services.cpu_load import CpuLoad as CpuLoad
from llamadesk.services.cpu_load import launch_sample

#: Seconds between two looks at the machine's load while a reply is decoded.
INTERVAL = 0.5
#: After a look with no answer (a span too long: cpu_load.MAX_SPAN), the next comes after
#: this many seconds of decoding.
FIRST_LOOK = 0.25
#: A core counts as free while other processes use less than this much of it.
SLACK = 0.3


def threads_for(wanted: int, cores: int, others: float) -> int:
    """Threads for one-token decodes: ``wanted`` while every one of them can have a core
    to itself, else one per core the other processes leave (at least one)."""
    return max(1, min(wanted, int(cores - others + SLACK)))


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
        # The first model's: its first look spans the time since the window was shown
        # (cpu_load.note_launch), so the first prompt already gets the threads the
        # machine has room for (on 2 busy cores two threads read it 3-10x slower).
        self._load = ((load or CpuLoad(start=launch_sample())) if adaptive and wanted > 1
                      else None)
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
