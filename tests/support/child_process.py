"""A child process a test drives (the app, ``serve``): killed if a check failed while it
ran, and afterwards its stderr must hold no Python traceback."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def reaped(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """``process``, killed on the way out if it still runs; on success, its stderr is
    checked for a traceback (read after it ended, so nothing blocks)."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    err = process.stderr.read() if process.stderr else ""
    assert "Traceback" not in err, err[err.find("Traceback"):][:4000]


def wait_for_event(app: subprocess.Popen[str], events: Path, name: str, timeout_s: float,
                   failure: str) -> None:
    """Wait until the app's bench-timings file (``LLAMADESK_BENCH_TIMINGS``) records
    ``name``; fails with ``failure`` after ``timeout_s``, or at once if the app ended."""
    deadline = time.monotonic() + timeout_s
    while not (events.exists() and name in events.read_text()):
        assert app.poll() is None, "the app ended by itself"
        if time.monotonic() > deadline:
            pytest.fail(failure)
        time.sleep(0.2)
