"""The engine's early import (services/engine_import.py), each case in a fresh process:
it runs on its own thread, a process that exits while it runs waits for it and exits
cleanly, a failing import is left for ``prepare()`` to report, and it can be turned off."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


BLAS_CHILD = """
import os
from llamadesk.services import engine_import
engine_import.limit_blas_threads()
before = len(os.listdir("/proc/self/task"))
import numpy  # noqa: F401
print("blas threads", os.environ.get("OPENBLAS_NUM_THREADS"),
      "new threads", len(os.listdir("/proc/self/task")) - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/task")
def test_numpys_blas_starts_one_thread_unless_the_environment_says_otherwise() -> None:
    """Nothing in the app uses BLAS, and OpenBLAS's threads spin while it starts (CPU
    the window and the first prompt need): numpy starts no thread of its own; a setting
    of the user's is kept."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    alone = subprocess.run([sys.executable, "-c", BLAS_CHILD], env=env, capture_output=True,
                           text=True, timeout=300, check=False)
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.splitlines() == ["blas threads 1 new threads 0"]
    kept = subprocess.run([sys.executable, "-c", BLAS_CHILD], env={**env,
                          "OPENBLAS_NUM_THREADS": "2"},
                          capture_output=True, text=True, timeout=300, check=False)
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.splitlines()[0].startswith("blas threads 2 ")


ENV_CHILD = """
import os
from llamadesk.services import engine_import
engine_import.limit_blas_threads()
changed = []
put, unset = os.putenv, os.unsetenv
os.putenv = lambda key, value: (changed.append(key), put(key, value))[1]
os.unsetenv = lambda key: (changed.append(key), unset(key))[1]
import numpy  # noqa: F401
print("changed", changed)
"""


def test_the_engines_import_leaves_the_environment_alone() -> None:
    """numpy's import sets OPENBLAS_MAIN_FREE with ``putenv`` and removes it again
    (``unsetenv``); on the engine's import thread that ran beside the window's own
    ``getenv`` calls (Qt, fontconfig) and llama.cpp's early load, and glibc may free the
    environment array such a call is reading. Set at the process's start instead (before
    any thread), numpy's import changes nothing."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_MAIN_FREE"}
    done = subprocess.run([sys.executable, "-c", ENV_CHILD], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["changed []"]
