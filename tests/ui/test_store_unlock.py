"""Start-up with an encrypted store, in the real dialogs' code paths: the passphrase
asked (a wrong one: a clear message and three more tries, nothing damaged), no keychain
(a passphrase or an explicit unencrypted store), a lost keychain entry (a new history,
the old file kept), and Preferences -> Privacy (set, change, turn off). The dialogs'
answers are given by replacing their ``getText``/``exec`` with scripted ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from hub_fixtures import InMemoryKeyring
from PySide6.QtWidgets import QInputDialog, QMessageBox
from pytestqt.qtbot import QtBot

from llamadesk.core.db import is_plaintext
from llamadesk.core.paths import AppPaths, app_paths
from llamadesk.core.secrets import SERVICE
from llamadesk.core.store_keys import STORE_KEY_USER, Protection
from llamadesk.core.store_open import open_store, set_passphrase, store_status
from llamadesk.ui.privacy_page import PrivacyPage
from llamadesk.ui.store_unlock import KEEP_UNENCRYPTED, NEW_HISTORY, SET_PASSPHRASE, unlock_store


@pytest.fixture
def paths() -> AppPaths:
    return app_paths().ensure()


class Script:
    """Answers for the dialogs, in order; records what each one said."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.texts: list[str | None] = []
        self.buttons: list[str] = []
        self.said: list[str] = []

        def get_text(_parent: object, _title: str, label: str, *_a: object,
                     **_k: object) -> tuple[str, bool]:
            self.said.append(label)
            answer = self.texts.pop(0)
            return (answer or "", answer is not None)

        def exec_box(box: QMessageBox) -> int:
            self.said.append(box.text())
            wanted = self.buttons.pop(0)
            for button in box.buttons():
                if button.text() == wanted:
                    button.click()
                    return 0
            raise AssertionError(f"no button {wanted!r}")

        def note(kind: str) -> Callable[..., object]:
            def show(_parent: object, _title: str, text: str, *_a: object) -> object:
                self.said.append(f"{kind}: {text}")
                return QMessageBox.StandardButton.Ok
            return show

        monkeypatch.setattr(QInputDialog, "getText", get_text)
        monkeypatch.setattr(QMessageBox, "exec", exec_box)
        for kind in ("critical", "information", "warning"):
            monkeypatch.setattr(QMessageBox, kind, note(kind))


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch, qtbot: QtBot) -> Iterator[Script]:
    yield Script(monkeypatch)


def _protect(paths: AppPaths, passphrase: str) -> bytes:
    store = open_store(paths)
    store.create_conversation("kept")
    store.close()
    set_passphrase(paths, passphrase)
    return paths.database.read_bytes()


def test_a_wrong_passphrase_gets_a_clear_message_and_more_tries(
        paths: AppPaths, script: Script) -> None:
    _protect(paths, "right one")
    script.texts = ["wrong", "wrong again", "right one"]
    store = unlock_store(paths)
    assert store is not None and store.list_conversations()[0].title == "kept"
    store.close()
    assert "wrong (3 more tries)" in script.said[1]
    assert "wrong (2 more tries)" in script.said[2]


def test_four_wrong_passphrases_stop_the_start_and_damage_nothing(
        paths: AppPaths, script: Script) -> None:
    before = _protect(paths, "right one")
    script.texts = ["a", "b", "c", "d"]
    script.buttons = ["Close"]
    assert unlock_store(paths) is None
    assert "(1 more try)" in script.said[3]
    assert script.said[-1].startswith("The passphrase is still wrong")
    assert paths.database.read_bytes() == before
    again = open_store(paths, "right one")
    assert again.list_conversations()[0].title == "kept"
    again.close()


def test_without_a_keychain_the_user_may_keep_chats_unencrypted(
        paths: AppPaths, script: Script) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    script.buttons = [KEEP_UNENCRYPTED]
    store = unlock_store(paths)
    assert store is not None
    store.close()
    assert "No system keychain" in script.said[0]
    assert is_plaintext(paths.database)
    assert store_status(paths).protection is Protection.NONE


def test_without_a_keychain_the_user_may_choose_a_passphrase(
        paths: AppPaths, script: Script) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    script.buttons = [SET_PASSPHRASE]
    script.texts = ["first", "other", "mine", "mine"]  # a mismatch is asked again
    store = unlock_store(paths)
    assert store is not None
    store.close()
    assert "did not match" in script.said[3]
    assert store_status(paths).protection is Protection.PASSPHRASE
    assert not is_plaintext(paths.database)
    open_store(paths, "mine").close()


def test_a_lost_keychain_entry_offers_a_new_history_and_keeps_the_old_file(
        paths: AppPaths, script: Script, memory_keyring: InMemoryKeyring) -> None:
    open_store(paths).close()
    before = paths.database.read_bytes()
    del memory_keyring.passwords[(SERVICE, STORE_KEY_USER)]
    script.buttons = ["Close"]
    assert unlock_store(paths) is None
    assert "cannot be read" in script.said[0]
    assert paths.database.read_bytes() == before
    script.buttons = [NEW_HISTORY]
    store = unlock_store(paths)
    assert store is not None and store.list_conversations() == []
    store.close()
    kept = [p for p in paths.data_dir.iterdir() if ".locked-" in p.name]
    assert [p.read_bytes() for p in kept] == [before]
    assert str(kept[0]) in script.said[-1]


def test_privacy_page_sets_changes_and_turns_off_the_passphrase(
        paths: AppPaths, script: Script, qtbot: QtBot, memory_keyring: InMemoryKeyring) -> None:
    open_store(paths).close()
    key = memory_keyring.passwords[(SERVICE, STORE_KEY_USER)]
    page = PrivacyPage(paths)
    qtbot.addWidget(page)
    assert "system keychain" in page.state.text()
    script.texts = ["one", "one"]
    page.set_button.click()
    assert "passphrase" in page.state.text() and not page.change_button.isHidden()
    assert (SERVICE, STORE_KEY_USER) not in memory_keyring.passwords
    script.texts = ["not it"]  # a wrong current passphrase changes nothing
    page.off_button.click()
    assert "wrong" in script.said[-1] and store_status(paths).protection is Protection.PASSPHRASE
    script.texts = ["one", "two", "two"]
    page.change_button.click()
    open_store(paths, "two").close()
    script.texts = ["two"]
    page.off_button.click()
    assert "system keychain" in page.state.text()
    assert memory_keyring.passwords[(SERVICE, STORE_KEY_USER)] == key  # the same key
    open_store(paths).close()
    assert Path(paths.data_dir / "llamadesk.protection.json").exists() is False


def test_a_forgotten_passphrase_may_start_a_new_history_keeping_the_old_file(
        paths: AppPaths, script: Script) -> None:
    before = _protect(paths, "right one")
    script.texts = ["a", "b", "c", "d"]
    script.buttons = [NEW_HISTORY]
    store = unlock_store(paths)  # the new history's key goes to the keychain
    assert store is not None and store.list_conversations() == []
    store.close()
    kept = sorted(p.name for p in paths.data_dir.iterdir() if ".locked-" in p.name)
    assert len(kept) == 2 and kept[1].endswith(".protection.json")
    assert (paths.data_dir / kept[0]).read_bytes() == before
    assert store_status(paths).protection is Protection.KEYCHAIN
