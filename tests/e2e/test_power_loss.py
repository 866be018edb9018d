"""Committed messages survive a crash at any moment.

A child process chats through the real send path (ChatController, the real inference
service on the bundled model, the real SQLite store) and announces each message once
its commit has returned; it is SIGKILLed at 20 random moments, each time on the same
database (tests/support/kill_harness.py; ``tools/stress_kill.py`` does 100). After every
kill the database passes ``integrity_check`` and holds every announced message.

A kill loses nothing the OS already holds; an OS crash or power cut also loses what the
OS had not yet written to the disk. For that the store runs SQLite with
``synchronous=FULL``: each commit syncs the write-ahead log before it returns. The last
test watches that happen, with strace, where strace exists.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kill_harness import CHILD, child_env, run

from llamadesk.core.store import ConversationStore

KILLS = 20


@pytest.mark.slow
def test_every_committed_message_survives_20_kills(tmp_path: Path,
                                                   bundled_model_path: Path) -> None:
    database = tmp_path / "chats.sqlite3"
    rounds, problems = run(database, tmp_path / "home", KILLS, seed=20, max_delay=1.2)
    assert not problems, "\n".join(problems)
    assert all(r.exit_code == -9 for r in rounds), "each round ended by the kill"
    committed = sum(len(r.committed) for r in rounds)
    assert committed >= KILLS, "the children got to commit messages before the kills"
    # Some kills hit mid-reply: the next start kept the checkpoint as an interrupted reply.
    store = ConversationStore(database)
    try:
        assert sum(len(store.messages(c.id)) for c in store.list_conversations()) >= committed
    finally:
        store.close()


def test_the_store_syncs_every_commit(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "chats.sqlite3")
    try:
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        store.close()


@pytest.mark.skipif(shutil.which("strace") is None or sys.platform != "linux",
                    reason="needs strace (Linux) to watch the system calls")
def test_each_commit_is_synced_to_disk_before_it_is_announced(
        tmp_path: Path, bundled_model_path: Path) -> None:
    """Under strace: before each "committed" line reaches stdout, the write-ahead log was
    fsynced (what an OS crash or power cut would otherwise lose)."""
    database = tmp_path / "chats.sqlite3"
    trace = tmp_path / "trace.txt"
    script = (f"import runpy, sys; sys.argv = [{str(CHILD)!r}, {str(database)!r}]; "
              f"runpy.run_path({str(CHILD)!r}, run_name='__main__')")
    child = subprocess.Popen(
        ["strace", "-f", "-qq", "-e", "trace=openat,close,fsync,fdatasync,write,pwrite64", "-e",
         "signal=none", "-s", "60", "-o", str(trace), sys.executable, "-c", script],
        env=child_env(tmp_path / "home"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        start_new_session=True)  # a killed strace leaves its tracee running: kill both
    assert child.stdout is not None
    announced = 0
    try:
        for raw in child.stdout:
            if raw.startswith(b"committed "):
                announced += 1
            if announced >= 6:
                break
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert announced >= 6
    # The question and the reply are committed by the GUI thread without waiting for the
    # disk and the log synced by the writer thread before each is announced
    # (core/store_sync.py), so
    # a sync of the log file by any thread counts; what must not be left unsynced at an
    # announcement is what the announcing thread wrote. fds belong to the process.
    wal_of_fd: dict[str, str] = {}
    unsynced: set[tuple[str, str]] = set()  # (thread, log file) written, not yet synced
    unfinished: dict[str, str] = {}  # a thread's call that strace split in two lines
    checked = 0
    for line in trace.read_text(errors="replace").splitlines():
        if " " not in line:
            continue
        pid, call = line.split(None, 1)
        if call.endswith("<unfinished ...>"):
            call = call.removesuffix("<unfinished ...>").rstrip()
            if not call.startswith("write(1,"):
                unfinished[pid] = call
                continue
            # An announcement counts from its start (strace may print no end for it when
            # another thread's call comes between).
        if (m := re.match(r"<\.\.\. \w+ resumed>(.*)$", call)) and pid in unfinished:
            call = unfinished.pop(pid) + m.group(1)
        if m := re.match(r'openat\(.*"([^"]+)".*=\s*(\d+)$', call):
            if m.group(1).startswith(str(database)) and m.group(1).endswith("-wal"):
                wal_of_fd[m.group(2)] = m.group(1)
            else:
                wal_of_fd.pop(m.group(2), None)
        elif m := re.match(r"close\((\d+)\)", call):
            wal_of_fd.pop(m.group(1), None)
        elif (m := re.match(r"p?write(?:64)?\((\d+),", call)) and m.group(1) in wal_of_fd:
            unsynced.add((pid, wal_of_fd[m.group(1)]))
        elif (m := re.match(r"f(?:data)?sync\((\d+)\)\s*= 0", call)) and m.group(1) in wal_of_fd:
            unsynced = {w for w in unsynced if w[1] != wal_of_fd[m.group(1)]}
        elif call.startswith("write(1,") and "committed " in call:
            assert not {w for w in unsynced if w[0] == pid}, (
                f"announced before the WAL was synced: {call}")
            checked += 1
    assert checked >= 6
