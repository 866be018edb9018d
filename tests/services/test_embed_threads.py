"""An embedding leaves no llama.cpp worker threads behind on the thread that asked for it
(services/embedder.py): a long-lived asker's OpenMP pool would make the chat's decode
threads sleep at every barrier (docs/performance.md, "Decode (round 7)")."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from llamadesk.services.embedder import Embedder
from llamadesk.services.engine_types import Embeddings

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="counts the process's threads in /proc (Linux)")


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_an_embedding_leaves_no_workers_with_the_thread_that_asked(
        bundled_model_path: Path) -> None:
    embedder = Embedder()
    asked, leave = threading.Event(), threading.Event()
    results: list[Embeddings] = []

    def ask() -> None:  # embeds with two threads, then stays alive, as a worker thread does
        results.append(embedder.embed(str(bundled_model_path), ["Where is the lighthouse?"],
                                      n_threads=2))
        asked.set()
        leave.wait(60)

    before = _threads()
    asker = threading.Thread(target=ask)
    asker.start()
    try:
        assert asked.wait(60)
        # The asker itself is one more; a pool of its own would leave a worker beside it.
        deadline = time.monotonic() + 5
        while _threads() > before + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _threads() <= before + 1  # (fewer: a thread an earlier test left ended)
        assert len(results[0].vectors[0]) == 576  # a real vector came back
    finally:
        leave.set()
        asker.join()
        embedder.close()


def test_the_passing_thread_hands_back_the_result_or_the_error() -> None:
    from llamadesk.services.embedder import _on_passing_thread

    caller = threading.get_ident()
    assert _on_passing_thread(threading.get_ident) != caller  # another thread ran it

    def fail() -> None:
        raise ValueError("no embedding")

    with pytest.raises(ValueError, match="no embedding"):
        _on_passing_thread(fail)


def test_ctrl_c_while_waiting_waits_for_the_work_to_end_first() -> None:
    """The CLI's Ctrl-C reaches the waiting caller, whose clean-up then frees the
    embedding context: raised while llama.cpp still read on the passing thread, that
    clean-up freed the context under it (a segfault)."""
    import signal

    from llamadesk.services.embedder import _on_passing_thread

    ended: list[bool] = []
    came = threading.Event()

    def work() -> None:  # ends only after the interrupt, however late the timer fires
        assert came.wait(60)
        time.sleep(0.2)
        ended.append(True)

    def interrupt(_signum: int, _frame: object) -> None:
        came.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGUSR1, interrupt)
    timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1))
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            _on_passing_thread(work)
        assert ended == [True], "the interrupt came only after the work had ended"
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
