"""Claiming the traces crashed processes left, and keeping their number bounded (the
crash itself, in a real child process: tests/e2e/test_crash_log.py)."""

from __future__ import annotations

import faulthandler
import os
import subprocess
import sys
from pathlib import Path

from llamadesk.core import crashlog
from llamadesk.core.crashlog import CrashLog, collect_crashes, crash_logs, crash_notice

TRACE = "Fatal Python error: Aborted\n\nCurrent thread 0x1 (most recent call first):\n"


def dead_pid() -> int:
    """The id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_trace_is_claimed_once_and_an_empty_file_of_a_running_process_is_left(
        tmp_path: Path) -> None:
    (tmp_path / f"running-{dead_pid()}.log").write_text(TRACE)
    alive = tmp_path / f"running-{os.getppid()}.log"
    alive.write_text("")
    [claimed] = collect_crashes(tmp_path)
    assert claimed.name.startswith("crash-") and claimed.read_text() == TRACE
    assert collect_crashes(tmp_path) == [], "reported once"
    assert alive.exists()
    assert crash_notice([claimed]) is not None and str(claimed) in str(crash_notice([claimed]))
    assert crash_notice([]) is None


def test_an_empty_file_of_a_killed_process_is_removed(tmp_path: Path) -> None:
    killed = tmp_path / f"running-{dead_pid()}.log"
    killed.write_text("")
    assert collect_crashes(tmp_path) == []
    assert not killed.exists()


def test_only_the_newest_crash_logs_are_kept(tmp_path: Path) -> None:
    for n in range(crashlog.KEEP_CRASH_LOGS + 3):
        old = tmp_path / f"crash-old-{n}.log"
        old.write_text(TRACE)
        os.utime(old, (1_000_000 + n, 1_000_000 + n))
    (tmp_path / f"running-{dead_pid()}.log").write_text(TRACE)
    [claimed] = collect_crashes(tmp_path)
    kept = crash_logs(tmp_path)
    assert len(kept) == crashlog.KEEP_CRASH_LOGS
    assert kept[-1] == claimed
    assert tmp_path / "crash-old-0.log" not in kept


def test_a_clean_run_removes_its_file_and_gives_faulthandler_back(tmp_path: Path) -> None:
    was_enabled = faulthandler.is_enabled()
    with CrashLog(tmp_path / "crashes") as trace:
        assert trace.path.exists() and faulthandler.is_enabled()
        assert trace.previous == []
    assert not trace.path.exists()
    assert faulthandler.is_enabled() == was_enabled


def test_an_unwritable_folder_costs_the_trace_not_the_start(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    with CrashLog(blocker / "crashes") as trace:
        assert trace.previous == []
    assert blocker.read_text() == "a file where the folder should be"
