"""Commits that do not wait for the disk, and the sync that makes them durable later.

The store commits with ``synchronous=FULL``: each commit syncs the write-ahead log before
it returns (an fsync: 1-10 ms, more on a slow disk). For the user's question that wait
was on the GUI thread, in the frame that shows the question. Inside ``deferred_sync``
a commit writes the log without the fsync: the OS holds it, so a crash or kill of the
app loses nothing; only an OS crash or power cut before the next sync could. ``sync_log``
then syncs the log from another thread (the reply checkpoints' writer), and only after
it returns is the message announced as stored (``ChatController.message_added``).

Syncing the log file syncs every frame written to it so far, by any connection; frames
a checkpoint already moved into the database file were synced there by the checkpoint
(SQLite syncs the log before a checkpoint and the database after it, at any
``synchronous`` level but OFF).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llamadesk.core.store import ConversationStore


@contextmanager
def deferred_sync(store: ConversationStore) -> Iterator[None]:
    """Commits of ``store`` inside reach the OS but are not synced; call ``sync_log``
    for its file afterwards (before the caller tells anyone they are stored)."""
    store.connection.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        store.connection.execute("PRAGMA synchronous=FULL")


def log_path(database: Path) -> Path:
    """The write-ahead log of the database at ``database`` (SQLite's naming; beside the
    file a symbolic link points to, where SQLite puts it on Unix)."""
    real = Path(os.path.realpath(database))
    return real.with_name(real.name + "-wal")


def sync_log(database: Path) -> None:
    """Sync the write-ahead log of ``database`` to the disk; safe from any thread (it
    uses no connection). Raises OSError when the disk refuses."""
    if str(database) == ":memory:":
        return
    try:
        fd = os.open(log_path(database), os.O_RDWR | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        return  # no log: the last connection closed, and its checkpoint synced the file
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
