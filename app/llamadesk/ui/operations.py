"""UI changes as operations, in the way of Anki's ``CollectionOp``/``QueryOp``
(``qt/aqt/operations/__init__.py``): a view that changes what is stored (the chat
database, the settings file) hands the write to ``Operations``, which

- runs it on the GUI thread, or with ``run_in_background`` on its own worker thread;
- applies one error policy (``ui.user_errors``): a write the user can act on becomes a
  readable sentence (``failed``, shown in the chat's banner) and nothing stored is lost,
  any other exception is a bug and reaches the crash dialog;
- announces what changed, once, with who asked: ``changed(Changes, initiator)``. Views
  listen to that one event and update themselves (skipping a change they made and have
  already shown), instead of each write calling other views' refresh methods.

Why two ways to run. The chat database's SQLite connection belongs to the GUI thread that
opened it (``check_same_thread``), and each of its writes is one short transaction, so
store writes run in place. So do preset changes: the ``PresetBook`` belongs to the GUI
thread, which reads it for every preset chooser and new chat, and it takes a change only
once its small file is written, so a change cannot run beside those reads. The settings
file and the keychain can stall (a network home folder, a disk waking up, a keychain
waiting to be unlocked): those writes go to the background. The background is one
``services.worker.WorkerThread``, not a ``QThreadPool``: its operations run one at a time,
in the order made, so an earlier settings save never lands after a later one, and its stop
is bounded (a write stuck in the kernel is abandoned at the deadline, not waited on).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QObject, Signal, Slot

from llamadesk.services.worker import WorkerThread
from llamadesk.ui.user_errors import attempt_write, readable

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long closing waits for background writes in progress.
STOP_TIMEOUT_MS = 5_000


@dataclass(frozen=True)
class Changes:
    """What an operation changed (Anki's ``OpChanges``): views read it to decide what to
    re-read. Ids name the chats concerned, so a list updates one row, not all."""

    chats: frozenset[int] = frozenset()  # created, renamed, their settings or model
    deleted_chats: frozenset[int] = frozenset()
    messages: frozenset[int] = frozenset()  # chats whose messages or branch shown changed
    settings: bool = False  # the app's settings (connections and appearance among them)
    models: bool = False  # installed models (the picker's list)
    presets: bool = False  # the presets or the default one (every preset chooser's list)

    @property
    def anything(self) -> bool:
        """Whether there is anything for a view to update."""
        return bool(self.chats or self.deleted_chats or self.messages or self.settings
                    or self.models or self.presets)


def chat_changed(conversation_id: int) -> Changes:
    """A chat itself changed (title, settings, model)."""
    return Changes(chats=frozenset({conversation_id}))


def messages_changed(conversation_id: int) -> Changes:
    """A chat's messages (or the branch it shows) changed."""
    return Changes(messages=frozenset({conversation_id}))


@dataclass
class _Job(Generic[T]):
    op: Callable[[], T]
    changes: Changes | Callable[[T], Changes]
    initiator: object
    success: Callable[[T], object] | None
    report: Callable[[str], object] | None
    result: Any = None
    error: BaseException | None = field(default=None)


class _Worker(QObject):
    """Runs background operations on the operations thread."""

    done = Signal(object)

    @Slot(object)
    def run(self, job: _Job[Any]) -> None:
        try:
            job.result = job.op()
        except Exception as exc:  # handed back to the GUI thread, which decides
            job.error = exc
        self.done.emit(job)


class Operations(QObject):
    """Runs the window's writes and announces what they changed.

    Signals:
        changed(Changes, object): something stored changed; the second argument is who
            asked for it (a view, the controller; None when nobody in particular).
        failed(str): a write failed in a way the user can act on: the reason, in words.
    """

    changed = Signal(object, object)
    failed = Signal(str)
    _submit = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: WorkerThread | None = None
        self._in_flight = 0

    # -- running ---------------------------------------------------------------------------
    def run(self, op: Callable[[], T], changes: Changes | Callable[[T], Changes], *,
            initiator: object = None, success: Callable[[T], object] | None = None,
            report: Callable[[str], object] | None = None) -> bool:
        """Run ``op`` now, on this thread; on success announce ``changes`` (or
        ``changes(result)``) and call ``success(result)``. Returns whether it was done;
        if not, ``report`` (default: ``failed``) got the reason."""
        job = _Job(op, changes, initiator, success, report)
        done = attempt_write(lambda: setattr(job, "result", op()), self._reporter(job))
        if done:
            self._succeeded(job)
        return done

    def run_in_background(self, op: Callable[[], T],
                          changes: Changes | Callable[[T], Changes], *,
                          initiator: object = None,
                          success: Callable[[T], object] | None = None,
                          report: Callable[[str], object] | None = None) -> None:
        """Run ``op`` on the operations thread; the rest (the change event, ``success``,
        a failure's message) happens back on this thread when it is done. ``op`` must not
        touch the chat database or any widget."""
        if self._thread is None:
            worker = _Worker()
            self._submit.connect(worker.run)
            worker.done.connect(self._finished)
            self._thread = WorkerThread(worker, "operations")
        self._in_flight += 1
        self._submit.emit(_Job(op, changes, initiator, success, report))

    def announce(self, changes: Changes, initiator: object = None) -> None:
        """Tell the views of a change made elsewhere (the chat controller's replies, a chat
        the local API kept, a model installed in the Models window)."""
        if changes.anything:
            self.changed.emit(changes, initiator)

    @property
    def in_flight(self) -> int:
        """Background operations not finished yet."""
        return self._in_flight

    def shutdown(self, timeout_ms: int = STOP_TIMEOUT_MS) -> bool:
        """Let the background writes already made finish (within ``timeout_ms``), then
        stop the thread. Returns whether it stopped; a write stuck past the deadline is
        abandoned (``services/worker.py``) and the process can still exit."""
        thread, self._thread = self._thread, None
        return thread.finish(timeout_ms) if thread is not None else True

    # -- outcomes (this thread) ------------------------------------------------------------
    @Slot(object)
    def _finished(self, job: _Job[Any]) -> None:
        self._in_flight -= 1
        if job.error is None:
            self._succeeded(job)
            return
        message = readable(job.error)
        if message is None:
            raise job.error  # a bug: the crash dialog, as for any slot
        self._reporter(job)(message)

    def _succeeded(self, job: _Job[Any]) -> None:
        changes = job.changes(job.result) if callable(job.changes) else job.changes
        self.announce(changes, job.initiator)
        if job.success is not None:
            job.success(job.result)

    def _reporter(self, job: _Job[Any]) -> Callable[[str], object]:
        return job.report if job.report is not None else self.failed.emit
