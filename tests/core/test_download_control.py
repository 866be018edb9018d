"""DownloadControl: a pause asked from a signal handler (the command line's Ctrl+C)
takes no lock and still wakes a wait between retries."""

from __future__ import annotations

import threading
import time

import pytest

from llamadesk.core.download_types import DownloadCancelled, DownloadControl, DownloadPaused


def test_a_pause_from_a_signal_handler_takes_no_lock() -> None:
    """Ctrl+C may land while the main thread holds the event's lock (inside ``sleep``'s
    wait, taking it back): the handler must not wait for that lock. Here the lock is
    held by this thread; ``Event.set`` would wait for ever (the suite's timeout)."""
    control = DownloadControl()
    with control._event._cond:  # as the interrupted wait holds it
        control.pause_from_signal()
    with pytest.raises(DownloadPaused):
        control.check()


def test_a_pause_from_a_signal_wakes_a_wait_between_retries() -> None:
    control = DownloadControl()
    threading.Timer(0.2, control.pause_from_signal).start()
    started = time.monotonic()
    with pytest.raises(DownloadPaused):
        control.sleep(60)
    assert time.monotonic() - started < 30, "woken by the pause, not the 60 s wait's end"


def test_a_cancel_after_a_signalled_pause_is_still_a_cancel() -> None:
    control = DownloadControl()
    control.pause_from_signal()
    control.cancel()
    assert control.cancelled
    with pytest.raises(DownloadCancelled):
        control.check()


def test_a_wait_with_nothing_asked_lasts_its_time() -> None:
    control = DownloadControl()
    started = time.monotonic()
    control.sleep(0.3)
    assert time.monotonic() - started >= 0.3
