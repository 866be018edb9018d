"""The app runs here as a real child process, without a keychain: every test's chat
database is protected by the passphrase of ``store_passphrase`` (tests/conftest.py).

Its protection file is written before the test, at a low scrypt cost
(``crypt_fixtures.protect_with_passphrase``): the app reads the cost from the file, so
the dozens of child processes a module starts each unlock the store in a millisecond
instead of half a second. A module that needs the app to create the key itself
overrides ``_encrypted_with_a_passphrase`` (tests/e2e/test_cli_store.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from crypt_fixtures import protect_with_passphrase


@pytest.fixture(autouse=True)
def _encrypted_with_a_passphrase(store_passphrase: str, home: Path) -> str:
    protect_with_passphrase(home, store_passphrase)
    return store_passphrase
