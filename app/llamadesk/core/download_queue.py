"""The queue of downloads and imports, shared by the GUI thread and the download worker.

The GUI side queues, pauses, resumes and cancels; the worker takes the next job and
says how its run ended. Every method takes the one lock, so both sides can call it at
any time. A job is known from ``enqueue`` until its run ends for good (done, cancelled
or failed beyond resuming); a paused job stays known, so ``resume`` can queue it again.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Generic, Protocol, TypeVar

from llamadesk.core.downloads import DownloadControl


class Keyed(Protocol):
    """A request the queue can hold: anything with a stable ``key``."""

    @property
    def key(self) -> str:
        """The job's id."""
        ...


R = TypeVar("R", bound=Keyed)


class JobState(StrEnum):
    """Where a job stands."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"


class Stop(Enum):
    """What a pause or cancel did."""

    NOTHING = "nothing"  # unknown job, or one in a state the request does not apply to
    SIGNALLED = "signalled"  # the job is running: its run ends soon and reports it
    STOPPED = "stopped"  # the job had not started: it stopped now, nobody else reports it


class QueueClosedError(RuntimeError):
    """The queue was closed (the app is shutting down)."""


@dataclass
class Job(Generic[R]):
    """One queued request, with the flags its run checks between chunks."""

    request: R
    interruptible: bool = True  # imports cannot be paused or cancelled once running
    control: DownloadControl = field(default_factory=DownloadControl)
    state: JobState = JobState.QUEUED

    @property
    def key(self) -> str:
        """The request's key."""
        return self.request.key


@dataclass(frozen=True)
class Cancelled(Generic[R]):
    """What ``cancel`` did, and the request it dropped when it stopped one at once."""

    stop: Stop
    request: R | None = None


class DownloadQueue(Generic[R]):
    """A thread-safe first-in first-out queue of download and import jobs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job[R]] = {}
        self._order: deque[str] = deque()
        self._closed = False

    # -- the GUI side ----------------------------------------------------------------
    def enqueue(self, request: R, *, interruptible: bool = True) -> bool:
        """Queue ``request``; False if a job with its key is already queued or running.

        Raises QueueClosedError once the queue is closed.
        """
        with self._lock:
            if self._closed:
                raise QueueClosedError("the download queue is closed")
            job = self._jobs.get(request.key)
            if job is not None and job.state in (JobState.QUEUED, JobState.RUNNING):
                return False
            self._jobs[request.key] = Job(request, interruptible)
            self._order.append(request.key)
            return True

    def state(self, key: str) -> JobState | None:
        """The job's state; None when the queue does not know it (never queued, or its
        run has ended for good)."""
        with self._lock:
            job = self._jobs.get(key)
            return job.state if job else None

    def pause(self, key: str) -> Stop:
        """Pause a queued or running interruptible job."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None or not job.interruptible:
                return Stop.NOTHING
            if job.state == JobState.RUNNING:
                job.control.pause()
                return Stop.SIGNALLED
            if job.state != JobState.QUEUED:
                return Stop.NOTHING
            job.state = JobState.PAUSED
            self._order.remove(key)
            return Stop.STOPPED

    def resume(self, key: str) -> bool:
        """Queue a paused job again (with fresh flags); False if it is not paused."""
        with self._lock:
            job = self._jobs.get(key)
            if self._closed or job is None or job.state != JobState.PAUSED:
                return False
            self._jobs[key] = Job(job.request, job.interruptible)
            self._order.append(key)
            return True

    def cancel(self, key: str) -> Cancelled[R]:
        """Cancel a job: a running one is asked to stop; any other is dropped now."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                return Cancelled(Stop.NOTHING)
            if job.state == JobState.RUNNING:
                if not job.interruptible:
                    return Cancelled(Stop.NOTHING)
                job.control.cancel()
                return Cancelled(Stop.SIGNALLED)
            if job.state == JobState.QUEUED:
                self._order.remove(key)
            del self._jobs[key]
            return Cancelled(Stop.STOPPED, job.request)

    def close(self) -> None:
        """Refuse new jobs, drop the waiting ones and ask a running one to pause (so its
        partial file is kept for next time)."""
        with self._lock:
            self._closed = True
            self._order.clear()
            for job in self._jobs.values():
                if job.state == JobState.RUNNING and job.interruptible:
                    job.control.pause()

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        with self._lock:
            return self._closed

    # -- the worker side -------------------------------------------------------------
    def take_next(self) -> Job[R] | None:
        """The next queued job, now marked running; None when none waits (or the queue
        is closed)."""
        with self._lock:
            while self._order and not self._closed:
                job = self._jobs.get(self._order.popleft())
                if job is not None and job.state == JobState.QUEUED:
                    job.state = JobState.RUNNING
                    return job
            return None

    def mark_done(self, job: Job[R]) -> None:
        """The job's run ended for good: forget it."""
        with self._lock:
            if self._jobs.get(job.key) is job:
                del self._jobs[job.key]

    def mark_paused(self, job: Job[R]) -> None:
        """The job's run stopped part-way and can be resumed."""
        with self._lock:
            if self._jobs.get(job.key) is job:
                job.state = JobState.PAUSED
