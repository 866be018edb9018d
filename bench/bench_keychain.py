"""A stand-in for the OS keychain while benchmarking, on machines that have none.

The app keeps its store key in the keychain; without one it would stop at start and
ask (a passphrase, or an unencrypted store), which a benchmark cannot answer. This
backend keeps secrets in a JSON file named by ``LLAMADESK_BENCH_KEYCHAIN`` (a throwaway
file of the run), so the app starts as it does for most users: the key from the
keychain, the database encrypted. It is never used outside bench/. A real keychain
lookup (a D-Bus call to the Secret Service, a Keychain Services call) costs a few
milliseconds more at start than this file read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keyring.backend
import keyring.errors

ENV = "LLAMADESK_BENCH_KEYCHAIN"


class FakeFileKeychain(keyring.backend.KeyringBackend):
    """Secrets in a JSON file (benchmarks only)."""

    priority = 1  # type: ignore[assignment]

    def _path(self) -> Path:
        return Path(os.environ[ENV])

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self._path().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}\x00{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}\x00{username}"] = password
        self._path().write_text(json.dumps(data), encoding="utf-8")

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(f"{service}\x00{username}", None) is None:
            raise keyring.errors.PasswordDeleteError("not set")
        self._path().write_text(json.dumps(data), encoding="utf-8")


def install(folder: Path) -> None:
    """Make this process and its children use the file keychain in ``folder``."""
    os.environ[ENV] = str(folder / "bench-keychain.json")
    os.environ["PYTHON_KEYRING_BACKEND"] = "bench_keychain.FakeFileKeychain"
    bench_dir = str(Path(__file__).resolve().parent)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if bench_dir not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([bench_dir, *parts])
