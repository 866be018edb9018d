"""Verified, resumable downloads of GGUF files from the Hub.

huggingface_hub resolves the file (URL, commit, size, LFS sha256, authentication and its
error types); the bytes are streamed here with huggingface_hub's own HTTP client, because
since 1.18 it no longer resumes a download across calls. The bytes go to
``<models>/.partial/<owner>__<repo>__<file>.part`` with a small sidecar JSON
(``.part.json``: repo, file, commit, size, sha256, ETag). A later call, after a pause, a
dropped connection or a restart of the app, re-hashes what is there and continues with
an HTTP Range request from that byte. The sha256 is computed on a helper thread as the
bytes arrive, and the file is synced to disk as it grows (see ``core.download_transfer``).

Only a file whose sha256 equals the Hub's and whose GGUF header validates is moved
(atomically, ``os.replace``) into the models folder and registered. Anything else is
deleted and the reason is raised as DownloadError.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from pathlib import Path

from filelock import FileLock, Timeout

from llamadesk.core.catalog import CatalogEntry, Licence, ModelCatalog
from llamadesk.core.download_transfer import (
    PROGRESS_INTERVAL,
    SPEED_WINDOW,
    SYNC_EVERY,
    RetryPolicy,
    Transfer,
)
from llamadesk.core.download_types import (
    DownloadCancelled,
    DownloadControl,
    DownloadError,
    DownloadErrorKind,
    DownloadInterrupted,
    DownloadPaused,
    DownloadProgress,
    DownloadRequest,
    PartialDownload,
    ProgressCallback,
    safe_local_name,
)
from llamadesk.core.gguf_validate import GGUFMetadata, GGUFValidationError, read_metadata
from llamadesk.core.hub import HubClient, HubError, HubErrorKind, RemoteFile, check_repo_id
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

MAX_RETRIES = 5
DISK_RESERVE = 50_000_000  # leave the disk a little room after the download

__all__ = [  # the download API, importable from here as before the split
    "DISK_RESERVE", "MAX_RETRIES", "PROGRESS_INTERVAL", "SPEED_WINDOW", "SYNC_EVERY",
    "DownloadCancelled", "DownloadControl", "DownloadError", "DownloadErrorKind",
    "DownloadInterrupted", "DownloadPaused", "DownloadProgress", "DownloadRequest",
    "Downloader", "PartialDownload", "ProgressCallback", "safe_local_name",
]


def _repo_dir(repo: str) -> str:
    owner, name = check_repo_id(repo).split("/")
    return f"{owner}__{name}"


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
        policy = RetryPolicy(self.hub, self.max_retries, self.retry_delay)
        state = Transfer(policy, remote, part, progress, control)
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
