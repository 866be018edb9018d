"""The engine's early import (services/engine_import.py), each case in a fresh process:
it runs on its own thread, a process that exits while it runs waits for it and exits
cleanly, a failing import is left for ``prepare()`` to report, and it can be turned off."""

from __future__ import annotations

import os
import subprocess
import sys

CHILD = """
import atexit, sys, threading
from llamadesk.services import engine_import
{before}
atexit.register(lambda: print(
    "at-exit", hasattr(sys.modules.get("llamadesk.services.engine"), "LlamaEngine"),
    any(t.name == "engine-import" for t in threading.enumerate()), "psutil" in sys.modules,
    getattr(sys.modules.get("llamadesk.services.cpu_load"), "_launch", None) is not None,
    flush=True))
print("started", engine_import.start_early(), engine_import.start_early(), flush=True)
print("threads", sorted(t.name for t in threading.enumerate() if t.name == "engine-import"),
      flush=True)
sys.exit(0)  # at once, while the import runs
"""


def _child(before: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CHILD.format(before=before)],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=300, check=False)


def test_an_exit_during_the_early_import_waits_for_it_and_is_clean() -> None:
    done = _child()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "started True False" in lines  # once per process
    assert "threads ['engine-import']" in lines
    # the exit waited for the whole import: the module complete, its thread ended
    # and psutil, which the first send asks; and the launch's look at the machine's load
    assert "at-exit True False True True" in lines
    assert "Traceback" not in done.stderr and "Fatal" not in done.stderr


def test_a_failing_early_import_is_left_for_prepare_to_report() -> None:
    done = _child(before="sys.modules['llamadesk.services.engine'] = None")
    assert done.returncode == 0, done.stderr
    assert "started True False" in done.stdout.splitlines()
    assert "Traceback" not in done.stderr
    assert "the engine's early import failed: ModuleNotFoundError" in done.stderr


def test_it_can_be_turned_off() -> None:
    done = _child(LLAMADESK_ENGINE_EARLY="0")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "started False False" in lines
    assert "threads []" in lines
    assert "at-exit False False False False" in lines


HANGING = """
import sys, time
from llamadesk.services import engine_import

class Hang:  # an import that never ends, as a library's set-up hanging would
    def find_spec(self, name, path=None, target=None):
        if name == "llamadesk.services.engine":
            time.sleep(3600)
        return None

sys.meta_path.insert(0, Hang())
engine_import.start_early()
print("leaving", flush=True)
engine_import.leave_if_still_importing(3, timeout=0.5)
print("not reached", flush=True)
"""


def test_a_hanging_early_import_does_not_keep_the_process_alive() -> None:
    done = subprocess.run([sys.executable, "-c", HANGING], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 3, done.stderr
    assert done.stdout.splitlines() == ["leaving"]
    assert "did not end within" in done.stderr


def test_leaving_returns_once_the_import_has_ended() -> None:
    done = subprocess.run([sys.executable, "-c", (
        "from llamadesk.services import engine_import\n"
        "engine_import.start_early()\n"
        "engine_import.leave_if_still_importing(3, timeout=300)\n"
        "import sys\n"
        "print('returned', 'llamadesk.services.engine' in sys.modules, flush=True)\n")],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["returned True"]
