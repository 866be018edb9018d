"""The window as a real process, quit and launched again on the same chat: the KV state
of the chat the model held is kept at quit beside the chat database, and the next
launch continues the chat from it (services/kv_persist.py, core/store_kv.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from child_process import reaped, wait_for_event
from crypt_fixtures import open_any

TIMEOUT = 300  # generous: a shared machine
RESTORED = "restored the KV state of"


def launch_send_and_quit(events: Path, message: str) -> None:
    """Launch the app, let it send ``message`` into the chat it shows, and quit it the
    way the system does (SIGTERM) once the reply is stored."""
    events.unlink(missing_ok=True)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "LLAMADESK_BENCH_TIMINGS": str(events), "LLAMADESK_BENCH_SEND": message}
    app = subprocess.Popen([sys.executable, "-m", "llamadesk"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with reaped(app):
        wait_for_event(app, events, "reply_finished", TIMEOUT, "no reply was stored")
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=120) == 0


def test_a_chat_continued_after_a_quit_starts_from_its_kept_state(
        bundled_model_path: Path, home: Path, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    kept = home / "data" / "llamadesk-kv.sqlite3"
    log = home / "logs" / "llamadesk.log"
    launch_send_and_quit(events, "Hello! Name one river.")
    assert kept.is_file(), "the quit kept the chat's state"
    assert b"SQLite format 3" not in kept.read_bytes()[:16], "encrypted like the chats"
    assert RESTORED not in log.read_text(encoding="utf-8")
    launch_send_and_quit(events, "And one mountain?")
    assert RESTORED in log.read_text(encoding="utf-8"), "the second launch started from it"
    db = open_any(home / "data" / "llamadesk.sqlite3")
    rows = db.execute("SELECT role FROM messages ORDER BY id").fetchall()
    db.close()
    assert [r[0] for r in rows] == ["user", "assistant", "user", "assistant"], "one chat"
