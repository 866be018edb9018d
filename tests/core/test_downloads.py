"""Downloads against the loopback Hub serving the real bundled GGUF: verified, resumable,
refused when damaged, gated or hostile."""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import shutil
import threading
import time
from collections import namedtuple
from pathlib import Path

import pytest
from hub_fixtures import (
    BROKEN_FILE,
    BROKEN_REPO,
    GATED_FILE,
    GATED_REPO,
    HF_TOKEN_VALUE,
    HOSTILE_FILE,
    HOSTILE_REPO,
    SMOL_FILE,
    SMOL_REPO,
    make_downloader,
)
from hubserver import HubServer, sha256_of

from llamadesk.core.catalog import ModelCatalog
from llamadesk.core.downloads import (
    DownloadCancelled,
    DownloadControl,
    DownloadError,
    DownloadErrorKind,
    DownloadPaused,
    DownloadProgress,
    DownloadRequest,
    safe_local_name,
)
from llamadesk.core.licences import ACCEPTANCES_FILE, LicenceAcceptances
from llamadesk.core.paths import AppPaths
from llamadesk.core.registry import ModelRegistry, ModelSource
from llamadesk.core.secrets import SecretStore

SIZE = 98_362_432
SMOL = DownloadRequest(SMOL_REPO, SMOL_FILE)


def _nothing_left(paths: AppPaths) -> None:
    leftovers = [p.name for p in paths.downloads_dir.glob("*") if not p.name.endswith(".lock")]
    assert leftovers == []


def _only_bundled(paths: AppPaths) -> None:
    assert [e.source for e in ModelRegistry(paths).models()] == [ModelSource.BUNDLED]


def _no_helper_threads() -> None:
    # The threads that hash and sync a transfer end with it, however it ends.
    assert [t.name for t in threading.enumerate() if t.name.startswith("llamadesk-download")] \
        == []


def test_full_download_is_verified_and_registered(hub_server: HubServer, paths: AppPaths,
                                                  bundled_model_path: Path) -> None:
    seen: list[DownloadProgress] = []
    entry = make_downloader(paths).download(SMOL, seen.append)
    expected = paths.models_dir / "test-org__SmolLM2-135M-Instruct-GGUF" / SMOL_FILE
    assert entry.path == str(expected) and expected.stat().st_size == SIZE
    assert entry.sha256 == sha256_of(bundled_model_path)
    assert entry.source == ModelSource.DOWNLOADED
    assert (entry.quantisation, entry.context_length, entry.chat_format) == ("Q4_1", 8192,
                                                                            "chatml")
    assert entry.repo == SMOL_REPO and entry.commit == hub_server.repos[SMOL_REPO].commit
    assert entry.shape is not None and entry.has_chat_template
    _nothing_left(paths)
    # Registered for good: a fresh registry (the next start of the app) lists it.
    assert ModelRegistry(paths).get(entry.id) == entry
    assert seen[0].done == 0 and seen[-1].done == seen[-1].total == SIZE
    assert all(a.done <= b.done for a, b in itertools.pairwise(seen))


def test_cut_connection_resumes_with_range_from_where_it_stopped(
        hub_server: HubServer, paths: AppPaths, caplog: pytest.LogCaptureFixture) -> None:
    cut = int(SIZE * 0.3) // 65536 * 65536 + 12345  # ~30 %, not on a chunk boundary
    hub_server.cut_at = cut
    entry = make_downloader(paths).download(SMOL)
    gets = hub_server.downloads_of(SMOL_FILE)
    assert [g.range_start for g in gets] == [None, cut]
    assert gets[1].headers["range"] == f"bytes={cut}-"
    assert entry.sha256 == sha256_of(hub_server.repos[SMOL_REPO].files[SMOL_FILE].content)
    assert "interrupted at byte" in caplog.text


def test_flipped_byte_is_caught_and_nothing_registered(hub_server: HubServer,
                                                       paths: AppPaths) -> None:
    hub_server.flip_at = 50_000_000
    with pytest.raises(DownloadError) as info:
        make_downloader(paths).download(SMOL)
    assert info.value.kind == DownloadErrorKind.CHECKSUM
    assert "arrived damaged" in str(info.value) and "deleted" in str(info.value)
    _nothing_left(paths)
    _only_bundled(paths)
    assert not (paths.models_dir / "test-org__SmolLM2-135M-Instruct-GGUF" / SMOL_FILE).exists()


