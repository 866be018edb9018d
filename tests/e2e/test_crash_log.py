"""A native crash (llama.cpp's segfaults and aborts, where no exception hook runs) leaves
a trace in the logs folder, and the next start says so once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llamadesk.core.paths import app_paths

CHILD = Path(__file__).resolve().parents[1] / "support" / "crash_child.py"
TIMEOUT = 120
SECRET = "the words only the user typed"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=TIMEOUT, env=dict(os.environ), check=False)


def crash(how: str) -> subprocess.CompletedProcess[str]:
    result = run(str(CHILD), how, "chat", "--new", SECRET)
    assert result.returncode != 0, result.stderr
    return result


@pytest.mark.parametrize(("how", "fault"), [("segfault", "Segmentation fault"),
                                            ("abort", "Aborted")])
def test_a_native_crash_is_traced_and_reported_once_at_the_next_start(
        how: str, fault: str) -> None:
    crash(how)
    crash_dir = app_paths().crash_dir
    [left] = list(crash_dir.iterdir())
    trace = left.read_text(encoding="utf-8")
    assert f"Fatal Python error: {fault}" in trace
    assert f"crash_by_{how}" in trace and str(Path("cli", "main.py")) in trace, "the Python stack"
    assert SECRET not in trace and "user typed" not in trace, "stack traces only"

    second = run("-m", "llamadesk", "chats", "list")
    assert second.returncode == 0, second.stderr
    notices = [line for line in second.stderr.splitlines() if "stopped unexpectedly" in line]
    assert len(notices) == 1, second.stderr
    [reported] = list(crash_dir.iterdir())  # the second start's own trace file is gone
    assert reported.name.startswith("crash-") and str(reported) in notices[0]
    assert reported.read_text(encoding="utf-8") == trace

    third = run("-m", "llamadesk", "chats", "list")
    assert third.returncode == 0, third.stderr
    assert "stopped unexpectedly" not in third.stderr
    assert list(crash_dir.iterdir()) == [reported]
    log_text = app_paths().log_file.read_text(encoding="utf-8")
    assert log_text.count(reported.name) == 1 and SECRET not in log_text


def test_a_clean_exit_leaves_no_trace_file() -> None:
    result = run("-m", "llamadesk", "chats", "list")
    assert result.returncode == 0, result.stderr
    assert "stopped unexpectedly" not in result.stderr
    assert list(app_paths().crash_dir.iterdir()) == []
