"""``llamadesk store …`` and the CLI's key as a real process: status, the key exported
once and imported back after a lost key, ``chats show`` on the encrypted store with the
passphrase from ``LLAMADESK_PASSPHRASE_FILE``, and the refusals without one."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from crypt_fixtures import open_app_store
from hub_fixtures import InMemoryKeyring

from llamadesk.core.conversation import Role
from llamadesk.core.db import is_plaintext
from llamadesk.core.paths import app_paths
from llamadesk.core.secrets import SERVICE
from llamadesk.core.store_keys import PASSPHRASE_FILE_ENV, PROTECTION_FILE, STORE_KEY_USER

TIMEOUT = 120


def llamadesk(*args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", **env}
    for name in [k for k, v in full.items() if v == ""]:
        del full[name]
    return subprocess.run([sys.executable, "-m", "llamadesk", *args], capture_output=True,
                          text=True, timeout=TIMEOUT, env=full, input=stdin, check=False)


@pytest.fixture(autouse=True)
def _encrypted_with_a_passphrase(store_passphrase: str) -> str:
    """Here the app creates the store's key itself (or refuses to): no protection file
    is written ahead (tests/e2e/conftest.py)."""
    return store_passphrase


def _chat(text: str) -> int:
    store = open_app_store()
    chat = store.create_conversation("Secret plans")
    store.add_message(chat.id, Role.USER, text)
    store.close()
    return chat.id


def test_status_show_and_the_key_exported_and_imported_back(home: Path) -> None:
    chat_id = _chat("meet at the blue door")
    status = llamadesk("store", "status")
    assert status.returncode == 0, status.stderr
    assert "encrypted (SQLCipher" in status.stdout
    assert "wrapped by a passphrase" in status.stdout
    assert str(app_paths().database) in status.stdout

    shown = llamadesk("chats", "show", str(chat_id))
    assert shown.returncode == 0, shown.stderr
    assert "meet at the blue door" in shown.stdout

    exported = llamadesk("store", "export-key")
    assert exported.returncode == 0, exported.stderr
    key_hex = exported.stdout.strip()
    assert len(bytes.fromhex(key_hex)) == 32
    assert "shown once" in exported.stderr and key_hex not in exported.stderr
    log = (app_paths().log_file).read_text(encoding="utf-8")
    assert key_hex not in log and "blue door" not in log

    # The passphrase is forgotten: without it nothing opens; the saved key brings the
    # chats back (into a keychain; the child has a file-less one only in this test's
    # process, so the import is checked for its refusal without a keychain here).
    forgot = llamadesk("chats", "show", str(chat_id), **{PASSPHRASE_FILE_ENV: ""})
    assert forgot.returncode == 1 and "passphrase protects" in forgot.stderr
    wrong = llamadesk("store", "import-key", stdin="00" * 32 + "\n")
    assert wrong.returncode == 1 and "does not open" in wrong.stderr
    refused = llamadesk("store", "import-key", stdin=key_hex + "\n")
    assert refused.returncode == 1 and "keychain" in refused.stderr
    assert (app_paths().data_dir / PROTECTION_FILE).exists()  # nothing changed


def test_without_keychain_or_passphrase_the_cli_refuses_and_writes_nothing(
        home: Path) -> None:
    result = llamadesk("chats", "list", **{PASSPHRASE_FILE_ENV: ""})
    assert result.returncode == 1
    assert "No system keychain" in result.stderr and PASSPHRASE_FILE_ENV in result.stderr
    assert not app_paths().database.exists()
    chosen = llamadesk("store", "unencrypted", **{PASSPHRASE_FILE_ENV: ""})
    assert chosen.returncode == 0, chosen.stderr
    listed = llamadesk("chats", "list", **{PASSPHRASE_FILE_ENV: ""})
    assert listed.returncode == 0, listed.stderr
    assert is_plaintext(app_paths().database)
    status = llamadesk("store", "status", **{PASSPHRASE_FILE_ENV: ""})
    assert "NOT encrypted" in status.stdout


def test_import_key_brings_back_chats_whose_keychain_entry_was_lost(
        home: Path, monkeypatch: pytest.MonkeyPatch, memory_keyring: InMemoryKeyring,
        capfd: pytest.CaptureFixture[str]) -> None:
    from llamadesk.cli.main import main

    monkeypatch.delenv(PASSPHRASE_FILE_ENV)  # the keychain (in memory) keeps the key
    _chat("meet at the red door")
    key_hex = memory_keyring.passwords.pop((SERVICE, STORE_KEY_USER))  # a reinstalled OS
    assert main(["chats", "list"]) == 1
    assert "no longer in the system keychain" in capfd.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO(key_hex + "\n"))
    assert main(["store", "import-key"]) == 0
    assert main(["chats", "list"]) == 0
    assert "Secret plans" in capfd.readouterr().out
