"""The command line's one error type and its one way of saying a failure: a single line
on stderr, ``llamadesk: <reason>``, and exit status ``EXIT_FAILED``.

The statuses themselves are in ``core/exit_codes.py`` (the window hands its status to the
same process exit). ``tests/test_cli_shape.py`` checks that no other module of cli/
defines an exit status, an error class or the ``llamadesk:`` prefix.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from llamadesk.core.exit_codes import EXIT_FAILED

#: What starts every line the command line writes about a failure.
PREFIX = "llamadesk: "


class CliError(Exception):
    """A failure a command reports as one line on stderr (exit ``EXIT_FAILED``)."""


def say(message: str, err: TextIO | None = None) -> None:
    """Write ``message`` as one ``llamadesk: …`` line on stderr (or ``err``)."""
    print(PREFIX + message, file=err or sys.stderr, flush=True)


def fail(reason: object, err: TextIO | None = None, *, log: logging.Logger | None = None,
         during: str = "") -> int:
    """Log the failure (its reason, never a chat's text), say it on stderr and return
    ``EXIT_FAILED``; ``during`` names the command for the log."""
    if log is not None:
        log.error("%s%s", f"{during}: " if during else "", reason)
    say(str(reason), err)
    return EXIT_FAILED


def os_reason(exc: OSError) -> str:
    """An ``OSError`` in words: the system's reason and the file it concerns."""
    return (exc.strerror or str(exc)) + (f": {exc.filename}" if exc.filename else "")
