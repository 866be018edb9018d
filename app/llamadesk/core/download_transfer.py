"""The byte-moving half of a download: stream, resume, retry, hash and sync.

``core.downloads.Downloader`` decides what to fetch and where it goes; ``Transfer`` moves
the bytes of one file into its ``.part`` and reports progress on the way.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx2
from huggingface_hub import get_session, hf_raise_for_status

from llamadesk.core.download_types import (
    DownloadControl,
    DownloadError,
    DownloadErrorKind,
    DownloadProgress,
    DownloadRequest,
    ProgressCallback,
)
from llamadesk.core.hub import HubClient, HubErrorKind, RemoteFile
from llamadesk.core.hub import hub_error as _hub_error
from llamadesk.core.units import format_bytes

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # seconds: at most four progress reports a second
SPEED_WINDOW = 3.0  # seconds of history behind the speed shown
SYNC_EVERY = 16 << 20  # bytes written between the fsyncs made while the file grows
_HASH_BATCH = 1 << 20  # bytes handed to the hashing thread at a time
_QUEUED_BATCHES = 16  # batches waiting for the hash, at most (the memory they may hold)


@dataclass(frozen=True)
class RetryPolicy:
    """Where a transfer sends its requests and how often it retries a dropped one."""

    hub: HubClient
    max_retries: int
    retry_delay: float


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




class Transfer:
    """The byte-moving half of one download: resume, stream, retry, report.

    Used as a context manager around ``run`` and ``finish``: it holds the .part file open
    for appending, and the helper threads that hash and sync it (see ``_Writeback``).
    """

    def __init__(self, policy: RetryPolicy, remote: RemoteFile, part: Path,
                 progress: ProgressCallback | None, control: DownloadControl) -> None:
        self.policy = policy
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

    def __enter__(self) -> Transfer:
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
            raise RuntimeError("Transfer used outside its with block")  # pragma: no cover
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
                if failures > self.policy.max_retries:
                    raise DownloadError(
                        DownloadErrorKind.NETWORK,
                        f"The connection to the Hub keeps failing ({type(exc).__name__}); "
                        f"the download stopped at {format_bytes(self.done)} of "
                        f"{format_bytes(self.remote.size)}. Resume it to continue from "
                        "there.", resumable=True) from exc
                log.warning("download of %s interrupted at byte %s (%s); resuming",
                            self.remote.filename, f"{self.done:,}", type(exc).__name__)
                self.control.sleep(self.policy.retry_delay * max(failures, 1))
        out.flush()
        writeback.sync()

    def _stream(self, out: BinaryIO, writeback: _Writeback) -> None:
        headers = self.policy.hub.headers()
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
