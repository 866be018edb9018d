"""The app runs here as a real child process, without a keychain: every test's chat
database is protected by the passphrase of ``store_passphrase`` (tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _encrypted_with_a_passphrase(store_passphrase: str) -> str:
    return store_passphrase
