"""Long child-process runs that start in the background as soon as collection ends; the
test that checks each run's output goes last (a pytest plugin, loaded by
tests/conftest.py).

Why: the suite keeps about one of the machine's two cores busy (one test at a time, one
llama.cpp thread), and its two longest tests are each a single process of their own
with one llama.cpp thread: the benchmark's quick run (about 95 s) and 500 messages
through the send path (about 80 s). Started first, they run on the other core beside the
rest of the suite instead of after it. Each is a fresh process with its own folder and
home, sharing nothing with the other tests, so where its test runs in the order changes
nothing it checks; run alone, the test simply waits for its process.

Under pytest-xdist (``-n 2``) every worker collects the whole suite, so the controller
starts each run once, when a worker's collection lists its test, into a folder the
workers are told of; a watcher thread writes the exit status there, which the test, in
whichever worker runs it, waits for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = Path(__file__).resolve().parent


@dataclass
class BackgroundRun:
    """A child process writing its stdout, stderr and any files to ``folder``. In an
    xdist worker ``process`` is None: the controller started it, and its exit status
    comes as ``folder/status`` (its process id is in ``folder/pid``)."""

    folder: Path
    process: subprocess.Popen[bytes] | None = None

    def wait(self, timeout: float) -> tuple[int, str, str]:
        """Its exit status, stdout and stderr, once it has ended (``TimeoutExpired`` if it
        has not within ``timeout`` seconds; it is killed then)."""
        try:
            status = (self.process.wait(timeout) if self.process is not None
                      else self._status(timeout))
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        return (status, self._read("stdout.txt"), self._read("stderr.txt"))

    def stop(self) -> None:
        if self.process is None:
            if not (self.folder / "status").exists():
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(self._read("pid")), signal.SIGKILL)
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def _status(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while not (self.folder / "status").exists():
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.folder), timeout)
            time.sleep(0.5)
        return int(self._read("status"))

    def _read(self, name: str) -> str:
        return (self.folder / name).read_text(encoding="utf-8", errors="replace")


def start(argv: Callable[[Path], list[str]], folder: Path | None = None) -> BackgroundRun:
    """Start ``argv(folder)`` in ``folder`` (default: a new one); its output goes to files
    there (a pipe nobody reads yet could fill and stall it)."""
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="llamadesk-background-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "LLAMADESK_HOME": str(folder / "home")}  # never the user's own data
    with open(folder / "stdout.txt", "wb") as out, open(folder / "stderr.txt", "wb") as err:
        process = subprocess.Popen([sys.executable, *argv(folder)], cwd=ROOT, env=env,
                                   stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    return BackgroundRun(folder, process)


def _watched(run: BackgroundRun) -> BackgroundRun:
    """Write the run's process id, and its exit status once it ends, for the workers."""
    assert run.process is not None
    process = run.process
    (run.folder / "pid").write_text(str(process.pid), encoding="utf-8")

    def watch() -> None:
        status = process.wait()
        (run.folder / "status.tmp").write_text(str(status), encoding="utf-8")
        os.replace(run.folder / "status.tmp", run.folder / "status")
    threading.Thread(target=watch, name="background-run-watch", daemon=True).start()
    return run


#: The test (by the end of its node id) that checks each run, and the run's command line.
RUNS: dict[str, Callable[[Path], list[str]]] = {
    "test_bench_smoke.py::test_quick_benchmark_writes_every_metric": lambda folder: [
        str(ROOT / "bench" / "run.py"), "--quick", "--output", str(folder / "latest.json")],
    "test_load.py::test_500_messages_each_end_with_exactly_one_final_signal": lambda folder: [
        str(SUPPORT / "load_messages.py"), str(folder / "chats.sqlite3")],
}
_STARTED = pytest.StashKey[dict[str, BackgroundRun]]()
_BASE = pytest.StashKey[Path]()
#: The controller's folder of runs, as its xdist workers are told (``workerinput``).
WORKER_KEY = "llamadesk_background_runs"


def _run_named(nodeid: str) -> str | None:
    return next((name for name in RUNS if nodeid.endswith(name)), None)


def _folder_of(base: Path, name: str) -> Path:
    return base / name.split("::")[0].removesuffix(".py")


def _controller_base(config: pytest.Config) -> Path | None:
    """The runs' folder, where the controller starts them (``workerinput`` names it in a
    worker); None without xdist."""
    workerinput: dict[str, object] = getattr(config, "workerinput", {})
    if WORKER_KEY in workerinput:
        return Path(str(workerinput[WORKER_KEY]))
    return config.stash.get(_BASE, None)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """(The xdist controller, for each worker it starts.)"""
    config: pytest.Config = node.config
    if _BASE not in config.stash:
        config.stash[_BASE] = Path(tempfile.mkdtemp(prefix="llamadesk-background-"))
    node.workerinput[WORKER_KEY] = str(config.stash[_BASE])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    config: pytest.Config = node.config
    started = config.stash.setdefault(_STARTED, {})
    for nodeid in ids:
        name = _run_named(nodeid)
        if name and name not in started:
            started[name] = _watched(start(RUNS[name], _folder_of(config.stash[_BASE], name)))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Their tests go last, so the runs have the whole suite's time to finish."""
    last = [item for item in items if _run_named(item.nodeid)]
    if last:
        items[:] = [item for item in items if item not in last] + last


def pytest_collection_finish(session: pytest.Session) -> None:
    started = session.config.stash.setdefault(_STARTED, {})
    if session.config.option.collectonly or _controller_base(session.config) is not None:
        return  # under xdist, the controller starts them
    for item in session.items:
        name = _run_named(item.nodeid)
        if name and name not in started:
            started[name] = start(RUNS[name])


def pytest_sessionfinish(session: pytest.Session) -> None:
    for run in session.config.stash.get(_STARTED, {}).values():
        run.stop()  # a run nobody waited for (-x, Ctrl+C) ends with pytest
        shutil.rmtree(run.folder, ignore_errors=True)
    base = session.config.stash.get(_BASE, None)
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def background_run(request: pytest.FixtureRequest) -> BackgroundRun:
    """The run this test checks, started after collection (or now, if none was)."""
    name = _run_named(request.node.nodeid)
    assert name is not None, f"{request.node.nodeid} has no background run"
    base = _controller_base(request.config)
    if base is not None:  # an xdist worker: the controller started it
        return BackgroundRun(_folder_of(base, name))
    started = request.config.stash.setdefault(_STARTED, {})
    if name not in started:
        started[name] = start(RUNS[name])
    return started[name]
