"""A child process a test drives (the app, ``serve``): killed if a check failed while it
ran, and afterwards its stderr must hold no Python traceback."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


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
    assert "Traceback" not in (process.stderr.read() if process.stderr else "")
