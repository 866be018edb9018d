"""services/one_thread.py: jobs run in order on one named thread made on first use;
shutdown runs its last job after what is queued and waits for it; a later job gets a
new thread."""

from __future__ import annotations

import threading

from llamadesk.services.one_thread import OneThread


def test_jobs_run_in_order_on_one_named_thread_and_the_last_after_them() -> None:
    thread = OneThread("one-thread-test")
    release = threading.Event()
    seen: list[tuple[str, str]] = []

    def job(name: str) -> str:
        release.wait(10)
        seen.append((name, threading.current_thread().name))
        return name

    futures = [thread.submit(job, name) for name in ("a", "b", "c")]
    threading.Timer(0.1, release.set).start()
    thread.shutdown(lambda: seen.append(("last", threading.current_thread().name)))
    assert [name for name, _t in seen] == ["a", "b", "c", "last"], "shutdown waited for all"
    assert len({t for _n, t in seen}) == 1 and seen[0][1].startswith("one-thread-test")
    assert [f.result(0) for f in futures] == ["a", "b", "c"]


def test_no_thread_no_last_job_and_a_later_job_gets_a_new_thread() -> None:
    thread = OneThread("one-thread-test")
    ran: list[str] = []
    thread.shutdown(lambda: ran.append("last"))
    assert ran == [], "nothing was kept: nothing to close"
    first = thread.submit(threading.get_ident).result(10)
    thread.shutdown(lambda: ran.append("last"))
    second = thread.submit(threading.get_ident).result(10)
    thread.shutdown(lambda: ran.append("last"))
    assert ran == ["last", "last"]
    assert threading.get_ident() not in (first, second)
