"""Open the conversation store the way the app does: find its key, encrypt a plaintext
database from an earlier version, and stop with a typed error where the user must
choose (the window and the CLI turn each into a question).

Decisions, in order:
1. Finish or undo an encryption a crash interrupted (``store_migrate.recover``).
2. The protection file says "none": the user chose an unencrypted store; open it so.
3. It says "passphrase": the passphrase (given, or from ``LLAMADESK_PASSPHRASE_FILE``)
   unwraps the key; none -> ``PassphraseRequiredError``, wrong -> ``WrongPassphraseError``.
4. Otherwise the key is in the keychain. An encrypted database without its keychain
   entry -> ``KeyMissingError`` (the file is left untouched). A new or plaintext
   database gets a new key: wrapped by a passphrase if one is given (or named by
   ``LLAMADESK_PASSPHRASE_FILE``), else in the keychain, else ``NoKeychainError`` —
   never a silent plaintext fallback.
5. A plaintext database is encrypted in place before it is opened.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from llamadesk.core.db import WrongKeyError, connect, is_plaintext, new_key, sqlite
from llamadesk.core.paths import AppPaths
from llamadesk.core.secrets import SecretStore
from llamadesk.core.store import ConversationStore, StoreError
from llamadesk.core.store_keys import (
    BadPassphraseError,
    KeyStore,
    KeyStoreError,
    Protection,
    passphrase_from_env,
)
from llamadesk.core.store_kv import KV_FILE, erase_kept_beside
from llamadesk.core.store_migrate import MigrationError, encrypt_in_place, recover

log = logging.getLogger(__name__)


class StoreLockedError(StoreError):
    """The store cannot be opened until the user decides something."""


class NoKeychainError(StoreLockedError):
    """No keychain keeps secrets here: the user picks a passphrase or an unencrypted
    store."""


class KeyMissingError(StoreLockedError):
    """The database is encrypted but its key is not in the keychain (a reinstalled
    system); the file is untouched."""


class PassphraseRequiredError(StoreLockedError):
    """A passphrase protects the key; ask for it."""


class WrongPassphraseError(StoreLockedError):
    """The passphrase given does not unlock the key; nothing was changed."""


@dataclass(frozen=True)
class StoreStatus:
    """What ``llamadesk store status`` reports."""

    path: Path
    exists: bool
    encrypted: bool
    protection: Protection


def key_store(paths: AppPaths, secrets: SecretStore | None = None) -> KeyStore:
    """The key store of this data folder."""
    return KeyStore(paths.data_dir, secrets)


def store_key(paths: AppPaths, passphrase: str | None = None,
              secrets: SecretStore | None = None) -> bytes | None:
    """The key of the store at ``paths`` (None: the user chose it unencrypted), creating
    one for a new or plaintext database. Raises the errors above."""
    keys = key_store(paths, secrets)
    db = paths.database
    try:
        protection = keys.protection()
        if protection is Protection.NONE:
            return None
        if passphrase is None:
            passphrase = passphrase_from_env()
        if protection is Protection.PASSPHRASE:
            if passphrase is None:
                raise PassphraseRequiredError("A passphrase protects the chat database.")
            return keys.unlock(passphrase)
        key = keys.keychain_key()
        if key is not None:
            return key
        if _has_encrypted(db):
            if not keys.keychain_usable():
                raise NoKeychainError(_NO_KEYCHAIN_LOCKED)
            raise KeyMissingError(_key_missing(db))
        key = new_key()
        if passphrase is not None:
            keys.set_passphrase(key, passphrase)
        elif keys.keychain_usable():
            keys.save_keychain_key(key)
        else:
            raise NoKeychainError(_NO_KEYCHAIN)
        return key
    except BadPassphraseError as exc:
        raise WrongPassphraseError("The passphrase is wrong; nothing was changed.") from exc
    except KeyStoreError as exc:
        raise StoreError(str(exc)) from exc


def open_store(paths: AppPaths, passphrase: str | None = None,
               secrets: SecretStore | None = None) -> ConversationStore:
    """The conversation store at ``paths``, encrypted unless the user chose otherwise."""
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    db = paths.database
    try:
        recover(db)
    except OSError as exc:
        raise StoreError(f"Cannot tidy up after an interrupted encryption of {db}: "
                         f"{exc.strerror or exc}.") from exc
    return open_with_key(paths, store_key(paths, passphrase, secrets))


def open_with_key(paths: AppPaths, key: bytes | None) -> ConversationStore:
    """The store at ``paths`` opened with ``key``, a plaintext database encrypted first
    (``open_store`` after the key is found)."""
    db = paths.database
    if key is not None and is_plaintext(db):
        ConversationStore(db).close()  # bring an older schema up to date first
        try:
            encrypt_in_place(db, key)
        except (MigrationError, OSError) as exc:
            raise StoreError(str(exc)) from exc
    if key is not None and is_plaintext(db.parent / KV_FILE):
        # A KV state written in plaintext beside a store encrypted since (here, or by an
        # encryption that ``recover`` finished).
        _erase_kept_state(db)
    return ConversationStore(db, key)


def _erase_kept_state(db: Path) -> None:
    """Erase the KV state kept beside ``db``, best effort: the state only spares the next
    launch a re-read, so a file that cannot be erased now (read-only, held open by
    another program) must not stop the store's own open or move."""
    try:
        erase_kept_beside(db)
    except OSError as exc:
        log.warning("could not erase the kept KV state beside %s: %s", db.name, exc)


