"""SIGINT and SIGTERM for a Qt event loop: graceful first, forced on the second signal.

The way of qutebrowser's ``misc/crashsignal.py``: Python runs a signal's handler only
when the main thread runs Python code, and Qt's loop may sit waiting in C for a long
time. So ``signal.set_wakeup_fd`` has the C-level handler write to a socket that a
``QSocketNotifier`` watches; the loop wakes, and the Python handler runs at once. The
first signal asks the app to quit its usual way (the window closes, storing a reply in
progress; ``serve`` stops its server). It also puts both signals back to the system's
default, so a second one ends the process even if the shutdown is stuck in C code.
"""

from __future__ import annotations

import logging
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

from PySide6.QtCore import QObject, QSocketNotifier, QTimer, Slot

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class QuitSignals(QObject):
    """Turns SIGINT/SIGTERM into ``graceful()`` on the event loop, once; then the next
    one is the system's (the process ends). Install from the main thread."""

    def __init__(self, graceful: Callable[[], object], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._graceful = graceful
        self._previous: dict[int, Any] = {}
        self._old_wakeup_fd = -1
        self._sockets: tuple[socket.socket, socket.socket] | None = None
        self._notifier: QSocketNotifier | None = None

    def install(self) -> None:
        """Handle the signals from now on."""
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        self._sockets = (reader, writer)
        self._old_wakeup_fd = signal.set_wakeup_fd(writer.fileno())
        self._notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)
        self._previous = {sig: signal.signal(sig, self._on_signal) for sig in SIGNALS}

    def uninstall(self) -> None:
        """Put back what handled the signals before (and the wake-up fd)."""
        for sig, handler in self._previous.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, handler)
        self._previous = {}
        if self._sockets is not None:
            signal.set_wakeup_fd(self._old_wakeup_fd)
            if self._notifier is not None:
                self._notifier.setEnabled(False)
            for sock in self._sockets:
                sock.close()
            self._sockets = None

    @Slot()
    def _drain(self) -> None:
        # The bytes only woke the loop; the Python handler has run by now.
        if self._sockets is not None:
            try:
                while self._sockets[0].recv(64):
                    pass
            except OSError:  # drained (EAGAIN)
                pass

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        # Nothing more from inside the handler, which may have interrupted any code: even
        # logging, since it may have stopped the main thread inside a write to the same
        # log file (its buffered writer then refuses the reentrant call). From the loop.
        QTimer.singleShot(0, lambda: self._quit(signal.Signals(signum).name))

    def _quit(self, name: str) -> None:
        log.info("%s received: quitting (a second one ends the process at once)", name)
        self._graceful()


def install_quit_signals(app: QObject, graceful: Callable[[], object]) -> QuitSignals:
    """Handle SIGINT/SIGTERM for ``app`` (their owner, so they live as long as it)."""
    handler = QuitSignals(graceful, app)
    handler.install()
    return handler
