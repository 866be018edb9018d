"""SIGINT/SIGTERM through ``ui.quit_signals`` (the window's and ``serve``'s handling), in
a child process with a real Qt event loop: the first signal quits the usual way and the
process exits cleanly; a second one ends a shutdown that is stuck."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).parents[1] / "support" / "quit_signals_child.py"


def start(mode: str) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, str(CHILD), mode], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", process.stderr
    return process


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_first_signal_quits_cleanly(sig: signal.Signals) -> None:
    process = start("graceful")
    try:
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out.split() == ["quitting", "stopped"]
    assert "Traceback" not in err


def test_a_second_signal_ends_a_stuck_shutdown() -> None:
    process = start("stuck")
    try:
        assert process.stdout is not None
        process.send_signal(signal.SIGTERM)
        assert process.stdout.readline().strip() == "quitting"
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGTERM, "ended by the second signal"


def test_the_handler_itself_writes_nothing_to_the_log(qtbot: object,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """Python runs a signal's handler between any two bytecodes of the main thread, so also
    in the middle of a write to the log file, whose buffered writer refuses a reentrant
    call (a traceback at a SIGTERM on launch): the handler only schedules; the loop logs
    and quits."""
    from PySide6.QtCore import QCoreApplication

    from llamadesk.ui.quit_signals import QuitSignals

    quits: list[bool] = []
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    owner = QuitSignals(lambda: quits.append(True))
    caplog.set_level("INFO", logger="llamadesk.ui.quit_signals")
    try:
        owner._on_signal(signal.SIGTERM, None)
        assert caplog.records == [] and quits == [], "nothing happens inside the handler"
        QCoreApplication.processEvents()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert quits == [True]
    assert [r.getMessage() for r in caplog.records] == [
        "SIGTERM received: quitting (a second one ends the process at once)"]
