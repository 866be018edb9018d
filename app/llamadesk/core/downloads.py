"""Verified, resumable downloads of GGUF files from the Hub.

huggingface_hub resolves the file (URL, commit, size, LFS sha256, authentication and its
error types); the bytes are streamed here with huggingface_hub's own HTTP client, because
since 1.18 it no longer resumes a download across calls. The bytes go to
``<models>/.partial/<owner>__<repo>__<file>.part`` with a small sidecar JSON
(``.part.json``: repo, file, commit, size, sha256, ETag). A later call, after a pause, a
dropped connection or a restart of the app, re-hashes what is there and continues with
an HTTP Range request from that byte. The sha256 is computed on a helper thread as the
bytes arrive, and the file is synced to disk as it grows (see ``_Writeback``).

Only a file whose sha256 equals the Hub's and whose GGUF header validates is moved
(atomically, ``os.replace``) into the models folder and registered. Anything else is
deleted and the reason is raised as DownloadError.
"""

from __future__ import annotations

import collections
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import httpx2
from filelock import FileLock, Timeout
from huggingface_hub import get_session, hf_raise_for_status

from llamadesk.core.catalog import CatalogEntry, Licence, ModelCatalog
from llamadesk.core.gguf_validate import GGUFMetadata, GGUFValidationError, read_metadata
from llamadesk.core.hub import HubClient, HubError, HubErrorKind, RemoteFile, check_repo_id
from llamadesk.core.hub import hub_error as _hub_error
from llamadesk.core.licences import (
    LicenceAcceptances,
    LicenceNotAcceptedError,
    licence_from_gguf,
    licence_from_hub,
)
from llamadesk.core.paths import AppPaths
from llamadesk.core.registry import ModelEntry, ModelRegistry, ModelSource
from llamadesk.core.units import format_bytes

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # seconds: at most four progress reports a second
SPEED_WINDOW = 3.0  # seconds of history behind the speed shown
MAX_RETRIES = 5
DISK_RESERVE = 50_000_000  # leave the disk a little room after the download
SYNC_EVERY = 16 << 20  # bytes written between the fsyncs made while the file grows
_HASH_BATCH = 1 << 20  # bytes handed to the hashing thread at a time
_QUEUED_BATCHES = 16  # batches waiting for the hash, at most (the memory they may hold)
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

    def __init__(self) -> None:
        self._event = threading.Event()
        self._cancel = False

    def pause(self) -> None:
        """Stop soon and keep the partial file."""
        self._event.set()

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

    def sleep(self, seconds: float) -> None:
        """Wait between retries, waking at once for a pause or cancel."""
        self._event.wait(seconds)
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


def _repo_dir(repo: str) -> str:
    owner, name = check_repo_id(repo).split("/")
    return f"{owner}__{name}"


class _Speed:
    """Bytes per second over a sliding window, and time left."""

    def __init__(self) -> None:
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def add(self, now: float, done: int) -> float:
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW:
            self._samples.popleft()
        t0, d0 = self._samples[0]
        return (done - d0) / (now - t0) if now > t0 else 0.0


