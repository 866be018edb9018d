"""Shared fixtures. Every test runs with its own LLAMADESK_HOME, so nothing touches the
user's real data, and Qt runs offscreen."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from llamadesk.core.store import ConversationStore

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# One llama.cpp thread wherever the app picks the count itself (the window, the CLI and
# their child processes): the suite runs on two shared cores beside its own servers and
# children, where a second spinning thread waits for a core far more than it computes.
os.environ.setdefault("LLAMADESK_THREADS", "1")

# The model manager's fixtures (loopback Hub, in-memory keyring), imported after the
# environment above is set: tests/support/hub_fixtures.py.
from hub_fixtures import gated_catalog, hub_server, memory_keyring, paths  # noqa: F401

# Remote OpenAI-compatible servers on loopback ports: tests/support/remote_fixtures.py.
from remote_fixtures import fault_server, llama_server, refusing_port  # noqa: F401

# The two longest runs start in the background when collection ends and their tests go
# last: tests/support/background_runs.py.
pytest_plugins = ["background_runs"]

ROOT = Path(__file__).resolve().parents[1]
#: The passphrase of every test's chat database (see ``home``).
TEST_PASSPHRASE = "test store passphrase"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses the real bundled model ``model``, so that
    ``pytest -m "not model"`` is a quick loop without llama.cpp."""
    for item in items:
        if "bundled_model_path" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.model)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh LLAMADESK_HOME for each test."""
    folder = tmp_path / "home"
    monkeypatch.setenv("LLAMADESK_HOME", str(folder))
    yield folder


@pytest.fixture
def store_passphrase(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Protect the test's chat database with a passphrase read from a file
    (``LLAMADESK_PASSPHRASE_FILE``), so that child processes, which have no keychain,
    open the same encrypted database as the test. Autouse in tests/e2e."""
    secret = tmp_path / "store-passphrase"
    secret.write_text(TEST_PASSPHRASE + "\n", encoding="utf-8")
    monkeypatch.setenv("LLAMADESK_PASSPHRASE_FILE", str(secret))
    return TEST_PASSPHRASE


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where ``store`` keeps its database; a test module overrides it to place it elsewhere."""
    return tmp_path / "chats.sqlite3"


@pytest.fixture
def store(db_path: Path) -> Iterator[ConversationStore]:
    """A real SQLite chat store at ``db_path``, closed after the test."""
    from llamadesk.core.store import ConversationStore

    s = ConversationStore(db_path)
    yield s
    s.close()


@pytest.fixture(scope="session")
def bundled_model_path() -> Path:
    """The real bundled model. Set-up fetches it; its absence is a failure, not a skip."""
    from llamadesk.core import bundled

    try:
        return bundled.locate().path
    except bundled.BundledModelError as exc:
        pytest.fail(f"{exc} (tests need the real bundled model)")
