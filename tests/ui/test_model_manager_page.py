"""The model manager page with the real services against the loopback Hub: search, download with
progress, pause and resume, gated token prompt, licence acceptance, import and remove."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gguf_tools import tiny_model
from hub_fixtures import (
    GATED_FILE,
    GATED_REPO,
    HF_TOKEN_VALUE,
    SMOL_FILE,
    SMOL_REPO,
    make_downloader,
)
from hubserver import HubServer
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from pytestqt.qtbot import QtBot

from llamadesk.core.catalog import Licence, ModelCatalog
from llamadesk.core.downloads import DownloadRequest
from llamadesk.core.fit import CacheTypes, MemoryBudget, ModelShape, kv_cache_bytes
from llamadesk.core.hub import HubClient
from llamadesk.core.licences import ACCEPTANCES_FILE, LLAMA2, LicenceAcceptances
from llamadesk.core.paths import AppPaths
from llamadesk.core.secrets import SecretStore, TokenSource
from llamadesk.services.downloads import DownloadService
from llamadesk.services.hub_queries import HubQueryService
from llamadesk.ui.model_manager_page import ModelManagerPage

GB = 1_000_000_000


@pytest.fixture
def page(qtbot: QtBot, paths: AppPaths, hub_server: HubServer,
         gated_catalog: ModelCatalog) -> Iterator[ModelManagerPage]:
    secrets = SecretStore(environ={})
    # The downloader enforces the licences the page asks for, on the same file, as in the app.
    licences = LicenceAcceptances(paths.config_dir / ACCEPTANCES_FILE)
    downloader = make_downloader(paths, secrets=secrets, catalog=gated_catalog,
                                 licences=LicenceAcceptances(licences.path))
    downloads = DownloadService(downloader)
    queries = HubQueryService(HubClient(token=secrets.hf_token))
    widget = ModelManagerPage(downloads, queries, downloader.registry, gated_catalog,
                        licences, secrets,
                        n_ctx=2048, budget=lambda: MemoryBudget(16 * GB, 8 * GB))
    qtbot.addWidget(widget)
    yield widget
    downloads.shutdown()
    queries.shutdown()


def _file_row_text(page: ModelManagerPage, name: str) -> list[str]:
    for i in range(page.hub_search.file_list.topLevelItemCount()):
        item = page.hub_search.file_list.topLevelItem(i)
        if item.text(0) == name:
            return [item.text(c) for c in range(4)]
    raise AssertionError(f"{name} not listed")


def test_catalog_shows_every_model_with_fit_labels(page: ModelManagerPage) -> None:
    tree = page.catalog_tree
    assert tree.topLevelItemCount() == len(page.catalog.entries)
    first = tree.topLevelItem(0)
    assert first.text(0).startswith("Llama 2 Chat 7B") and "Llama 2" in first.text(3)
    labels = {first.child(i).text(2) for i in range(first.childCount())}
    assert labels <= {"fits", "tight", "won't fit"} and "fits" in labels
    assert "weights" in first.child(0).toolTip(2)  # the explanation
    assert page.installed_ids() == ["smollm2-135m-instruct-q4_1"]


def test_fit_labels_cap_the_context_and_size_the_cache_as_the_settings_say(
        page: ModelManagerPage) -> None:
    shape = ModelShape(block_count=32, head_count_kv=32, head_dim=128)
    page.n_ctx = 1_000_000
    fit = page.fit_for(4 * GB, shape, 4096)
    assert fit is not None and fit.n_ctx == 4096
    # The app's default settings: 8-bit keys, f16 values (flash attention off).
    assert fit.kv_cache_bytes == kv_cache_bytes(shape, 4096, CacheTypes("q8_0", "f16"))


def test_search_download_with_progress_and_completion(qtbot: QtBot, page: ModelManagerPage,
                                                      hub_server: HubServer) -> None:
    hub_server.rate = 60e6  # a couple of seconds, so progress is seen
    page.hub_search.search_box.setText("smol")
    qtbot.mouseClick(page.hub_search.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.hub_search.repo_list.topLevelItemCount() == 1, timeout=30_000)
    assert page.hub_search.repo_list.topLevelItem(0).text(0) == SMOL_REPO
    page.hub_search.repo_list.setCurrentItem(page.hub_search.repo_list.topLevelItem(0))
    qtbot.waitUntil(lambda: page.hub_search.file_list.topLevelItemCount() == 2, timeout=30_000)
    _, quant, size, fit = _file_row_text(page, SMOL_FILE)
    assert (quant, size, fit) == ("Q4_1", "98.4 MB", "fits")
    assert _file_row_text(page, "big-model.Q8_0.gguf")[3] == "split: not downloadable"

    assert page.select(page.hub_search.file_list, lambda item: item.text(0) == SMOL_FILE)
    progress_texts: list[str] = []
    page.downloads.download_progressed.connect(
        lambda key, *_: progress_texts.append(page.download_list.row(key).item.text(2)))  # type: ignore[union-attr]
    with qtbot.waitSignal(page.models_changed, timeout=60_000):
        qtbot.mouseClick(page.hub_search.file_download, Qt.MouseButton.LeftButton)
    row = page.download_list.row(f"{SMOL_REPO}/{SMOL_FILE}")
    assert row is not None and row.bar.value() == 100
    assert row.item.text(2) == "Installed and verified"
    assert any("MB/s" in t and "left" in t for t in progress_texts)
    assert len(page.installed_ids()) == 2


def test_pause_and_resume_buttons(qtbot: QtBot, page: ModelManagerPage,
                                  hub_server: HubServer) -> None:
    hub_server.rate = 20e6
    key = page.download(DownloadRequest(SMOL_REPO, SMOL_FILE))
    assert key is not None
    row = page.download_list.row(key)
    assert row is not None
    qtbot.waitUntil(lambda: row.bar.value() >= 5, timeout=30_000)
    page.download_list.tree.setCurrentItem(row.item)
    with qtbot.waitSignal(page.downloads.download_paused, timeout=30_000):
        qtbot.mouseClick(page.download_list.pause_button, Qt.MouseButton.LeftButton)
    assert row.item.text(2).startswith("Paused at")
    hub_server.rate = None
    with qtbot.waitSignal(page.downloads.download_finished, timeout=60_000):
        qtbot.mouseClick(page.download_list.resume_button, Qt.MouseButton.LeftButton)
    assert hub_server.downloads_of(SMOL_FILE)[-1].range_start


def test_gated_download_asks_for_a_token_then_succeeds(qtbot: QtBot, page: ModelManagerPage,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def give_token(reason: str) -> str:
        asked.append(reason)
        return HF_TOKEN_VALUE

    monkeypatch.setattr(page, "ask_token", give_token)
    # Its repo is in the catalog, under the Llama 2 licence.
    monkeypatch.setattr(page, "ask_licence", lambda licence, name: True)
    with qtbot.waitSignal(page.downloads.download_finished, timeout=60_000):
        page.download(DownloadRequest(GATED_REPO, GATED_FILE))
    assert len(asked) == 1 and "gated repository" in asked[0]
    assert page.secrets.hf_token_source() == TokenSource.KEYRING
    assert page.status.text().endswith(" is installed."), page.status.text()


def test_licence_is_asked_once(qtbot: QtBot, page: ModelManagerPage,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN_VALUE)
    entry = page.catalog.get("llama-2-test")
    assert entry is not None
    monkeypatch.setattr(page, "ask_licence", lambda licence, name: False)
    assert page.download(DownloadRequest.for_catalog(entry)) is None
    assert "Licence not accepted" in page.status.text()

    shown: list[tuple[Licence, str]] = []
    monkeypatch.setattr(page, "ask_licence",
                        lambda licence, name: shown.append((licence, name)) or True)
    monkeypatch.setattr(page.downloads.downloader.hub, "_token", lambda: HF_TOKEN_VALUE)
    with qtbot.waitSignal(page.downloads.download_finished, timeout=60_000):
        page.download(DownloadRequest.for_catalog(entry))
    assert shown == [(entry.licence, entry.name)] and page.licences.is_accepted("llama2")
    assert not page.licences.needs_acceptance(entry.licence)


def test_a_searched_llama2_finetune_asks_for_the_licence_then_resumes(
        qtbot: QtBot, page: ModelManagerPage, hub_server: HubServer,
        bundled_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Not in the catalog: only the Hub's metadata names it a Llama 2 derivative.
    hub_server.add_repo("someone/Llama-2-7B-Tale-GGUF", {"tale.Q4_1.gguf": bundled_model_path},
                        tags=["gguf", "license:llama2"], card_data={"license": "llama2"})
    shown: list[tuple[Licence, str]] = []
    monkeypatch.setattr(page, "ask_licence",
                        lambda licence, name: shown.append((licence, name)) or False)
    request = DownloadRequest("someone/Llama-2-7B-Tale-GGUF", "tale.Q4_1.gguf")
    with qtbot.waitSignal(page.downloads.download_failed, timeout=60_000):
        key = page.download(request)
    assert key is not None
    assert shown == [(LLAMA2, "tale.Q4_1.gguf")]
    assert "kept paused" in page.status.text()
    assert not hub_server.downloads_of("tale.Q4_1.gguf"), "not a byte before acceptance"

    # Resumed by hand, refused again; this time the user accepts and it finishes.
    monkeypatch.setattr(page, "ask_licence",
                        lambda licence, name: shown.append((licence, name)) or True)
    with qtbot.waitSignal(page.downloads.download_finished, timeout=60_000):
        page.download_list.resume(key)
    assert len(shown) == 2 and page.licences.is_accepted("llama2")
    assert "tale.q4_1" in " ".join(page.installed_ids()).lower()


def test_importing_a_llama2_derivative_asks_for_the_licence_then_imports(
        qtbot: QtBot, page: ModelManagerPage, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    source = tiny_model(tmp_path / "my-llama-2-tune.gguf", metadata={"general.license": "llama2"})
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(source), ""))
    monkeypatch.setattr(page, "ask_link", lambda path: True)
    shown: list[tuple[Licence, str]] = []
    monkeypatch.setattr(page, "ask_licence",
                        lambda licence, name: shown.append((licence, name)) or True)
    with qtbot.waitSignal(page.models_changed, timeout=60_000):
        qtbot.mouseClick(page.import_button, Qt.MouseButton.LeftButton)
    assert [licence for licence, _name in shown] == [LLAMA2]
    assert page.licences.is_accepted("llama2")
    assert any("my-llama-2-tune" in i for i in page.installed_ids())


def test_import_and_remove(qtbot: QtBot, page: ModelManagerPage, tmp_path: Path,
                           bundled_model_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "mine.Q4_1.gguf"
    data = bytearray(bundled_model_path.read_bytes())
    data[-1] ^= 0xFF
    source.write_bytes(bytes(data))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(source), ""))
    monkeypatch.setattr(page, "ask_link", lambda path: False)
    with qtbot.waitSignal(page.models_changed, timeout=60_000):
        qtbot.mouseClick(page.import_button, Qt.MouseButton.LeftButton)
    assert "mine.q4_1" in page.installed_ids()

    monkeypatch.setattr(page, "confirm_remove", lambda entry: True)
    page.select(page.installed, lambda item: item.text(0) == "smollm2-135m-instruct-q4_1"
                or item.data(0, Qt.ItemDataRole.UserRole) == "smollm2-135m-instruct-q4_1")
    qtbot.mouseClick(page.remove_button, Qt.MouseButton.LeftButton)
    assert "cannot be removed" in page.status.text()
    page.select(page.installed, lambda item: item.data(0, Qt.ItemDataRole.UserRole) == "mine.q4_1")
    with qtbot.waitSignal(page.models_changed, timeout=5_000):
        qtbot.mouseClick(page.remove_button, Qt.MouseButton.LeftButton)
    assert page.installed_ids() == ["smollm2-135m-instruct-q4_1"]