class Downloader:
    """Downloads, verifies and registers GGUF files; one call per file, any thread."""

    def __init__(
        self,
        paths: AppPaths,
        hub: HubClient,
        registry: ModelRegistry,
        *,
        catalog: ModelCatalog | None = None,
        licences: LicenceAcceptances | None = None,
        max_retries: int = MAX_RETRIES,
        retry_delay: float = 1.0,
    ) -> None:
        self.paths = paths
        self.hub = hub
        self.registry = registry
        self.catalog = catalog
        self.licences = licences
        self.max_retries = max_retries
        self.retry_delay = retry_delay

    # -- partial files -----------------------------------------------------------------
    def part_path(self, request: DownloadRequest) -> Path:
        """Where the bytes of ``request`` collect until verified."""
        name = safe_local_name(request.filename)
        return self.paths.downloads_dir / f"{_repo_dir(request.repo)}__{name}.part"

    def destination(self, request: DownloadRequest) -> Path:
        """Where the verified file goes."""
        name = safe_local_name(request.filename)
        dest = self.paths.models_dir / _repo_dir(request.repo) / name
        # Belt and braces: whatever the checks above allowed must still land inside.
        if not dest.resolve().is_relative_to(self.paths.models_dir.resolve()):
            raise DownloadError(DownloadErrorKind.NAME,
                                f"Refusing to download {request.filename!r}: it would leave "
                                "the models folder.")
        return dest

    @staticmethod
    def _sidecar(part: Path) -> Path:
        return part.with_name(part.name + ".json")

    def partials(self) -> list[PartialDownload]:
        """Downloads that stopped part-way (paused, cut off, or the app quit)."""
        found = []
        for sidecar in sorted(self.paths.downloads_dir.glob("*.part.json")):
            try:
                data = json.loads(sidecar.read_text(encoding="utf-8"))
                request = DownloadRequest(data["repo"], data["filename"], data["revision"],
                                          data.get("catalog_id"))
                part = sidecar.with_name(sidecar.name.removesuffix(".json"))
                done = part.stat().st_size if part.exists() else 0
                found.append(PartialDownload(request, done, int(data["size"]), part))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring unreadable partial download %s (%s)", sidecar.name, exc)
        return found

    def discard(self, request: DownloadRequest) -> None:
        """Delete the partial file of ``request``, if any."""
        part = self.part_path(request)
        part.unlink(missing_ok=True)
        self._sidecar(part).unlink(missing_ok=True)

    # -- the download ------------------------------------------------------------------
    def catalog_entry(self, request: DownloadRequest) -> CatalogEntry | None:
        """The catalog entry the request belongs to, by id or by repo."""
        if self.catalog is None:
            return None
        if request.catalog_id:
            entry = self.catalog.get(request.catalog_id)
            if entry is not None:
                return entry
        return self.catalog.for_repo(request.repo)

    def licence_for(self, request: DownloadRequest) -> Licence | None:
        """The licence to accept before this download: the catalog entry's, else the
        Llama 2 licence when the Hub's metadata names the repo a Llama 2 derivative."""
        entry = self.catalog_entry(request)
        if entry is not None:
            return entry.licence
        try:
            return licence_from_hub(*self.hub.model_card(request.repo, request.revision))
        except HubError as exc:
            raise DownloadError(DownloadErrorKind.NETWORK if exc.kind == HubErrorKind.NETWORK
                                else DownloadErrorKind.HUB, str(exc)) from exc

    def download(
        self,
        request: DownloadRequest,
        progress: ProgressCallback | None = None,
        control: DownloadControl | None = None,
    ) -> ModelEntry:
        """Fetch, verify and register one file; return its registry entry.

        Raises DownloadPaused (partial file kept), DownloadCancelled (deleted), or
        DownloadError with a readable reason.
        """
        control = control or DownloadControl()
        try:
            part = self.part_path(request)
            dest = self.destination(request)
        except HubError as exc:
            raise DownloadError(DownloadErrorKind.NAME, str(exc)) from exc
        entry = self.catalog_entry(request)
        if self.licences is not None:
            try:
                self.licences.require(self.licence_for(request))
            except LicenceNotAcceptedError as exc:
                raise DownloadError(DownloadErrorKind.LICENCE, str(exc)) from exc
        self.paths.downloads_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(part) + ".lock", timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise DownloadError(DownloadErrorKind.BUSY, f"{request.filename} is already being "
                                "downloaded by another LlamaDesk window or command.") from None
        try:
            return self._download_locked(request, entry, part, dest, progress, control)
        finally:
            # The lock file stays: deleting it while another process waits on it would
            # let two processes hold "the" lock at once.
            lock.release()

    def _resolve(self, request: DownloadRequest) -> RemoteFile:
        try:
            return self.hub.remote_file(request.repo, request.filename, request.revision)
        except HubError as exc:
            kind = DownloadErrorKind.GATED if exc.kind == HubErrorKind.GATED else (
                DownloadErrorKind.NETWORK if exc.kind == HubErrorKind.NETWORK
                else DownloadErrorKind.HUB)
            raise DownloadError(kind, str(exc)) from exc

    def _download_locked(self, request: DownloadRequest, entry: CatalogEntry | None,
                         part: Path, dest: Path, progress: ProgressCallback | None,
                         control: DownloadControl) -> ModelEntry:
        control.check()
        remote = self._resolve(request)
        sidecar = self._sidecar(part)
        state = _Transfer(self, remote, part, progress, control)
        state.prepare(sidecar, request)
        self._check_disk(remote.size - state.done, remote.filename)
        try:
            with state:  # closes the .part file and the helper threads before any cleanup
                state.run()
                # Checked while the helper threads hash the last chunks and write the file
                # out; the verdict counts only once the sha256 has matched.
                header = _read_header(part)
                digest = state.finish()
        except DownloadCancelled:
            self.discard(request)
            log.info("download of %s cancelled", request.key)
            raise
        except DownloadPaused:
            log.info("download of %s paused at %s", request.key, format_bytes(state.done))
            raise
        except DownloadError as exc:
            if not exc.resumable:
                self.discard(request)
            raise
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise DownloadError(DownloadErrorKind.DISK, f"The disk is full: {part.name} "
                                    f"stopped at {format_bytes(part.stat().st_size)}. What has "
                                    "arrived is kept; free some space and resume the "
                                    "download.", resumable=True) from exc
            raise DownloadError(DownloadErrorKind.DISK, f"Cannot write {part}: "
                                f"{exc.strerror or exc}", resumable=True) from exc
        return self._finish(request, entry, remote, part, dest, digest, header)

    def _check_disk(self, needed: int, filename: str) -> None:
        free = shutil.disk_usage(self.paths.downloads_dir).free
        if needed + DISK_RESERVE > free:
            raise DownloadError(DownloadErrorKind.DISK,
                                f"Not enough disk space for {filename}: it needs "
                                f"{format_bytes(needed)} more and only {format_bytes(free)} is "
                                f"free on the drive holding {self.paths.models_dir}.",
                                resumable=True)

    def _finish(self, request: DownloadRequest, entry: CatalogEntry | None, remote: RemoteFile,
                part: Path, dest: Path, digest: str,
                header: GGUFMetadata | GGUFValidationError) -> ModelEntry:
        if digest != remote.sha256:
            self.discard(request)
            raise DownloadError(
                DownloadErrorKind.CHECKSUM,
                f"{remote.filename} arrived damaged: its sha256 is {digest[:16]}…, the Hub "
                f"published {remote.sha256[:16]}…. The bad file was deleted; try again.")
        if isinstance(header, GGUFValidationError):
            self.discard(request)
            raise DownloadError(DownloadErrorKind.INVALID,
                                f"{header}. The file matches the Hub's checksum, so the repo "
                                "itself holds a broken file; it was deleted.") from header
        meta = header
        if self.licences is not None and entry is None:
            try:  # the file's own metadata may say what the Hub's did not
                self.licences.require(licence_from_gguf(meta))
            except LicenceNotAcceptedError as exc:
                raise DownloadError(DownloadErrorKind.LICENCE, f"{exc} The downloaded file is "
                                    "kept: download it again after accepting to finish.",
                                    resumable=True) from exc
        if meta.split_count and meta.split_count > 1:
            self.discard(request)
            raise DownloadError(DownloadErrorKind.INVALID,
                                f"{remote.filename} is one part of a model split into "
                                f"{meta.split_count} files; LlamaDesk uses single-file models. "
                                "It was deleted.")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(part, dest)
        self._sidecar(part).unlink(missing_ok=True)
        log.info("downloaded and verified %s (%s)", request.key, format_bytes(remote.size))
        model = self.registry.entry_for_file(
            dest, meta, digest, ModelSource.DOWNLOADED, catalog_entry=entry,
            repo=remote.repo, filename=remote.filename, commit=remote.commit)
        return self.registry.add(model)


