"""Open the encrypted store at start-up, asking the user where a decision is needed:
the passphrase (a wrong one gets a clear message and three more tries), what to do
without a keychain (a passphrase, or an explicit unencrypted store), and what to do
when the keychain lost the key (start a new history, keeping the old file)."""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QInputDialog, QLineEdit, QMessageBox, QWidget

from llamadesk import APP_NAME
from llamadesk.core.paths import AppPaths
from llamadesk.core.store import ConversationStore, StoreError
from llamadesk.core.store_keys import KeyStoreError
from llamadesk.core.store_open import (
    KeyMissingError,
    NoKeychainError,
    PassphraseRequiredError,
    WrongPassphraseError,
    key_store,
    open_store,
    start_new_history,
)

log = logging.getLogger(__name__)

#: After a wrong passphrase, this many more tries.
MORE_TRIES = 3
SET_PASSPHRASE = "Protect with a passphrase…"
KEEP_UNENCRYPTED = "Keep chats unencrypted"
NEW_HISTORY = "Start a new, empty history"
FORGOTTEN = ("Without the passphrase the conversations cannot be read. Nothing was "
             "changed: start the app again to retry, or start a new, empty history (the "
             "old file is kept for a later restore with its key).")


def ask_new_passphrase(parent: QWidget | None, title: str) -> str | None:
    """A new passphrase typed twice the same (None: cancelled)."""
    note = ""
    while True:
        first, ok = QInputDialog.getText(
            parent, title, note + "New passphrase (if it is forgotten, the chats are lost):",
            QLineEdit.EchoMode.Password)
        if not ok:
            return None
        if not first:
            note = "The passphrase cannot be empty.\n"
            continue
        again, ok = QInputDialog.getText(parent, title, "The same passphrase again:",
                                         QLineEdit.EchoMode.Password)
        if not ok:
            return None
        if again == first:
            return first
        note = "The two did not match; try again.\n"


def ask_passphrase(parent: QWidget | None, message: str) -> str | None:
    """The passphrase of the store (None: cancelled)."""
    text, ok = QInputDialog.getText(parent, f"{APP_NAME}: passphrase", message,
                                    QLineEdit.EchoMode.Password)
    return text if ok else None


def unlock_store(paths: AppPaths, parent: QWidget | None = None) -> ConversationStore | None:
    """The store, opened after whatever the user must decide; None when it stays shut
    (the user has been told why)."""
    passphrase: str | None = None
    wrong = 0
    while True:
        try:
            return open_store(paths, passphrase)
        except PassphraseRequiredError:
            passphrase = ask_passphrase(parent, "A passphrase protects your chats. "
                                                "Passphrase:")
        except WrongPassphraseError:
            wrong += 1
            if wrong > MORE_TRIES:
                # A forgotten passphrase is a lost key: the same way out, the file kept.
                if not _offer_new_history(parent, paths, "The passphrase is still wrong. "
                                          + FORGOTTEN):
                    return None
                passphrase, wrong = None, 0
                continue
            left = MORE_TRIES - wrong + 1
            passphrase = ask_passphrase(
                parent, f"The passphrase is wrong ({left} more "
                        f"{'try' if left == 1 else 'tries'}). Passphrase:")
        except NoKeychainError as exc:
            if paths.database.exists():  # encrypted, its key in a keychain not here now
                QMessageBox.critical(parent, APP_NAME, str(exc))
                return None
            choice = _ask_without_keychain(parent, str(exc))
            if choice is None:
                return None
            if choice == "":
                key_store(paths).choose_unencrypted()
            passphrase = choice or None
            continue
        except KeyMissingError as exc:
            if not _offer_new_history(parent, paths, str(exc)):
                return None
            continue
        except (StoreError, KeyStoreError) as exc:
            log.error("%s", exc)
            QMessageBox.critical(parent, APP_NAME, str(exc))
            return None
        if passphrase is None:  # a passphrase dialog was cancelled
            QMessageBox.information(parent, APP_NAME, FORGOTTEN)
            return None


def _ask_without_keychain(parent: QWidget | None, message: str) -> str | None:
    """A new passphrase, "" for an unencrypted store, or None (quit)."""
    box = QMessageBox(QMessageBox.Icon.Question, APP_NAME, message, parent=parent)
    box.setObjectName("noKeychain")
    protect = box.addButton(SET_PASSPHRASE, QMessageBox.ButtonRole.AcceptRole)
    plain = box.addButton(KEEP_UNENCRYPTED, QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(protect)
    box.exec()
    if box.clickedButton() is plain:
        return ""
    if box.clickedButton() is protect:
        return ask_new_passphrase(parent, f"{APP_NAME}: protect your chats")
    return None


def _offer_new_history(parent: QWidget | None, paths: AppPaths, message: str) -> bool:
    box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME, message, parent=parent)
    box.setObjectName("keyMissing")
    fresh = box.addButton(NEW_HISTORY, QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Close)
    box.setDefaultButton(QMessageBox.StandardButton.Close)
    box.exec()
    if box.clickedButton() is not fresh:
        return False
    try:
        aside = start_new_history(paths)
    except OSError as exc:
        QMessageBox.critical(parent, APP_NAME, f"Cannot move the old database aside: "
                             f"{exc.strerror or exc}. Nothing was changed.")
        return False
    QMessageBox.information(parent, APP_NAME, f"The old conversations are kept in {aside}. "
                            "With their key (`llamadesk store import-key`) they can be "
                            "restored later.")
    return True
