"""The Hugging Face token lives only in the keyring (or, with no keyring, in memory for
the session): after a gated download through the Models page, with every logger at
DEBUG writing to the app's log file, nothing in the data folder, settings, registry,
logs, partial downloads or the SQLite file holds it, in any common encoding."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from hub_fixtures import GATED_FILE, GATED_REPO, HF_TOKEN_VALUE, InMemoryKeyring, make_downloader
from hubserver import HubServer
from pytestqt.qtbot import QtBot
from secret_scan import encodings, files_holding

from llamadesk.core.catalog import ModelCatalog
from llamadesk.core.conversation import Role
from llamadesk.core.downloads import DownloadRequest
from llamadesk.core.fit import MemoryBudget
from llamadesk.core.hub import HubClient
from llamadesk.core.licences import ACCEPTANCES_FILE, LicenceAcceptances
from llamadesk.core.logs import setup_logging
from llamadesk.core.paths import AppPaths
from llamadesk.core.secrets import SecretStore, TokenSource
from llamadesk.core.settings import AppSettings, save_settings
from llamadesk.core.store import ConversationStore
from llamadesk.services.downloads import DownloadService
from llamadesk.services.hub_queries import HubQueryService
from llamadesk.ui.model_manager_page import ModelManagerPage

GB = 1_000_000_000


@pytest.fixture
def debug_log(paths: AppPaths) -> Iterator[Path]:
    """The app's own log file, with every logger (httpx, huggingface_hub…) at DEBUG."""
    setup_logging(paths.log_file, level=logging.DEBUG)
    yield paths.log_file
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_llamadesk", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.WARNING)


def _page(qtbot: QtBot, paths: AppPaths, catalog: ModelCatalog,
          secrets: SecretStore) -> tuple[ModelManagerPage, DownloadService, HubQueryService]:
    downloader = make_downloader(paths, secrets=secrets, catalog=catalog)
    downloads = DownloadService(downloader)
    queries = HubQueryService(HubClient(token=secrets.hf_token))
    page = ModelManagerPage(downloads, queries, downloader.registry, catalog,
                      LicenceAcceptances(paths.config_dir / ACCEPTANCES_FILE), secrets,
                      n_ctx=2048, budget=lambda: MemoryBudget(16 * GB, 8 * GB))
    qtbot.addWidget(page)
    return page, downloads, queries


def _gated_download_with_a_typed_token(qtbot: QtBot, page: ModelManagerPage,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page, "ask_token", lambda _reason: HF_TOKEN_VALUE)  # the user types it
    monkeypatch.setattr(page, "ask_licence", lambda _licence, _name: True)
    with qtbot.waitSignal(page.downloads.download_finished, timeout=60_000):
        page.download(DownloadRequest(GATED_REPO, GATED_FILE))


def _use_the_rest_of_the_app(paths: AppPaths) -> None:
    save_settings(paths.settings_file, AppSettings(default_system_prompt="Be brief."))
    store = ConversationStore(paths.database)
    chat = store.create_conversation("Tokens")
    store.add_message(chat.id, Role.USER, "Which token did I use?")
    store.close()


def _assert_no_leak(paths: AppPaths, home: Path, tmp_path: Path, log: Path) -> None:
    for must_exist in (paths.database, paths.settings_file, log,
                       paths.models_dir / "registry.json"):
        assert must_exist.is_file(), must_exist
    assert GATED_REPO in log.read_text(encoding="utf-8"), "the log saw the download"
    assert files_holding(home, HF_TOKEN_VALUE) == []
    assert files_holding(tmp_path, HF_TOKEN_VALUE) == []  # anywhere this test wrote


def test_the_scan_finds_a_token_that_was_written(tmp_path: Path) -> None:
    for name, form in encodings(HF_TOKEN_VALUE).items():
        (tmp_path / f"{name}.bin").write_bytes(b"prefix " + form + b" suffix")
    assert len(files_holding(tmp_path, HF_TOKEN_VALUE)) == 4


def test_a_gated_download_leaves_the_token_in_the_keyring_only(
        qtbot: QtBot, paths: AppPaths, home: Path, tmp_path: Path, hub_server: HubServer,
        gated_catalog: ModelCatalog, memory_keyring: InMemoryKeyring, debug_log: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = SecretStore(environ={})
    page, downloads, queries = _page(qtbot, paths, gated_catalog, secrets)
    try:
        _gated_download_with_a_typed_token(qtbot, page, monkeypatch)
    finally:
        downloads.shutdown()
        queries.shutdown()
    assert secrets.hf_token_source() == TokenSource.KEYRING
    assert HF_TOKEN_VALUE in memory_keyring.passwords.values()
    assert HF_TOKEN_VALUE not in repr(secrets)
    _use_the_rest_of_the_app(paths)
    _assert_no_leak(paths, home, tmp_path, debug_log)


def test_without_a_keyring_the_token_is_kept_for_the_session_only(
        qtbot: QtBot, paths: AppPaths, home: Path, tmp_path: Path, hub_server: HubServer,
        gated_catalog: ModelCatalog, debug_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    secrets = SecretStore(environ={})
    assert not secrets.keyring_usable()
    page, downloads, queries = _page(qtbot, paths, gated_catalog, secrets)
    said: list[str] = []
    show = page._say
    monkeypatch.setattr(page, "_say", lambda text: (said.append(text), show(text)))
    try:
        _gated_download_with_a_typed_token(qtbot, page, monkeypatch)
        # The app kept working, and said where the token is.
        assert any("kept for this session only" in text for text in said), said
    finally:
        downloads.shutdown()
        queries.shutdown()
    assert secrets.hf_token_source() == TokenSource.SESSION
    assert page.installed_ids()[-1].startswith("llama-2")
    _use_the_rest_of_the_app(paths)
    _assert_no_leak(paths, home, tmp_path, debug_log)
    # A new session (a new SecretStore) has no token: nothing was persisted anywhere.
    assert SecretStore(environ={}).hf_token() is None