def _read_header(path: Path) -> GGUFMetadata | GGUFValidationError:
    """The file's metadata, or why its GGUF header is refused."""
    try:
        return read_metadata(path)
    except GGUFValidationError as exc:
        return exc


class _Transfer:
    """The byte-moving half of one download: resume, stream, retry, report.

    Used as a context manager around ``run`` and ``finish``: it holds the .part file open
    for appending, and the helper threads that hash and sync it (see ``_Writeback``).
    """

    def __init__(self, owner: Downloader, remote: RemoteFile, part: Path,
                 progress: ProgressCallback | None, control: DownloadControl) -> None:
        self.owner = owner
        self.remote = remote
        self.part = part
        self.progress = progress
        self.control = control
        self.done = 0
        self._hash = hashlib.sha256()
        self._speed = _Speed()
        self._last_report = 0.0
        self._out: BinaryIO | None = None
        self._writeback: _Writeback | None = None

    def __enter__(self) -> _Transfer:
        self._out = self.part.open("ab")
        self._writeback = _Writeback(self._hash, self._out.fileno())
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self._writeback is not None:
                self._writeback.close()
        finally:
            if self._out is not None:
                self._out.close()
            self._writeback = self._out = None

    def _open(self) -> tuple[BinaryIO, _Writeback]:
        if self._out is None or self._writeback is None:
            raise RuntimeError("_Transfer used outside its with block")  # pragma: no cover
        return self._out, self._writeback

    def finish(self) -> str:
        """Wait until every byte is hashed and on disk; return the sha256."""
        digest = self._open()[1].wait()
        self._report(force=True)
        return digest

    def prepare(self, sidecar: Path, request: DownloadRequest) -> None:
        """Keep a partial file that belongs to the same bytes; otherwise start afresh."""
        expected = {"sha256": self.remote.sha256, "size": self.remote.size}
        keep = False
        if self.part.exists() and sidecar.exists():
            try:
                old = json.loads(sidecar.read_text(encoding="utf-8"))
                keep = all(old.get(k) == v for k, v in expected.items())
            except (OSError, ValueError):
                keep = False
        if keep and self.part.stat().st_size <= self.remote.size:
            self._rehash()
        else:
            self.part.unlink(missing_ok=True)
        record: dict[str, Any] = {
            "repo": request.repo, "filename": request.filename, "revision": request.revision,
            "catalog_id": request.catalog_id, "commit": self.remote.commit,
            "etag": self.remote.etag, **expected,
        }
        tmp = sidecar.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
        os.replace(tmp, sidecar)

    def _rehash(self) -> None:
        # The partial file is ours but unverified: hash it again so the final check covers
        # every byte, including those written before a crash.
        with self.part.open("rb") as fh:
            while chunk := fh.read(4 << 20):
                self._hash.update(chunk)
                self.done += len(chunk)
                self.control.check()
        log.info("resuming %s from byte %s", self.remote.filename, f"{self.done:,}")

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        speed = self._speed.add(now, self.done)
        if self.progress is None or (not force and now - self._last_report < PROGRESS_INTERVAL):
            return
        self._last_report = now
        left = self.remote.size - self.done
        eta = left / speed if speed > 0 else None
        self.progress(DownloadProgress(self.done, self.remote.size, speed, eta))

    def run(self) -> None:
        """Stream until the file is complete, retrying dropped connections from the
        byte reached; then start its final fsync (``finish`` waits for it)."""
        out, writeback = self._open()
        failures = 0
        self._report(force=True)
        while self.done < self.remote.size:
            self.control.check()
            before = self.done
            try:
                self._stream(out, writeback)
            except (httpx2.TransportError, _ShortReadError) as exc:
                out.flush()
                failures = 0 if self.done > before else failures + 1
                if failures > self.owner.max_retries:
                    raise DownloadError(
                        DownloadErrorKind.NETWORK,
                        f"The connection to the Hub keeps failing ({type(exc).__name__}); "
                        f"the download stopped at {format_bytes(self.done)} of "
                        f"{format_bytes(self.remote.size)}. Resume it to continue from "
                        "there.", resumable=True) from exc
                log.warning("download of %s interrupted at byte %s (%s); resuming",
                            self.remote.filename, f"{self.done:,}", type(exc).__name__)
                self.control.sleep(self.owner.retry_delay * max(failures, 1))
        out.flush()
        writeback.sync()

    def _stream(self, out: BinaryIO, writeback: _Writeback) -> None:
        headers = self.owner.hub.headers()
        headers["Accept-Encoding"] = "identity"  # sizes and offsets must be the file's own
        start = self.done
        if start:
            headers["Range"] = f"bytes={start}-"
        timeout = httpx2.Timeout(30.0, read=60.0)
        with get_session().stream("GET", self.remote.url, headers=headers,
                                  timeout=timeout) as response:
            if response.status_code >= 400:
                try:
                    hf_raise_for_status(response)
                except Exception as exc:
                    err = _hub_error(exc, self.remote.repo, self.remote.filename)
                    kind = (DownloadErrorKind.GATED if err.kind == HubErrorKind.GATED
                            else DownloadErrorKind.HUB)
                    raise DownloadError(kind, str(err), resumable=True) from exc
            if start and response.status_code == 200:
                # The server ignored the Range header and sends everything: start over.
                log.info("server ignored the range request; restarting %s",
                         self.remote.filename)
                out.seek(0)
                out.truncate()
                writeback.restart()
                self.done = 0
            elif start and response.status_code == 206:
                got = response.headers.get("Content-Range", "")
                if not got.startswith(f"bytes {start}-"):
                    raise DownloadError(DownloadErrorKind.HUB,
                                        f"The server answered a resume request with the wrong "
                                        f"range ({got or 'none'}).", resumable=False)
            # Chunks as they arrive (no re-chunking): when the connection drops, every byte
            # received so far has been written, and the resume starts exactly there.
            for chunk in response.iter_bytes():
                if not chunk:
                    continue
                if self.done + len(chunk) > self.remote.size:
                    raise DownloadError(DownloadErrorKind.CHECKSUM,
                                        f"The server sent more than the {self.remote.size:,} "
                                        f"bytes of {self.remote.filename}; the file was "
                                        "deleted.")
                out.write(chunk)
                writeback.update(chunk)
                self.done += len(chunk)
                self._report()
                self.control.check()
        if self.done < self.remote.size:
            raise _ShortReadError()


