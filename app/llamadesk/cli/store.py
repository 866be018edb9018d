"""``llamadesk store ...``: whether the chat database is encrypted and where its key
lives, and a way to back the key up and bring it back. Also the CLI's way to open the
store: the key from the keychain, else a passphrase asked on a terminal, else the
passphrase in the file named by ``LLAMADESK_PASSPHRASE_FILE``.

    llamadesk store status           encrypted? key in keychain or passphrase? path
    llamadesk store export-key       show the key once (a backup), with a warning
    llamadesk store import-key       put a saved key back into the keychain
    llamadesk store unencrypted      keep the chats unencrypted (no keychain here)
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from typing import TextIO

from llamadesk.cli.errors import fail
from llamadesk.core.exit_codes import EXIT_OK
from llamadesk.core.paths import AppPaths, app_paths
from llamadesk.core.store import ConversationStore, StoreError
from llamadesk.core.store_keys import PASSPHRASE_FILE_ENV, KeyStoreError, Protection, parse_key
from llamadesk.core.store_open import (
    NoKeychainError,
    PassphraseRequiredError,
    WrongPassphraseError,
    check_key,
    key_store,
    open_store,
    store_key,
    store_status,
)

log = logging.getLogger("llamadesk.cli")

#: A wrong passphrase gets this many more tries on a terminal.
MORE_TRIES = 3
EXPORT_WARNING = (
    "This key opens every conversation in {path}. Keep it somewhere safe and private "
    "(a password manager); anyone with it and a copy of the file reads your chats. It is "
    "shown once.")


def add_store_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``store`` and its subcommands."""
    store = sub.add_parser("store", help="the chat database's encryption and its key")
    cmds = store.add_subparsers(dest="store_command", required=True)
    cmds.add_parser("status", help="is the chat database encrypted, and where is its key")
    cmds.add_parser("export-key", help="show the database key once, to keep as a backup")
    cmds.add_parser("import-key", help="put a saved database key back into the keychain "
                                       "(read from the terminal or standard input)")
    cmds.add_parser("unencrypted", help="keep the chats unencrypted, where no keychain "
                                        "keeps a key and no passphrase is wanted")


def _ask_passphrase(prompt: str) -> str | None:
    if not sys.stdin.isatty():
        return None
    return getpass.getpass(prompt)


def _with_passphrase(paths: AppPaths, action_name: str) -> str | None:
    """A passphrase for ``paths`` when one protects it (asked on a terminal), else None."""
    try:
        protection = key_store(paths).protection()
    except KeyStoreError as exc:
        raise StoreError(str(exc)) from exc
    if protection is not Protection.PASSPHRASE:
        return None
    return None if _env_passphrase_set() else _ask_passphrase(
        f"Passphrase of the chat database ({action_name}): ")


def _env_passphrase_set() -> bool:
    return bool(os.environ.get(PASSPHRASE_FILE_ENV))


def open_cli_store(paths: AppPaths | None = None) -> ConversationStore:
    """The store for a CLI command, or ``StoreError`` saying what to do."""
    paths = paths or app_paths().ensure()
    passphrase: str | None = None
    tries = 0
    while True:
        try:
            return open_store(paths, passphrase)
        except (PassphraseRequiredError, WrongPassphraseError) as exc:
            wrong = isinstance(exc, WrongPassphraseError)
            if wrong and (tries >= MORE_TRIES or not sys.stdin.isatty()):
                raise
            tries += wrong
            asked = _ask_passphrase("The passphrase is wrong. Passphrase: " if wrong
                                    else "Passphrase of the chat database: ")
            if asked is None:
                raise StoreError("A passphrase protects the chat database: run this on a "
                                 f"terminal, or name a file that holds it in "
                                 f"{PASSPHRASE_FILE_ENV}.") from exc
            passphrase = asked
        except NoKeychainError as exc:
            raise StoreError(f"{exc} For the command line: name a file holding a "
                             f"passphrase in {PASSPHRASE_FILE_ENV}, or run `llamadesk "
                             "store unencrypted`.") from exc


def run_store(args: argparse.Namespace, out: TextIO | None = None,
              err: TextIO | None = None) -> int:
    """Run a ``store`` subcommand; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    paths = app_paths().ensure()
    try:
        if args.store_command == "status":
            return _status(paths, out)
        if args.store_command == "export-key":
            return _export_key(paths, out, err)
        if args.store_command == "import-key":
            return _import_key(paths, out, err)
        key_store(paths).choose_unencrypted()
        print("New chats will be kept unencrypted. (A database that is already encrypted "
              "stays so.)", file=out)
        return EXIT_OK
    except (StoreError, KeyStoreError) as exc:
        return fail(exc, err, log=log, during=f"store {args.store_command}")


def _status(paths: AppPaths, out: TextIO) -> int:
    status = store_status(paths)
    if not status.exists:
        state = "no database yet"
    elif status.encrypted:
        state = "encrypted (SQLCipher, AES-256)"
    else:
        state = "NOT encrypted"
    where = {Protection.KEYCHAIN: "the system keychain",
             Protection.PASSPHRASE: "wrapped by a passphrase (asked at start)",
             Protection.NONE: "none (the user chose an unencrypted database)"}
    print(f"database: {status.path}", file=out)
    print(f"state:    {state}", file=out)
    print(f"key:      {where[status.protection]}", file=out)
    return EXIT_OK


def _export_key(paths: AppPaths, out: TextIO, err: TextIO) -> int:
    key = store_key(paths, _with_passphrase(paths, "to export its key"))
    if key is None:
        raise StoreError("The chat database is kept unencrypted: it has no key.")
    print(EXPORT_WARNING.format(path=paths.database), file=err)
    print(key.hex(), file=out)
    log.info("the store key was exported")  # never the key itself
    return EXIT_OK


def _import_key(paths: AppPaths, out: TextIO, err: TextIO) -> int:
    if sys.stdin.isatty():
        text = getpass.getpass("Saved key (64 hexadecimal digits): ")
    else:
        text = sys.stdin.readline()
    key = parse_key(text)
    db = paths.database
    if db.exists() and not check_key(db, key):
        raise StoreError(f"That key does not open {db}; nothing was changed.")
    key_store(paths).use_keychain(key)
    print("The key is in the system keychain; the chats open again.", file=out)
    return EXIT_OK
