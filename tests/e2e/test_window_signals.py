"""The window as a real process receiving SIGTERM mid-reply (``ui/quit_signals``): it
stops the reply, keeps what was written, closes and exits with status 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from child_process import reaped, wait_for_event
from crypt_fixtures import open_any

TIMEOUT = 300  # generous: a shared machine


def test_sigterm_mid_reply_closes_the_window_and_keeps_the_reply(
        bundled_model_path: Path, home: Path, tmp_path: Path) -> None:
    config = home / "config"
    config.mkdir(parents=True)
    (config / "settings.json").write_text(json.dumps(
        {"defaults": {"max_tokens": 4000, "temperature": 0.9, "repeat_penalty": 1.0}}))
    events = tmp_path / "events.jsonl"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "LLAMADESK_BENCH_TIMINGS": str(events),
           "LLAMADESK_BENCH_SEND": "Write a very long story about a lighthouse keeper."}
    app = subprocess.Popen([sys.executable, "-m", "llamadesk"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with reaped(app):
        wait_for_event(app, events, "first_token", TIMEOUT, "no reply started")
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=120) == 0
    db = open_any(home / "data" / "llamadesk.sqlite3")
    rows = db.execute("SELECT role, content, finish_reason FROM messages ORDER BY id").fetchall()
    db.close()
    assert [r[0] for r in rows] == ["user", "assistant"]
    assert rows[1][1].strip(), "the partial reply is kept"
    assert rows[1][2] == "stopped", "stopped by the signal as by Stop, mid-reply"


def test_sigterm_while_the_model_loads_still_exits_cleanly(
        bundled_model_path: Path, home: Path, tmp_path: Path) -> None:
    """The one shutdown sequence (ui/shutdown.py) reached from the signal handler with a
    model load in progress: the load is abandoned at the deadline and the app exits with
    its status (0) instead of waiting for the load or aborting on a running thread."""
    child = Path(__file__).parents[1] / "support" / "quit_loading_child.py"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    report = tmp_path / "report.txt"
    done = subprocess.run([sys.executable, str(child), str(report)], env=env,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    noted = report.read_text(encoding="utf-8")
    assert "state-at-quit=loading" in noted, "the signal came mid-load"
    assert "status=0 abandoned=inference" in noted
    assert "Traceback" not in done.stderr
    assert "Destroyed while thread" not in done.stderr
    db = open_any(home / "data" / "llamadesk.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "the store was closed"
    db.close()


def test_sigterm_as_soon_as_the_window_shows_exits_cleanly(
        bundled_model_path: Path, home: Path, tmp_path: Path) -> None:
    """Quitting at once, while the engine's early import (services/engine_import.py) and
    then the model's load may still run: the app exits with status 0, with no trace."""
    events = tmp_path / "events.jsonl"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LLAMADESK_BENCH_TIMINGS": str(events)}
    app = subprocess.Popen([sys.executable, "-m", "llamadesk"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with reaped(app):
        deadline = time.monotonic() + TIMEOUT
        while not (events.exists() and "window_shown" in events.read_text()):
            assert app.poll() is None, "the app ended by itself"
            assert time.monotonic() < deadline, "the window was not shown"
            time.sleep(0.01)
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=120) == 0  # (reaped: and no traceback on stderr)
    db = open_any(home / "data" / "llamadesk.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "the store was closed"
    db.close()
