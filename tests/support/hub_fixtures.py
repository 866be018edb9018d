"""Fixtures for the model manager's tests: the loopback Hub, an in-memory keyring, and
the core objects wired to them. Imported by the conftest files of the model manager's
test folders (``from hub_fixtures import *``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import keyring
import keyring.backend
import keyring.backends.fail
import pytest
from hubserver import HubServer

from llamadesk.core.catalog import CatalogFile, ModelCatalog
from llamadesk.core.downloads import Downloader
from llamadesk.core.hub import HubClient
from llamadesk.core.licences import LicenceAcceptances
from llamadesk.core.paths import AppPaths, app_paths
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.secrets import SecretStore

SMOL_REPO = "test-org/SmolLM2-135M-Instruct-GGUF"
SMOL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GATED_REPO = "meta-llama-test/Llama-2-7b-chat-GGUF"
GATED_FILE = "llama-2-7b-chat.Q4_1.gguf"
BROKEN_REPO = "test-org/Broken-GGUF"
BROKEN_FILE = "broken.Q4_0.gguf"
HOSTILE_REPO = "evil-org/Hostile-GGUF"
HOSTILE_FILE = "../../escape.Q4_0.gguf"
SPLIT_FILES = ("big-model.Q8_0-00001-of-00002.gguf", "big-model.Q8_0-00002-of-00002.gguf")
HF_TOKEN_VALUE = "hf_test_token_for_gated_repos"

__all__ = [
    "BROKEN_FILE", "BROKEN_REPO", "GATED_FILE", "GATED_REPO", "HF_TOKEN_VALUE",
    "HOSTILE_FILE", "HOSTILE_REPO", "SMOL_FILE", "SMOL_REPO", "SPLIT_FILES",
    "InMemoryKeyring", "gated_catalog", "hub_server", "make_downloader", "memory_keyring",
    "paths", "subprocess_env",
]


class InMemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that lives in a dict: tests never touch the user's real keychain."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("not set")


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[InMemoryKeyring]:
    """Every model-manager test runs with an in-memory keyring. Afterwards the fail
    backend is installed, so no later test in this process can reach a real keychain."""
    backend = InMemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(keyring.backends.fail.Keyring())


@pytest.fixture
def paths(home: Path) -> AppPaths:
    """The app's folders under this test's LLAMADESK_HOME."""
    return app_paths().ensure()


@pytest.fixture
def hub_server(monkeypatch: pytest.MonkeyPatch, bundled_model_path: Path,
               tmp_path: Path) -> Iterator[HubServer]:
    """A loopback Hub serving the real bundled GGUF under several repos, with
    ``HF_ENDPOINT`` pointing at it."""
    broken = tmp_path / "broken.gguf"
    with bundled_model_path.open("rb") as fh:
        broken.write_bytes(fh.read(3_000_000))  # whole header, tensors cut off
    server = HubServer(token=HF_TOKEN_VALUE)
    server.add_repo(SMOL_REPO, {
        SMOL_FILE: bundled_model_path,
        "README.md": b"# SmolLM2 GGUF\n",
        SPLIT_FILES[0]: b"GGUF" + b"\0" * 2000,
        SPLIT_FILES[1]: b"\0" * 3000,
    }, downloads=5000)
    server.add_repo(GATED_REPO, {GATED_FILE: bundled_model_path}, gated=True, downloads=900)
    server.add_repo(BROKEN_REPO, {BROKEN_FILE: broken}, downloads=3)
    server.add_repo(HOSTILE_REPO, {HOSTILE_FILE: b"GGUF" + b"\0" * 100}, downloads=1)
    server.add_repo("test-org/smol-safetensors", {"model.safetensors": b"x" * 10},
                    tags=["safetensors"])
    server.start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; a CI that sets it must not
    # block requests to this loopback server.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    yield server
    server.stop()


def make_downloader(paths: AppPaths, secrets: SecretStore | None = None,
                    catalog: ModelCatalog | None = None,
                    licences: LicenceAcceptances | None = None, **kwargs: Any) -> Downloader:
    """A Downloader wired to the test's folders, token store and catalog."""
    store = secrets or SecretStore(environ={})
    registry = ModelRegistry(paths, catalog)
    kwargs.setdefault("retry_delay", 0.05)
    return Downloader(paths, HubClient(token=store.hf_token), registry, catalog=catalog,
                      licences=licences, **kwargs)


@pytest.fixture
def gated_catalog() -> ModelCatalog:
    """The real catalog, plus its Llama 2 Chat entry pointed at the loopback gated repo."""
    real = ModelCatalog.load()
    llama = real.get("llama-2-7b-chat")
    assert llama is not None
    test_entry = replace(llama, id="llama-2-test", repo=GATED_REPO, default_quant="Q4_1",
                         files=(CatalogFile("Q4_1", GATED_FILE, 98_362_432),))
    return ModelCatalog((*real.entries, test_entry))


def subprocess_env(server: HubServer, home: Path, **extra: str) -> dict[str, str]:
    """Environment for a ``llamadesk`` child process: this test's home and Hub, no real
    keyring, no stray token."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update({
        "LLAMADESK_HOME": str(home), "HF_ENDPOINT": server.url,
        "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": str(home / "hf-home"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "QT_QPA_PLATFORM": "offscreen",
    })
    env.update(extra)
    return env
