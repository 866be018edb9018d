"""One error policy for the window's writes to the settings file and the chat store.

A write the user can do something about (the settings folder is read-only, the disk
holding the database is full or refuses) fails with SettingsSaveError or StoreError,
whose ``str()`` is already a readable sentence. ``attempt`` turns those into that
sentence for a banner or the status bar, so they never reach the crash dialog; nothing
already saved is lost, because both raise before or instead of changing what is stored.
Any other exception is a bug and still reaches the crash dialog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from llamadesk.core.store import StoreError
from llamadesk.services.settings import SettingsSaveError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The failures of a write that are the user's to act on, not bugs.
USER_ERRORS: tuple[type[Exception], ...] = (SettingsSaveError, StoreError)


def attempt(action: Callable[[], T], report: Callable[[str], object]) -> T | None:
    """``action()``'s result, or None after ``report`` got the readable reason it failed.

    The log gets the kind of failure only (its text may name a chat's file, never a
    message, but the banner is the place for it)."""
    try:
        return action()
    except USER_ERRORS as exc:
        log.warning("a write failed: %s", type(exc).__name__)
        report(str(exc))
        return None


def attempt_write(action: Callable[[], object], report: Callable[[str], object]) -> bool:
    """Whether ``action()`` (a write with no result to use) was done; if not, ``report``
    got the readable reason, as with ``attempt``."""
    try:
        action()
    except USER_ERRORS as exc:
        log.warning("a write failed: %s", type(exc).__name__)
        report(str(exc))
        return False
    return True
