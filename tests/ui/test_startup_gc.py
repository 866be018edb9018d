"""The garbage collector during start-up: off while the window is built (each full
collection walked every object the imports had made), on again once the window is
shown, with the start-up's objects frozen out of later collections; any other command
runs with it on."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llamadesk.cli import chats as cli_chats
from llamadesk.cli import main as cli


def test_the_window_is_built_without_collections_and_collects_once_shown(
        tmp_path: Path, store_passphrase: str) -> None:
    """The real start-up (``llamadesk`` with no arguments, a fresh home) through
    tests/support/startup_gc_probe.py."""
    env = {**os.environ, "LLAMADESK_HOME": str(tmp_path / "home"),
           "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    probe = Path(__file__).parents[1] / "support" / "startup_gc_probe.py"
    done = subprocess.run([sys.executable, str(probe)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split("=", 1) for line in done.stdout.split())
    assert lines["enabled-while-building"] == "False"
    assert lines["enabled-after-paint"] == "True"
    assert int(lines["frozen-after-paint"]) > 10_000, "the start-up's objects are frozen"


def test_a_command_runs_with_the_collector_on(monkeypatch: pytest.MonkeyPatch,
                                              home: Path) -> None:
    seen: list[bool] = []

    def run_chats(_args: object) -> int:
        seen.append(gc.isenabled())
        return 0

    monkeypatch.setattr(cli_chats, "run_chats", run_chats)
    monkeypatch.setattr(cli, "setup_logging", lambda _file: None)  # leave pytest's logging
    assert cli.main(["chats", "list"]) == 0
    assert seen == [True]
    assert gc.isenabled()
