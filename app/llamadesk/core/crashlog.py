"""A trace of native crashes, and telling the next start about them.

llama.cpp aborts (GGML_ASSERT) and segfaults end the process where no Python
exception hook runs. ``faulthandler`` still writes the Python stack of every thread
then, so each process that may run a model writes it to a file of its own in the logs
folder while it runs: ``running-<pid>.log``. A clean exit removes that file, so one that
is left behind with text in it belongs to a process that crashed. The next start renames
it to ``crash-<time>-<pid>.log`` (so it is reported once, by one process even when two
start together), keeps the newest few and says where it is.

The files hold stack traces only: file names, line numbers and function names — never
local variables, so never the text of a message.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import sys
import time
from pathlib import Path
from typing import TextIO

log = logging.getLogger(__name__)

RUNNING_PREFIX = "running-"
CRASH_PREFIX = "crash-"
#: How many reported crash logs are kept; older ones are removed.
KEEP_CRASH_LOGS = 5


def crash_logs(log_dir: Path) -> list[Path]:
    """The reported crash logs in ``log_dir``, oldest first."""
    found = [p for p in log_dir.glob(f"{CRASH_PREFIX}*.log") if p.is_file()]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def collect_crashes(log_dir: Path) -> list[Path]:
    """Claim the traces that crashed processes left in ``log_dir``: each becomes a
    ``crash-…`` log (returned, to be reported once), and only the newest
    ``KEEP_CRASH_LOGS`` of those are kept. An empty ``running-`` file is left to its
    process if that still runs, and removed if it was killed (no trace to show)."""
    claimed: list[Path] = []
    for running in sorted(log_dir.glob(f"{RUNNING_PREFIX}*.log")):
        try:
            if running.stat().st_size == 0:
                _forget_if_gone(running)
                continue
            stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(running.stat().st_mtime))
            pid = running.stem.removeprefix(RUNNING_PREFIX)
            target = log_dir / f"{CRASH_PREFIX}{stamp}-{pid}.log"
            running.rename(target)  # the rename is the claim: a second start finds nothing
        except OSError:  # gone (another start claimed it) or unreadable: not ours to report
            continue
        claimed.append(target)
    _prune(log_dir)
    return [p for p in claimed if p.exists()]


def _forget_if_gone(running: Path) -> None:
    """Remove an empty trace file whose process is gone (it was killed, which leaves no
    trace); one whose process still runs is left to it."""
    import psutil  # here: most starts find no such file, and start-up time counts

    pid = running.stem.removeprefix(RUNNING_PREFIX)
    if pid.isdigit() and psutil.pid_exists(int(pid)):
        return
    # Still open on Windows: its process is alive after all, so the file stays.
    with contextlib.suppress(OSError):
        running.unlink()


def _prune(log_dir: Path) -> None:
    """Keep the newest ``KEEP_CRASH_LOGS`` crash logs; crashes that repeat at every
    start must not fill the disk."""
    for old in crash_logs(log_dir)[:-KEEP_CRASH_LOGS]:
        try:
            old.unlink()
        except OSError as exc:
            log.warning("cannot remove an old crash log %s: %s", old.name, exc)


class CrashLog:
    """This process's native-crash trace file, written by ``faulthandler``.

    Use as a context manager around the process's work: on entry it claims earlier
    crashes (``previous``) and starts tracing; on a clean exit it stops and removes the
    file."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.path = log_dir / f"{RUNNING_PREFIX}{os.getpid()}.log"
        self.previous: list[Path] = []
        self._file: TextIO | None = None
        self._was_enabled = False

    def __enter__(self) -> CrashLog:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> list[Path]:
        """Claim earlier crashes (also kept in ``previous``), then trace this process.
        A folder that cannot be written only costs the trace, never the start."""
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.previous = collect_crashes(self.log_dir)
            self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            log.warning("native crashes will not be traced: %s", exc)
            return self.previous
        self._was_enabled = faulthandler.is_enabled()
        faulthandler.enable(self._file, all_threads=True)
        for crash in self.previous:
            log.warning("the previous run stopped unexpectedly; its trace: %s", crash)
        return self.previous

    def stop(self) -> None:
        """Stop tracing and remove this process's file (a clean exit leaves no trace)."""
        if self._file is None:
            return
        faulthandler.disable()
        if self._was_enabled and sys.__stderr__ is not None:
            faulthandler.enable(sys.__stderr__, all_threads=True)  # as it was before
        self._file.close()
        self._file = None
        try:
            self.path.unlink()
        except OSError as exc:
            log.warning("cannot remove %s: %s", self.path.name, exc)


def crash_notice(crashes: list[Path]) -> str | None:
    """One sentence for the user about the newest crash an earlier run left a trace of
    (None if there is none to report)."""
    if not crashes:
        return None
    return (f"LlamaDesk stopped unexpectedly last time. Its trace is in {crashes[-1]} "
            "- please attach that file to a bug report.")
