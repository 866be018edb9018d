"""The plain types of a download: its request, progress, control and errors.

Light on purpose (no HTTP client, no huggingface_hub): the window and the command line
name these without loading the transfer code in ``core.downloads``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from llamadesk.core.catalog import CatalogEntry

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}$")


class DownloadErrorKind(StrEnum):
    """Why a download failed; the UI uses it to choose what to offer (a token, a retry)."""

    NAME = "name"  # a hostile or unusable file name
    LICENCE = "licence"  # the licence has not been accepted
    GATED = "gated"  # the Hub wants a token with access
    HUB = "hub"  # the Hub refused or does not have it
    NETWORK = "network"  # the connection failed; the partial file is kept
    DISK = "disk"  # not enough space, or cannot write
    CHECKSUM = "checksum"  # the bytes differ from the Hub's sha256
    INVALID = "invalid"  # not a usable GGUF (a download's bytes, or a file to import)
    BUSY = "busy"  # another LlamaDesk process is downloading the same file
    INTERNAL = "internal"  # a fault of LlamaDesk's own


class DownloadError(Exception):
    """A download failed; ``str()`` is a sentence for the user."""

    def __init__(self, kind: DownloadErrorKind, message: str, resumable: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.resumable = resumable  # the partial file was kept


class DownloadInterrupted(Exception):  # noqa: N818 (control flow, not a failure)
    """The download stopped because the user asked."""


class DownloadPaused(DownloadInterrupted):
    """Paused: the partial file is kept and the next call resumes it."""


class DownloadCancelled(DownloadInterrupted):
    """Cancelled: the partial file is deleted."""


class DownloadControl:
    """Pause and cancel flags, set from any thread, checked between chunks."""

    #: How long ``sleep`` waits at most before it looks for a pause asked by a signal.
    SIGNAL_LOOK_S = 0.1

    def __init__(self) -> None:
        self._event = threading.Event()
        self._cancel = False
        self._signalled = False

    def pause(self) -> None:
        """Stop soon and keep the partial file."""
        self._event.set()

    def pause_from_signal(self) -> None:
        """``pause`` for a signal handler: a plain flag, no lock. ``Event.set`` takes the
        event's lock, which the interrupted thread may hold (inside ``sleep``'s wait,
        as it takes the lock back): the handler would then wait for it forever."""
        self._signalled = True

    def cancel(self) -> None:
        """Stop soon and delete the partial file."""
        self._cancel = True
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether the pending stop is a cancel."""
        return self._cancel

    def check(self) -> None:
        """Raise DownloadCancelled or DownloadPaused if asked to stop."""
        if self._event.is_set():
            raise DownloadCancelled() if self._cancel else DownloadPaused()
        if self._signalled:
            raise DownloadPaused()

    def sleep(self, seconds: float) -> None:
        """Wait between retries, waking at once for a pause or cancel (within
        ``SIGNAL_LOOK_S`` for one asked by a signal)."""
        end = time.monotonic() + seconds
        while not self._signalled:
            left = end - time.monotonic()
            if left <= 0 or self._event.wait(min(left, self.SIGNAL_LOOK_S)):
                break
        self.check()


@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands."""

    done: int
    total: int
    speed: float  # bytes per second over the last few seconds
    eta: float | None  # seconds left; None while unknown

    @property
    def fraction(self) -> float:
        """Done, from 0 to 1."""
        return self.done / self.total if self.total else 0.0


ProgressCallback = Callable[[DownloadProgress], None]


@dataclass(frozen=True)
class DownloadRequest:
    """A file to fetch: a Hub repo and file, optionally tied to a catalog entry."""

    repo: str
    filename: str
    revision: str = "main"
    catalog_id: str | None = None

    @property
    def key(self) -> str:
        """A stable id for this download (the UI's row key)."""
        return f"{self.repo}/{self.filename}"

    @classmethod
    def for_catalog(cls, entry: CatalogEntry, quant: str | None = None) -> DownloadRequest:
        """The request for one quantisation of a catalog model."""
        return cls(entry.repo, entry.file(quant).file, entry.revision, entry.id)


@dataclass(frozen=True)
class PartialDownload:
    """A download that stopped part-way and can be resumed."""

    request: DownloadRequest
    done: int
    total: int
    part: Path


def safe_local_name(filename: str) -> str:
    """The local file name for a repo path, or DownloadError if the path is hostile.

    Repo paths may sit in folders (``Q4_K_M/model.gguf``); the local name is the last part.
    Refused: absolute paths, backslashes, ``..``, empty parts, hidden or odd names.
    """
    def refuse(why: str) -> DownloadError:
        return DownloadError(DownloadErrorKind.NAME,
                             f"Refusing to download {filename!r}: {why}.")

    if not filename or "\x00" in filename or any(ord(c) < 32 for c in filename):
        raise refuse("the name is empty or holds control characters")
    if filename.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", filename):
        raise refuse("it is an absolute path")
    if "\\" in filename:
        raise refuse("it contains a backslash")
    parts = filename.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise refuse("it would leave the models folder")
    name = parts[-1]
    if not _NAME_RE.match(name):
        raise refuse("the file name has characters LlamaDesk does not accept")
    if not name.lower().endswith(".gguf"):
        raise refuse("it is not a .gguf file")
    return name

