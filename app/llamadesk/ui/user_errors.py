"""One error policy for the window's writes to the settings file, the presets file and
the chat store.

A write the user can do something about (the settings folder is read-only, the disk
holding the database is full or refuses) fails with SettingsSaveError, StoreError or
PresetSaveError, whose ``str()`` is already a readable sentence; a preset change the book
refuses (a taken name, a built-in) fails with PresetError, whose text says why in a few
words and is put in a sentence here. ``attempt_write`` (and ``readable``, for
a write made on another thread) turn those into that sentence for a banner or the status
bar, so they never reach the crash dialog; nothing
already saved is lost, because both raise before or instead of changing what is stored.
Any other exception is a bug and still reaches the crash dialog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from llamadesk.core.presets import PresetError, PresetSaveError
from llamadesk.core.store import StoreError
from llamadesk.services.settings import SettingsSaveError

log = logging.getLogger(__name__)

#: The failures of a write that are the user's to act on, not bugs.
USER_ERRORS: tuple[type[Exception], ...] = (SettingsSaveError, StoreError, PresetError)


def _sentence(exc: Exception) -> str:
    if isinstance(exc, PresetError) and not isinstance(exc, PresetSaveError):
        return f"The preset was not changed: {exc}."
    return str(exc)


def attempt_write(action: Callable[[], object], report: Callable[[str], object]) -> bool:
    """Whether ``action()`` was done; if not, ``report`` got the readable reason it
    failed. The log gets the kind of failure only (its text may name a chat's file,
    never a message, but the banner is the place for it). ``ui.operations`` is its
    caller: the window's writes are operations."""
    try:
        action()
    except USER_ERRORS as exc:
        log.warning("a write failed: %s", type(exc).__name__)
        report(_sentence(exc))
        return False
    return True


def readable(exc: BaseException) -> str | None:
    """The readable reason a write failed with ``exc`` (one made on another thread), or
    None if ``exc`` is a bug rather than the user's to act on."""
    if not isinstance(exc, USER_ERRORS):
        return None
    log.warning("a write failed: %s", type(exc).__name__)
    return _sentence(exc)