class _ShortReadError(Exception):
    """The response ended before the file did (a proxy closed it cleanly)."""


def _hash_batch(sha: hashlib._Hash, batch: list[bytes]) -> None:
    sha.update(b"".join(batch))


class _Writeback:
    """The helper threads of one transfer: one hashes what was written, in order; the
    other fsyncs the file every ``SYNC_EVERY`` bytes and once at the end.

    sha256 releases the GIL, so the receiving thread goes on reading the socket and
    writing the file while earlier bytes are hashed: on a fast link the hash would
    otherwise set the pace. Chunks go to the hash in batches of ``_HASH_BATCH`` bytes, as
    every hand-over passes the GIL between the threads, which per 64 KiB chunk costs more
    than hashing on a second core saves. The early fsyncs have the OS write the file out
    while it arrives, so the final one (before the file may be moved and registered) has
    little left to write. A failed fsync's OSError is raised to the receiving thread: the
    OS reports a failed write-back only once, so none may go unread.
    """

    def __init__(self, sha: hashlib._Hash, fd: int) -> None:
        self._sha = sha
        self._fd = fd
        self._batch: list[bytes] = []
        self._batched = 0
        self._unsynced = 0
        self._hashing: collections.deque[Future[None]] = collections.deque()
        self._syncing: collections.deque[Future[None]] = collections.deque()
        self._hasher = ThreadPoolExecutor(1, thread_name_prefix="llamadesk-download-hash")
        self._syncer = ThreadPoolExecutor(1, thread_name_prefix="llamadesk-download-sync")

    @staticmethod
    def _settle(futures: collections.deque[Future[None]], keep: int) -> None:
        """Take the results (raising any error) of the finished futures, and wait for the
        oldest until at most ``keep`` remain."""
        while futures and (len(futures) > keep or futures[0].done()):
            futures.popleft().result()

    def _hand_over(self) -> None:
        if self._batch:
            self._hashing.append(self._hasher.submit(_hash_batch, self._sha, self._batch))
            self._batch, self._batched = [], 0
        self._settle(self._hashing, _QUEUED_BATCHES)

    def update(self, chunk: bytes) -> None:
        """Hash ``chunk`` (already written to the file); now and then, sync the file."""
        self._batch.append(chunk)
        self._batched += len(chunk)
        if self._batched >= _HASH_BATCH:
            self._hand_over()
        self._unsynced += len(chunk)
        if self._unsynced >= SYNC_EVERY:
            self._settle(self._syncing, 1)
            if not self._syncing:  # one at a time; a busy disk just gets fewer
                self._syncing.append(self._syncer.submit(os.fsync, self._fd))
                self._unsynced = 0

    def restart(self) -> None:
        """Forget everything hashed: the file starts again from its first byte."""
        self._batch, self._batched = [], 0
        self._settle(self._hashing, 0)
        self._sha = hashlib.sha256()

    def sync(self) -> None:
        """Start the final fsync (the file must be flushed); ``wait`` waits for it."""
        self._hand_over()
        self._syncing.append(self._syncer.submit(os.fsync, self._fd))

    def wait(self) -> str:
        """Wait for every hash and fsync; return the sha256, or raise the OSError of a
        failed fsync."""
        self._hand_over()
        self._settle(self._hashing, 0)
        self._settle(self._syncing, 0)
        return self._sha.hexdigest()

    def close(self) -> None:
        """End the helper threads, dropping the work not yet started."""
        self._hasher.shutdown(wait=True, cancel_futures=True)
        self._syncer.shutdown(wait=True, cancel_futures=True)
