"""One thread, made on first use, that runs jobs in the order they were handed over.

The reply checkpoints' writer (services/reply_checkpoints.py) and the question embedder
(services/query_embedder.py) each keep their own connection or llama.cpp context on
such a thread. ``shutdown`` runs a last job there after what is queued (closing what
the thread kept), then waits for the thread to end; a later ``submit`` makes a new one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class OneThread:
    """Jobs in order on one thread named ``name``, made when the first job comes.

    A ThreadPoolExecutor's thread: the interpreter joins it at exit after what was
    queued, so an owner that never shuts it down loses nothing and cannot abort the
    process (a running QThread would)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, job: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``job(*args, **kwargs)`` on the thread after what is queued."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix=self._name)
            return self._pool.submit(job, *args, **kwargs)

    def shutdown(self, last: Callable[[], object]) -> None:
        """Run ``last`` on the thread after what is queued and wait for the thread to
        end; nothing runs when no thread was made (then nothing was kept)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.submit(last)
            pool.shutdown(wait=True)
