"""A child process for tests/ui/test_quit_signals.py: a Qt event loop with
``ui.quit_signals`` installed, waiting (in C, inside Qt's loop) for a signal.

    python quit_signals_child.py graceful  # the first signal quits the loop: exit 0
    python quit_signals_child.py stuck     # the graceful quit hangs for ever

Prints ``ready`` once the handlers are in, and ``quitting`` when the graceful quit runs.
"""

from __future__ import annotations

import sys
import threading

from PySide6.QtCore import QCoreApplication, QTimer

from llamadesk.ui.quit_signals import install_quit_signals


def main() -> int:
    app = QCoreApplication(sys.argv[:1])
    stuck = sys.argv[1] == "stuck"

    def graceful() -> None:
        print("quitting", flush=True)
        if stuck:
            threading.Event().wait()  # a shutdown that never ends (blocked in C)
        app.quit()

    signals = install_quit_signals(app, graceful)
    QTimer.singleShot(0, lambda: print("ready", flush=True))
    status = app.exec()
    signals.uninstall()
    print("stopped", flush=True)
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
