"""A bounded shutdown: a slot still running at the deadline (a model load, which
llama.cpp cannot interrupt) is abandoned, and the process still exits cleanly with its
own exit status, instead of waiting for ever or aborting on a running QThread. Each case
runs in a child process (tests/support/shutdown_child.py), as the exit is what is tested."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = Path(__file__).parents[1] / "support" / "shutdown_child.py"


def run_child(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHILD), *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_slot_that_never_returns_is_abandoned_and_the_process_exits() -> None:
    child = run_child("worker")
    assert child.returncode == 3, child.stderr
    assert "stopped=False abandoned=stuck" in child.stdout
    assert "did not stop within 50 ms; abandoned" in child.stderr
    assert "Destroyed while thread" not in child.stderr


def test_a_model_load_in_progress_does_not_hold_up_the_shutdown(
        bundled_model_path: Path) -> None:
    child = run_child("load", str(bundled_model_path))
    assert child.returncode == 3, child.stderr
    assert "stopped=False abandoned=inference" in child.stdout
    assert "Destroyed while thread" not in child.stderr
