"""Readable reasons for a write to the chat database that failed.

SQLite reports a full disk, a lock held by another program and a read-only file as
exceptions with terse messages; the user needs to know what happened, that nothing
already saved was lost (each write is one transaction, rolled back whole), and what to do.
"""

from __future__ import annotations

from pathlib import Path

from llamadesk.core.db import sqlite

_KEPT = "Nothing already saved was lost."


def write_failure(path: Path, exc: sqlite.Error) -> str:
    """A sentence for a failed write to the database at ``path``."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc).lower()
    if primary == sqlite.SQLITE_FULL or "disk is full" in text:
        return (f"The disk holding the chat database ({path}) is full, so this change could "
                f"not be saved. {_KEPT} Free some space and try again.")
    if primary in (sqlite.SQLITE_BUSY, sqlite.SQLITE_LOCKED) or "locked" in text:
        return ("The chat database is busy: another program (or another LlamaDesk) is "
                f"writing to {path}. {_KEPT} Try again in a moment.")
    if primary == sqlite.SQLITE_READONLY or "readonly" in text or "read-only" in text:
        return (f"The chat database ({path}) cannot be written: it or its folder is "
                f"read-only. {_KEPT} Check the folder's permissions.")
    if primary == sqlite.SQLITE_IOERR or "i/o error" in text:
        return (f"The disk holding the chat database ({path}) reported an error while "
                f"saving ({exc}). {_KEPT} Check the disk, then try again.")
    return f"The chat database ({path}) could not be written: {exc}. {_KEPT}"