def test_broken_gguf_with_matching_checksum_is_refused(hub_server: HubServer,
                                                       paths: AppPaths) -> None:
    with pytest.raises(DownloadError) as info:
        make_downloader(paths).download(DownloadRequest(BROKEN_REPO, BROKEN_FILE))
    assert info.value.kind == DownloadErrorKind.INVALID
    assert "is not a valid GGUF model" in str(info.value)
    _nothing_left(paths)
    _only_bundled(paths)


def test_gated_repo_fails_without_token_and_works_with_one(
        hub_server: HubServer, paths: AppPaths, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    request = DownloadRequest(GATED_REPO, GATED_FILE)
    with pytest.raises(DownloadError) as info:
        make_downloader(paths).download(request)
    assert info.value.kind == DownloadErrorKind.GATED
    assert f"{GATED_REPO} is a gated repository" in str(info.value)
    assert "access token" in str(info.value)
    _only_bundled(paths)

    # The user enters a token; it goes to the (in-memory) keyring and is read back from
    # there by a fresh store, as after a restart.
    assert SecretStore(environ={}).set_hf_token(HF_TOKEN_VALUE).persisted
    entry = make_downloader(paths, secrets=SecretStore(environ={})).download(request)
    assert entry.repo == GATED_REPO
    sent = [r for r in hub_server.requests if r.method in ("HEAD", "GET") and "resolve" in r.path]
    assert sent[-1].headers["authorization"] == f"Bearer {HF_TOKEN_VALUE}"
    assert HF_TOKEN_VALUE not in caplog.text
    assert HF_TOKEN_VALUE not in ModelRegistry(paths).file.read_text()


def test_token_goes_to_the_hub_but_not_to_the_cdn(hub_server: HubServer, paths: AppPaths,
                                                  bundled_model_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with HubServer(token=HF_TOKEN_VALUE, cdn=True) as hub:
        hub.add_repo(GATED_REPO, {GATED_FILE: bundled_model_path}, gated=True)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        hub.cut_at = 20_000_000  # and resume through the redirect
        store = SecretStore(environ={"HF_TOKEN": HF_TOKEN_VALUE})
        entry = make_downloader(paths, secrets=store).download(
            DownloadRequest(GATED_REPO, GATED_FILE))
        assert entry.size == SIZE
        cdn = [r for r in hub.requests if r.listener == "cdn"]
        assert [r.range_start for r in cdn] == [None, 20_000_000]
        assert all("authorization" not in r.headers for r in cdn)
        assert all(r.headers.get("authorization") == f"Bearer {HF_TOKEN_VALUE}"
                   for r in hub.requests if r.listener == "hub" and "resolve" in r.path)


@pytest.mark.parametrize("name", [
    HOSTILE_FILE, "/etc/passwd.gguf", "..\\evil.gguf", "C:/evil.gguf", "a/../../b.gguf",
    "a//b.gguf", ".hidden.gguf", "model.bin", "", "x\x00.gguf", "~/x.gguf",
])
def test_hostile_names_are_refused_before_any_request(hub_server: HubServer, paths: AppPaths,
                                                      name: str) -> None:
    with pytest.raises(DownloadError) as info:
        make_downloader(paths).download(DownloadRequest(HOSTILE_REPO, name))
    assert info.value.kind == DownloadErrorKind.NAME
    assert str(info.value).startswith("Refusing to download")
    assert hub_server.requests == []
    assert not list(paths.models_dir.parent.rglob("escape*"))


def test_names_in_folders_are_flattened() -> None:
    assert safe_local_name("Q4_K_M/model.Q4_K_M.gguf") == "model.Q4_K_M.gguf"


def test_licence_must_be_accepted_first(hub_server: HubServer, paths: AppPaths,
                                        gated_catalog: ModelCatalog) -> None:
    entry = gated_catalog.get("llama-2-test")
    assert entry is not None
    licences = LicenceAcceptances(paths.config_dir / ACCEPTANCES_FILE)
    store = SecretStore(environ={"HF_TOKEN": HF_TOKEN_VALUE})
    downloader = make_downloader(paths, secrets=store, catalog=gated_catalog,
                                 licences=licences)
    with pytest.raises(DownloadError) as info:
        downloader.download(DownloadRequest.for_catalog(entry))
    assert info.value.kind == DownloadErrorKind.LICENCE
    assert "Llama 2 Community License must be accepted" in str(info.value)
    assert hub_server.requests == []
    licences.accept(entry.licence)
    assert LicenceAcceptances(licences.path).is_accepted("llama2")  # recorded, asked once
    model = downloader.download(DownloadRequest.for_catalog(entry))
    assert model.catalog_id == "llama-2-test" and model.licence_id == "llama2"
    assert model.chat_format == "llama-2"


def test_pause_then_resume_in_a_new_downloader(hub_server: HubServer, paths: AppPaths) -> None:
    control = DownloadControl()

    def pause_at_a_third(p: DownloadProgress) -> None:
        if p.done > SIZE // 3:
            control.pause()

    hub_server.rate = 200e6  # progress reports need a little time to pass
    with pytest.raises(DownloadPaused):
        make_downloader(paths).download(SMOL, pause_at_a_third, control)
    (partial,) = make_downloader(paths).partials()
    assert partial.request == SMOL and partial.total == SIZE
    assert SIZE // 3 < partial.done < SIZE and partial.part.stat().st_size == partial.done
    _only_bundled(paths)
    _no_helper_threads()

    hub_server.rate = None
    entry = make_downloader(paths).download(SMOL)  # a fresh object, as after a restart
    assert hub_server.downloads_of(SMOL_FILE)[-1].range_start == partial.done
    assert entry.size == SIZE
    assert make_downloader(paths).partials() == []


def test_cancel_deletes_the_partial_file(hub_server: HubServer, paths: AppPaths) -> None:
    control = DownloadControl()
    hub_server.rate = 200e6

    def cancel_soon(p: DownloadProgress) -> None:
        if p.done > 10_000_000:
            control.cancel()

    with pytest.raises(DownloadCancelled):
        make_downloader(paths).download(SMOL, cancel_soon, control)
    _nothing_left(paths)
    _only_bundled(paths)
    _no_helper_threads()


def test_server_ignoring_range_restarts_cleanly(hub_server: HubServer, paths: AppPaths) -> None:
    control = DownloadControl()
    hub_server.rate = 200e6

    def pause_soon(p: DownloadProgress) -> None:
        if p.done > 10_000_000:
            control.pause()

    with pytest.raises(DownloadPaused):
        make_downloader(paths).download(SMOL, pause_soon, control)
    hub_server.rate = None
    hub_server.ignore_range = True
    entry = make_downloader(paths).download(SMOL)
    assert entry.size == SIZE  # and it passed the sha256 check


def test_stale_partial_of_other_bytes_is_discarded(hub_server: HubServer,
                                                   paths: AppPaths) -> None:
    downloader = make_downloader(paths)
    part = downloader.part_path(SMOL)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"x" * 1000)
    part.with_name(part.name + ".json").write_text(json.dumps(
        {"repo": SMOL_REPO, "filename": SMOL_FILE, "revision": "main", "size": SIZE,
         "sha256": "0" * 64}))
    downloader.download(SMOL)
    assert hub_server.downloads_of(SMOL_FILE)[-1].range_start is None


@pytest.mark.parametrize("failing", ["early", "final"])
def test_failed_fsync_is_a_disk_error(hub_server: HubServer, paths: AppPaths,
                                      monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    # fsyncs run on a helper thread while the file grows, and once at the end; the OS
    # reports a failed write-back to one fsync only, so each one's error must come through.
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if failing == "early" or os.fstat(fd).st_size == SIZE:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(DownloadError) as info:
        make_downloader(paths).download(SMOL)
    assert info.value.kind == DownloadErrorKind.DISK and info.value.resumable
    assert "Input/output error" in str(info.value)
    (partial,) = make_downloader(paths).partials()  # kept, to resume
    assert (partial.done < SIZE) if failing == "early" else (partial.done == SIZE)
    _only_bundled(paths)
    _no_helper_threads()
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert make_downloader(paths).download(SMOL).size == SIZE  # resumed, then verified


def test_not_enough_disk_space(hub_server: HubServer, paths: AppPaths,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 10**7, 10**7))
    with pytest.raises(DownloadError) as info:
        make_downloader(paths).download(SMOL)
    assert info.value.kind == DownloadErrorKind.DISK
    assert "Not enough disk space" in str(info.value) and "98.4 MB" in str(info.value)
    assert hub_server.downloads_of(SMOL_FILE) == []


def test_progress_is_throttled(hub_server: HubServer, paths: AppPaths) -> None:
    hub_server.rate = 60e6  # about 1.6 s for the whole file
    seen: list[DownloadProgress] = []
    started = time.monotonic()
    make_downloader(paths).download(SMOL, seen.append)
    elapsed = time.monotonic() - started
    assert len(seen) <= 4 * elapsed + 3  # ~4 a second, plus the first and the last
    assert any(p.speed > 0 and p.eta is not None for p in seen)