def store_status(paths: AppPaths, secrets: SecretStore | None = None) -> StoreStatus:
    """Whether the store is encrypted and where its key lives (opens nothing)."""
    db = paths.database
    try:
        protection = key_store(paths, secrets).protection()
    except KeyStoreError as exc:
        raise StoreError(str(exc)) from exc
    return StoreStatus(db, db.exists(), _has_encrypted(db), protection)


def start_new_history(paths: AppPaths) -> Path:
    """Move the database that cannot be opened (and its protection file) aside, kept
    for a later restore; the next open starts an empty history. Returns the new name."""
    db = paths.database
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = db.with_name(f"{db.stem}.locked-{stamp}{db.suffix}")
    for suffix in ("-wal", "-shm"):
        part = db.with_name(db.name + suffix)
        if part.exists():
            os.replace(part, aside.with_name(aside.name + suffix))
    if db.exists():
        os.replace(db, aside)
    protection = key_store(paths).protection_file
    if protection.exists():
        os.replace(protection, aside.with_name(aside.name + ".protection.json"))
    _erase_kept_state(db)  # the last chat's KV state, under the key set aside
    log.info("the unreadable chat database was kept as %s; a new history starts", aside.name)
    return aside


def check_key(db: Path, key: bytes) -> bool:
    """Whether ``key`` opens the encrypted database ``db``."""
    try:
        connect(db, key).close()
    except (WrongKeyError, sqlite.Error):
        return False
    return True


def _has_encrypted(db: Path) -> bool:
    try:
        return db.stat().st_size > 0 and not is_plaintext(db)
    except FileNotFoundError:
        return False


_NO_KEYCHAIN = (
    "No system keychain is available to keep the key of the chat database. Choose a "
    "passphrase to protect it, or choose to keep the chats unencrypted.")
_NO_KEYCHAIN_LOCKED = (
    "The chat database is encrypted and its key lives in the system keychain, but no "
    "system keychain is available now. Start the app where the keychain works, or import "
    "a saved key with `llamadesk store import-key`.")


def _key_missing(db: Path) -> str:
    return (f"The chat database at {db} is encrypted, and its key is no longer in the "
            "system keychain (a reinstalled system?). The conversations cannot be read "
            "without it. The file is left untouched: import a saved key with `llamadesk "
            "store import-key`, or start a new, empty history and keep the old file for "
            "a later restore.")


def set_passphrase(paths: AppPaths, new: str, old: str | None = None) -> None:
    """Protect the store key with ``new`` (Preferences -> Privacy): from the keychain,
    or a change of passphrase (``old`` needed). Only the key is rewrapped; the database
    is not rewritten. From an unencrypted store, a new key is made and the database is
    encrypted at the next start."""
    keys = key_store(paths)
    try:
        protection = keys.protection()
        if protection is Protection.PASSPHRASE:
            if old is None:
                raise PassphraseRequiredError("Enter the current passphrase first.")
            key = keys.unlock(old)
        elif protection is Protection.KEYCHAIN:
            found = keys.keychain_key()
            if found is None:
                raise KeyMissingError(_key_missing(paths.database))
            key = found
        else:
            key = new_key()
        keys.set_passphrase(key, new)
    except BadPassphraseError as exc:
        raise WrongPassphraseError("The current passphrase is wrong; nothing was "
                                   "changed.") from exc
    except KeyStoreError as exc:
        raise StoreError(str(exc)) from exc


def turn_off_passphrase(paths: AppPaths, old: str) -> None:
    """Keep the store key in the keychain again instead of under a passphrase."""
    keys = key_store(paths)
    try:
        keys.use_keychain(keys.unlock(old))
    except BadPassphraseError as exc:
        raise WrongPassphraseError("The passphrase is wrong; nothing was changed.") from exc
    except KeyStoreError as exc:
        raise StoreError(f"{exc} The passphrase stays in force.") from exc
