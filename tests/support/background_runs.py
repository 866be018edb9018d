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
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = Path(__file__).resolve().parent


@dataclass
class BackgroundRun:
    """A child process writing its stdout, stderr and any files to ``folder``."""

    process: subprocess.Popen[bytes]
    folder: Path

    def wait(self, timeout: float) -> tuple[int, str, str]:
        """Its exit status, stdout and stderr, once it has ended (``TimeoutExpired`` if it
        has not within ``timeout`` seconds; it is killed then)."""
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        return (status, self._read("stdout.txt"), self._read("stderr.txt"))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def _read(self, name: str) -> str:
        return (self.folder / name).read_text(encoding="utf-8", errors="replace")


def start(argv: Callable[[Path], list[str]]) -> BackgroundRun:
    """Start ``argv(folder)`` in a new folder; its output goes to files there (a pipe
    nobody reads yet could fill and stall it)."""
    folder = Path(tempfile.mkdtemp(prefix="llamadesk-background-"))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "LLAMADESK_HOME": str(folder / "home")}  # never the user's own data
    with open(folder / "stdout.txt", "wb") as out, open(folder / "stderr.txt", "wb") as err:
        process = subprocess.Popen([sys.executable, *argv(folder)], cwd=ROOT, env=env,
                                   stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    return BackgroundRun(process, folder)


#: The test (by the end of its node id) that checks each run, and the run's command line.
RUNS: dict[str, Callable[[Path], list[str]]] = {
    "test_bench_smoke.py::test_quick_benchmark_writes_every_metric": lambda folder: [
        str(ROOT / "bench" / "run.py"), "--quick", "--output", str(folder / "latest.json")],
    "test_load.py::test_500_messages_each_end_with_exactly_one_final_signal": lambda folder: [
        str(SUPPORT / "load_messages.py"), str(folder / "chats.sqlite3")],
}
_STARTED = pytest.StashKey[dict[str, BackgroundRun]]()


def _run_of(item: pytest.Item) -> str | None:
    return next((name for name in RUNS if item.nodeid.endswith(name)), None)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Their tests go last, so the runs have the whole suite's time to finish."""
    last = [item for item in items if _run_of(item)]
    if last:
        items[:] = [item for item in items if item not in last] + last


def pytest_collection_finish(session: pytest.Session) -> None:
    started = session.config.stash.setdefault(_STARTED, {})
    if session.config.option.collectonly:
        return
    for item in session.items:
        name = _run_of(item)
        if name and name not in started:
            started[name] = start(RUNS[name])


def pytest_sessionfinish(session: pytest.Session) -> None:
    for run in session.config.stash.get(_STARTED, {}).values():
        run.stop()  # a run nobody waited for (-x, Ctrl+C) ends with pytest
        shutil.rmtree(run.folder, ignore_errors=True)


@pytest.fixture
def background_run(request: pytest.FixtureRequest) -> BackgroundRun:
    """The run this test checks, started after collection (or now, if none was)."""
    name = _run_of(request.node)
    assert name is not None, f"{request.node.nodeid} has no background run"
    started = request.config.stash.setdefault(_STARTED, {})
    if name not in started:
        started[name] = start(RUNS[name])
    return started[name]
