"""The download queue both the download service and its worker hold: order, states,
pause / resume / cancel from the GUI side, take / mark from the worker side, close,
and one job per key when both sides call at once."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from llamadesk.core.download_queue import (
    DownloadQueue,
    JobState,
    QueueClosedError,
    Stop,
)
from llamadesk.core.downloads import DownloadCancelled, DownloadPaused


@dataclass(frozen=True)
class Req:
    name: str

    @property
    def key(self) -> str:
        return f"req:{self.name}"


A, B, C = Req("a"), Req("b"), Req("c")


def test_jobs_run_in_the_order_queued_and_are_forgotten_when_done() -> None:
    queue: DownloadQueue[Req] = DownloadQueue()
    assert queue.enqueue(A) and queue.enqueue(B)
    assert not queue.enqueue(A)  # already queued: nothing new
    first = queue.take_next()
    assert first is not None and first.request == A
    assert queue.state(A.key) == JobState.RUNNING
    assert not queue.enqueue(A)  # already running
    assert queue.state(B.key) == JobState.QUEUED
    queue.mark_done(first)
    assert queue.state(A.key) is None
    second = queue.take_next()
    assert second is not None and second.request == B
    queue.mark_done(second)
    assert queue.take_next() is None


def test_pausing_a_queued_job_stops_it_at_once_and_resume_queues_it_again() -> None:
    queue: DownloadQueue[Req] = DownloadQueue()
    queue.enqueue(A)
    queue.enqueue(B)
    assert queue.pause(A.key) == Stop.STOPPED
    assert queue.state(A.key) == JobState.PAUSED
    assert queue.pause(A.key) == Stop.NOTHING  # already paused
    job = queue.take_next()
    assert job is not None and job.request == B  # the paused one is skipped
    assert queue.resume(A.key)
    assert not queue.resume(A.key)  # queued now, not paused
    queue.mark_done(job)
    again = queue.take_next()
    assert again is not None and again.request == A


def test_pausing_a_running_job_sets_its_flag_and_the_worker_records_the_pause() -> None:
    queue: DownloadQueue[Req] = DownloadQueue()
    queue.enqueue(A)
    job = queue.take_next()
    assert job is not None
    assert queue.pause(A.key) == Stop.SIGNALLED
    with pytest.raises(DownloadPaused):
        job.control.check()
    assert queue.state(A.key) == JobState.RUNNING  # until the worker says otherwise
    queue.mark_paused(job)
    assert queue.state(A.key) == JobState.PAUSED
    assert queue.resume(A.key)
    resumed = queue.take_next()
    assert resumed is not None and resumed is not job
    resumed.control.check()  # fresh flags: the old pause does not stop the new run


def test_cancel_drops_a_waiting_job_and_signals_a_running_one() -> None:
    queue: DownloadQueue[Req] = DownloadQueue()
    queue.enqueue(A)
    queue.enqueue(B)
    running = queue.take_next()
    assert running is not None
    dropped = queue.cancel(B.key)
    assert dropped.stop == Stop.STOPPED and dropped.request == B
    assert queue.state(B.key) is None
    signalled = queue.cancel(A.key)
    assert signalled.stop == Stop.SIGNALLED and signalled.request is None
    with pytest.raises(DownloadCancelled):
        running.control.check()
    assert queue.cancel("req:unknown").stop == Stop.NOTHING
    queue.mark_done(running)
    assert queue.take_next() is None


def test_a_paused_job_can_be_cancelled() -> None:
    queue: DownloadQueue[Req] = DownloadQueue()
    queue.enqueue(A)
    queue.pause(A.key)
    result = queue.cancel(A.key)
    assert result.stop == Stop.STOPPED and result.request == A
    assert queue.state(A.key) is None


def test_uninterruptible_jobs_cannot_be_paused_or_cancelled_once_running() -> None:
    queue: DownloadQueue[Req] = DownloadQueue()
    queue.enqueue(A, interruptible=False)
    queue.enqueue(B, interruptible=False)
    assert queue.pause(B.key) == Stop.NOTHING  # not even while it waits
    job = queue.take_next()
    assert job is not None
    assert queue.pause(A.key) == Stop.NOTHING
    assert queue.cancel(A.key).stop == Stop.NOTHING
    job.control.check()  # no flag was set
    assert queue.cancel(B.key).stop == Stop.STOPPED  # a waiting one can be dropped


def test_close_drops_the_waiting_jobs_pauses_the_running_one_and_refuses_more() -> None:
    queue: DownloadQueue[Req] = DownloadQueue()
    queue.enqueue(A)
    queue.enqueue(B)
    running = queue.take_next()
    assert running is not None
    queue.close()
    assert queue.closed
    with pytest.raises(DownloadPaused):
        running.control.check()
    assert queue.take_next() is None
    with pytest.raises(QueueClosedError):
        queue.enqueue(C)
    queue.mark_paused(running)
    assert not queue.resume(A.key)


def test_a_stale_job_cannot_change_its_successor() -> None:
    queue: DownloadQueue[Req] = DownloadQueue()
    queue.enqueue(A)
    old = queue.take_next()
    assert old is not None
    queue.mark_paused(old)
    queue.resume(A.key)
    queue.mark_done(old)  # the old run reporting late
    assert queue.state(A.key) == JobState.QUEUED


def test_each_job_is_taken_once_when_both_sides_call_at_once() -> None:
    queue: DownloadQueue[Req] = DownloadQueue()
    requests = [Req(str(i)) for i in range(2000)]
    taken: list[str] = []
    lock = threading.Lock()
    done_queuing = threading.Event()

    def take() -> None:
        while True:
            finished = done_queuing.is_set()  # read before taking: nothing comes after
            job = queue.take_next()
            if job is None:
                if finished:
                    return
                continue
            with lock:
                taken.append(job.key)
            queue.mark_done(job)

    takers = [threading.Thread(target=take) for _ in range(4)]
    for thread in takers:
        thread.start()
    for request in requests:
        queue.enqueue(request)
    done_queuing.set()
    for thread in takers:
        thread.join(60)
    assert sorted(taken) == sorted(r.key for r in requests)
    assert all(queue.state(r.key) is None for r in requests)
