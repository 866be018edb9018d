"""The download service: its own thread, a queue, progress signals, pause / resume /
cancel, and exactly one final signal per run; plus the Hub query service."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_fixtures import (
    BROKEN_FILE,
    BROKEN_REPO,
    GATED_FILE,
    GATED_REPO,
    HF_TOKEN_VALUE,
    SMOL_FILE,
    SMOL_REPO,
    make_downloader,
)
from hubserver import HubServer
from pytestqt.qtbot import QtBot

from llamadesk.core.download_queue import JobState
from llamadesk.core.downloads import Downloader, DownloadErrorKind, DownloadRequest
from llamadesk.core.hub import HubClient, HubErrorKind
from llamadesk.core.paths import AppPaths
from llamadesk.core.registry import ModelEntry, ModelSource
from llamadesk.core.secrets import SecretStore
from llamadesk.services.downloads import DownloadService, ImportRequest
from llamadesk.services.hub_queries import HubQueryService

SMOL = DownloadRequest(SMOL_REPO, SMOL_FILE)
FINAL = ("download_finished", "download_paused", "download_cancelled", "download_failed")


class Recorder:
    """Every signal of a DownloadService, in order, as (name, args)."""

    def __init__(self, service: DownloadService) -> None:
        self.events: list[tuple[str, tuple[object, ...]]] = []
        for name in ("download_queued", "download_started", "download_progressed", *FINAL):
            getattr(service, name).connect(self._recorder(name))

    def _recorder(self, name: str):  # type: ignore[no-untyped-def]
        def record(*args: object) -> None:
            self.events.append((name, args))
        return record

    def names(self, key: str) -> list[str]:
        return [n for n, a in self.events if a[0] == key and n != "download_progressed"]

    def finals(self, key: str) -> list[str]:
        return [n for n in self.names(key) if n in FINAL]


class ThreadNotingDownloader(Downloader):
    """The real Downloader, noting which thread runs it."""

    threads: set[int]

    def download(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.threads.add(threading.get_ident())
        return super().download(*args, **kwargs)


@pytest.fixture
def service(paths: AppPaths, hub_server: HubServer) -> Iterator[DownloadService]:
    base = make_downloader(paths, secrets=SecretStore(environ={}))
    downloader = ThreadNotingDownloader(paths, base.hub, base.registry, retry_delay=0.05)
    downloader.threads = set()
    svc = DownloadService(downloader)
    yield svc
    svc.shutdown()


def test_download_runs_on_its_own_thread_and_finishes(qtbot: QtBot, service: DownloadService,
                                                      paths: AppPaths) -> None:
    events = Recorder(service)
    with qtbot.waitSignal(service.download_finished, timeout=60_000) as blocker:
        key = service.enqueue(SMOL)
    assert key == SMOL.key
    entry = blocker.args[1]
    assert isinstance(entry, ModelEntry) and entry.source == ModelSource.DOWNLOADED
    assert Path(entry.path).is_file()
    assert events.names(key) == ["download_queued", "download_started", "download_finished"]
    progress = [a for n, a in events.events if n == "download_progressed"]
    assert progress and progress[-1][1] == progress[-1][2] == 98_362_432
    assert threading.get_ident() not in service.downloader.threads  # type: ignore[attr-defined]
    assert service.state(key) is None


def test_queue_runs_jobs_in_order(qtbot: QtBot, service: DownloadService) -> None:
    SecretStore(environ={}).set_hf_token(HF_TOKEN_VALUE)  # the gated one needs it
    events = Recorder(service)
    first = service.enqueue(SMOL)
    second = service.enqueue(DownloadRequest(GATED_REPO, GATED_FILE))
    assert service.enqueue(SMOL) == first  # queuing it again does nothing
    qtbot.waitUntil(lambda: bool(events.finals(second)), timeout=60_000)
    started = [a[0] for n, a in events.events if n == "download_started"]
    assert started == [first, second]
    assert events.finals(first) == ["download_finished"]
    assert events.finals(second) == ["download_finished"]


def test_pause_then_resume(qtbot: QtBot, service: DownloadService,
                           hub_server: HubServer) -> None:
    hub_server.rate = 40e6
    events = Recorder(service)

    def pause_when_under_way(key: str, done: int, total: int, speed: float,
                             eta: float) -> None:
        if done > 10_000_000:
            service.pause(key)

    service.download_progressed.connect(pause_when_under_way)
    with qtbot.waitSignal(service.download_paused, timeout=60_000) as paused:
        key = service.enqueue(SMOL)
    service.download_progressed.disconnect(pause_when_under_way)
    done = paused.args[1]
    assert 10_000_000 < done < 98_362_432
    assert service.state(key) == JobState.PAUSED
    assert [p.request for p in service.partials()] == [SMOL]

    hub_server.rate = None
    with qtbot.waitSignal(service.download_finished, timeout=60_000):
        service.resume(key)
    ranges = [g.range_start for g in hub_server.downloads_of(SMOL_FILE)]
    assert ranges[0] is None and ranges[-1] is not None and ranges[-1] >= done
    assert events.finals(key) == ["download_paused", "download_finished"]


def test_cancel_running_and_queued(qtbot: QtBot, service: DownloadService,
                                   hub_server: HubServer, paths: AppPaths) -> None:
    hub_server.rate = 20e6
    events = Recorder(service)
    with qtbot.waitSignal(service.download_progressed, timeout=30_000):
        running = service.enqueue(SMOL)
    queued = service.enqueue(DownloadRequest(GATED_REPO, GATED_FILE))
    with qtbot.waitSignal(service.download_cancelled, timeout=5_000):
        service.cancel(queued)  # never started: cancelled at once
    with qtbot.waitSignal(service.download_cancelled, timeout=30_000):
        service.cancel(running)
    assert events.finals(running) == ["download_cancelled"]
    assert events.finals(queued) == ["download_cancelled"]
    assert "download_started" not in events.names(queued)
    assert service.partials() == []
    assert not any(p.suffix == ".part" for p in paths.downloads_dir.iterdir())


def test_gated_failure_carries_its_kind(qtbot: QtBot, service: DownloadService) -> None:
    with qtbot.waitSignal(service.download_failed, timeout=30_000) as failed:
        service.enqueue(DownloadRequest(GATED_REPO, GATED_FILE))
    key, reason, kind = failed.args
    assert key == f"{GATED_REPO}/{GATED_FILE}" and kind is DownloadErrorKind.GATED
    assert "gated repository" in reason


def test_imports_queue_like_downloads(qtbot: QtBot, service: DownloadService,
                                      hub_server: HubServer, tmp_path: Path,
                                      bundled_model_path: Path) -> None:
    source = tmp_path / "mine.Q4_1.gguf"
    data = bytearray(bundled_model_path.read_bytes())
    data[-1] ^= 0xFF
    source.write_bytes(bytes(data))
    with qtbot.waitSignal(service.download_finished, timeout=60_000) as done:
        key = service.enqueue_import(ImportRequest(str(source)))
    assert key == f"import:{source}" and done.args[1].source == ModelSource.IMPORTED

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(bytes(data[:1000]))
    with qtbot.waitSignal(service.download_failed, timeout=30_000) as failed:
        service.enqueue_import(ImportRequest(str(broken)))
    assert failed.args[2] is DownloadErrorKind.INVALID
    assert "not a valid GGUF model" in failed.args[1]


def test_shutdown_pauses_the_running_download(qtbot: QtBot, paths: AppPaths,
                                              hub_server: HubServer) -> None:
    hub_server.rate = 20e6
    svc = DownloadService(make_downloader(paths))
    events = Recorder(svc)
    svc.enqueue(SMOL)
    qtbot.waitUntil(lambda: any(n == "download_progressed" and int(a[1]) > 0  # type: ignore[call-overload]
                                for n, a in events.events), timeout=30_000)
    svc.shutdown()
    (partial,) = make_downloader(paths).partials()  # as the next start of the app sees it
    assert partial.request == SMOL and partial.done > 0


def test_broken_download_fails_with_reason(qtbot: QtBot, service: DownloadService) -> None:
    with qtbot.waitSignal(service.download_failed, timeout=30_000) as failed:
        service.enqueue(DownloadRequest(BROKEN_REPO, BROKEN_FILE))
    assert failed.args[2] is DownloadErrorKind.INVALID


@pytest.fixture
def queries(hub_server: HubServer) -> Iterator[HubQueryService]:
    svc = HubQueryService(HubClient())
    yield svc
    svc.shutdown()


def test_hub_queries(qtbot: QtBot, queries: HubQueryService) -> None:
    with qtbot.waitSignal(queries.search_finished, timeout=30_000) as found:
        request_id = queries.search("smol")
    assert found.args[0] == request_id
    assert [r.id for r in found.args[1]] == [SMOL_REPO]
    with qtbot.waitSignal(queries.files_listed, timeout=30_000) as listed:
        queries.list_files(SMOL_REPO)
    assert listed.args[1] == SMOL_REPO
    assert {c.quant for c in listed.args[2]} == {"Q4_1", "Q8_0"}
    with qtbot.waitSignal(queries.files_failed, timeout=30_000) as failed:
        queries.list_files("nobody/nothing")
    assert failed.args[1] == "nobody/nothing"
    assert failed.args[3] is HubErrorKind.REPO_NOT_FOUND

