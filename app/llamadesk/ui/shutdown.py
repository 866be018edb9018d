"""The one owner of quitting the window's app: the order things stop in, and the status
the process exits with.

Every way out comes here: the window's close button and File → Quit (``closeEvent`` asks
``may_close``), SIGINT/SIGTERM (``ui/quit_signals`` calls ``quit``), the screenshot run
(``quit(status)``), and the application quitting by any other road (``aboutToQuit`` runs
``finish``). The sequence:

1. keep what is on screen (the chat's settings being edited, the window's size);
2. stop generation: a reply in any chat is stopped and its partial text stored before
   the window closes (the close waits for ``reply_finished``/``reply_failed``);
3. stop the window's background writes, then the document indexer and the question
   embedder, the local API's server, the Models window's threads, and the remote lists'
   thread (bounded);
4. stop the model's thread, which first keeps the KV state of the chat the model holds
   for the next launch (``services/kv_persist.py``): a load in progress (llama.cpp
   cannot interrupt one) is abandoned at ``LOAD_DEADLINE_MS`` and the process exits all
   the same (``services/worker.py``);
5. close the chat store (SQLite folds its WAL back into the file);
6. exit with the status asked for.

Steps 3 to 6 run once the window is off the screen (the event loop's next turn after
its close): the model's thread may keep them waiting, and the user sees nothing of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtWidgets import QApplication

from llamadesk import APP_NAME

if TYPE_CHECKING:
    from llamadesk.ui.context import AppContext

log = logging.getLogger(__name__)

#: How long quitting waits for the model's thread (a load in progress) before giving up
#: on it and exiting anyway.
LOAD_DEADLINE_MS = 10_000


class Shutdown(QObject):
    """Closes the window's app in one order, once.

    ``parts`` are what the window itself stops or keeps: ``keep_on_screen`` (step 1),
    ``close_window`` (asks the window to close again once a reply is stored), and
    ``stop_window_services`` (the document indexer and the question embedder, the API
    server, the Models window)."""

    def __init__(self, ctx: AppContext, keep_on_screen: Callable[[], object],
                 close_window: Callable[[], object],
                 stop_window_services: Callable[[], object],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._keep_on_screen = keep_on_screen
        self._close_window = close_window
        self._stop_window_services = stop_window_services
        self._app: QApplication | None = None
        self._status = 0
        self._waiting_for_reply = False
        self.closing = False  # the window may close (or has): start nothing new
        self.finished = False
        # Connected after the chat pane's slots (the window builds this last): the partial
        # reply is stored and shown before the close goes ahead.
        ctx.controller.reply_finished.connect(self._reply_ended)
        ctx.controller.reply_failed.connect(self._reply_ended)

    def attach(self, app: QApplication) -> None:
        """Own the app's exit: closing the window quits it with the status asked for (not
        Qt's own quit on the last window closed, which would exit with 0), and any other
        quit still stops everything in order."""
        self._app = app
        app.setQuitOnLastWindowClosed(False)
        app.aboutToQuit.connect(self.finish)

    # -- the ways in -------------------------------------------------------------------
    @Slot()
    def quit(self, status: int = 0) -> None:
        """Quit with ``status`` (File → Quit, SIGINT/SIGTERM, the screenshot run): the
        window closes the usual way, waiting for a reply to be stored."""
        self._status = status
        self._close_window()

    def may_close(self) -> bool:
        """Steps 1 and 2, for the window's ``closeEvent``: whether it may close now. If a
        reply is being written, it is stopped, and the window is closed again once the
        reply is stored."""
        if self.finished:  # everything has stopped (the store is closed): nothing to keep
            return True
        self._keep_on_screen()
        if self._ctx.busy.now().replies:
            self._waiting_for_reply = True
            self._ctx.controller.stop()
            return False
        self.closing = True
        return True

    def window_closed(self) -> None:
        """The window is closing: when this owns the app's exit, finish and exit in the
        event loop's next turn, once the window is off the screen (the wait for the
        model's thread, up to ``LOAD_DEADLINE_MS`` when llama.cpp is loading a model,
        came with the window still on screen and frozen)."""
        if self._app is not None and not self.finished:
            QTimer.singleShot(0, self, self._finish_and_exit)

    @Slot()
    def _finish_and_exit(self) -> None:
        # Not when everything had stopped already: the app is quitting another way, and
        # an exit with no event loop running would end the next one at once.
        if self._app is not None and not self.finished:
            self.finish()
            self._app.exit(self._status)

    # -- the rest of the sequence ------------------------------------------------------
    @Slot()
    def finish(self) -> None:
        """Steps 3 to 5, once. A thread that does not stop by its deadline (a model
        load) is abandoned and logged by ``services/worker.py``; the rest goes on."""
        if self.finished:
            return
        self.closing = self.finished = True
        if self._app is not None:  # once is enough; the app may outlive this window
            self._app.aboutToQuit.disconnect(self.finish)
        ctx = self._ctx
        ctx.controller.stop()  # a quit that did not come through the window
        ctx.operations.shutdown()
        self._stop_window_services()
        if ctx.remote_models is not None:
            ctx.remote_models.shutdown()
        ctx.inference.shutdown(LOAD_DEADLINE_MS)
        ctx.store.close()
        log.info("%s closed", APP_NAME)

    @Slot()
    def _reply_ended(self) -> None:
        if self._waiting_for_reply and not self._ctx.busy.now().replies:
            self._waiting_for_reply = False
            self._close_window()
