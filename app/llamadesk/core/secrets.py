"""Secrets: the Hugging Face token, the API keys of remote connections, and the local
API's own key.

The Hugging Face token comes from the environment, the system keyring, or this session
only. A connection's API key is kept under user ``connection:<name>`` in the keyring,
else in memory for the session; it is never read from the environment (a key meant for
one service must not be sent to another).

Order: ``HF_TOKEN`` in the environment (what Hugging Face users expect), then the
keyring (service "LlamaDesk", user "huggingface"), then a token entered during this
session. With no usable keyring backend the token stays in memory until the app quits,
and ``set_hf_token`` says so. The token never goes into a file, a log line, a repr or
an error message: nothing here formats it into a string.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from secrets import token_urlsafe

if sys.platform != "darwin":
    # keyring's backend discovery imports its macOS backend on every system, and that
    # module asks ctypes for three macOS frameworks by name: off macOS each lookup runs
    # ldconfig and a compiler (~30 ms of wall time each, before the window can show).
    # The backend declines anywhere but macOS before it looks at the module, so marking
    # it unimportable changes no choice.
    sys.modules.setdefault("keyring.backends.macOS.api", None)  # type: ignore[arg-type]


@contextmanager
def _urllib_request_deferred() -> Iterator[None]:
    """While keyring is imported, ``urllib.request`` is a stand-in that imports the real
    module at its first use. keyring imports jaraco.context, which imports it (with
    http.client, email and ssl: ~100 modules, ~20 ms of CPU before the store's key can
    be read) for a download helper that keyring never calls. Afterwards the stand-in is
    taken away, so a later import loads the real module as usual; a thread that took
    the stand-in meanwhile still reaches the real module through it."""
    name = "urllib.request"
    if name in sys.modules:
        yield
        return
    import urllib

    stand_in = types.ModuleType(name, "urllib.request, imported at its first use")

    def real(attribute: str) -> object:
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        return getattr(importlib.import_module(name), attribute)

    stand_in.__dict__["__getattr__"] = real  # a module's own __getattr__ (PEP 562)
    sys.modules[name] = stand_in
    urllib.request = stand_in
    try:
        yield
    finally:
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        if urllib.__dict__.get("request") is stand_in:
            del urllib.request


with _urllib_request_deferred():
    import keyring
    import keyring.backend
    import keyring.errors

log = logging.getLogger(__name__)

SERVICE = "LlamaDesk"
HF_USER = "huggingface"
API_KEY_USER = "local-api"  # the local API's own key (not a connection's: no prefix)
ENV_VAR = "HF_TOKEN"


class TokenSource(StrEnum):
    """Where the token in use comes from."""

    ENVIRONMENT = "the HF_TOKEN environment variable"
    KEYRING = "the system keyring"
    SESSION = "memory, for this session only"
    NONE = "nowhere (no token)"


@dataclass(frozen=True)
class TokenSaveResult:
    """What happened to a token the user entered."""

    persisted: bool
    message: str


class InvalidTokenError(ValueError):
    """The text entered cannot be a token (the message never repeats it)."""


def _backend_usable(backend: keyring.backend.KeyringBackend) -> bool:
    # The fail backend raises on every call; the null backend silently forgets. Neither
    # keeps a token, so both count as "no keyring".
    module = type(backend).__module__
    return not module.startswith(("keyring.backends.fail", "keyring.backends.null"))


class SecretStore:
    """Holds the Hugging Face token for the app; safe to call from any thread."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ if environ is not None else os.environ
        self._lock = threading.Lock()
        self._session_token: str | None = None
        self._session_keys: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"SecretStore(source={self.hf_token_source().name})"

    def keyring_usable(self) -> bool:
        """Whether a keyring backend that keeps secrets is available."""
        try:
            return _backend_usable(keyring.get_keyring())
        except keyring.errors.KeyringError:
            return False

    def _from_keyring(self) -> str | None:
        if not self.keyring_usable():
            return None
        try:
            return keyring.get_password(SERVICE, HF_USER) or None
        except keyring.errors.KeyringError as exc:
            log.warning("cannot read the token from the keyring (%s)", type(exc).__name__)
            return None

    def _lookup(self) -> tuple[str | None, TokenSource]:
        env = (self._environ.get(ENV_VAR) or "").strip()
        if env:
            return env, TokenSource.ENVIRONMENT
        stored = self._from_keyring()
        if stored:
            return stored, TokenSource.KEYRING
        with self._lock:
            if self._session_token:
                return self._session_token, TokenSource.SESSION
        return None, TokenSource.NONE

    def hf_token(self) -> str | None:
        """The token to send to the Hub, or None."""
        return self._lookup()[0]

    def hf_token_source(self) -> TokenSource:
        """Where ``hf_token()`` finds its token."""
        return self._lookup()[1]

    def set_hf_token(self, token: str) -> TokenSaveResult:
        """Keep ``token`` for later downloads: in the keyring if possible, else in memory."""
        token = token.strip()
        if not token:
            raise InvalidTokenError("the token is empty")
        if any(c.isspace() or not c.isprintable() for c in token):
            raise InvalidTokenError("a token cannot contain spaces, line breaks or control "
                                    "characters")
        with self._lock:
            self._session_token = token
        note = (" HF_TOKEN is set in the environment and takes precedence."
                if (self._environ.get(ENV_VAR) or "").strip() else "")
        if self.keyring_usable():
            try:
                keyring.set_password(SERVICE, HF_USER, token)
            except keyring.errors.KeyringError as exc:
                log.warning("cannot store the token in the keyring (%s)", type(exc).__name__)
                return TokenSaveResult(False, "The system keyring refused the token, so it is "
                                       "kept for this session only." + note)
            log.info("Hugging Face token stored in the system keyring")
            return TokenSaveResult(True, "Token saved in the system keyring." + note)
        log.info("no usable keyring backend; Hugging Face token kept for this session only")
        return TokenSaveResult(False, "No system keyring is available, so the token is kept "
                               "for this session only; enter it again after a restart, or "
                               "set HF_TOKEN." + note)

    def clear_hf_token(self) -> None:
        """Forget the stored and session token (HF_TOKEN in the environment stays)."""
        with self._lock:
            self._session_token = None
        if self.keyring_usable():
            try:
                keyring.delete_password(SERVICE, HF_USER)
            except keyring.errors.PasswordDeleteError:
                pass  # nothing was stored
            except keyring.errors.KeyringError as exc:
                log.warning("cannot remove the token from the keyring (%s)", type(exc).__name__)

    # -- API keys of remote connections --------------------------------------------------
    def api_key(self, connection: str) -> str | None:
        """The key to send to ``connection``, or None (no key: none is sent)."""
        if self.keyring_usable():
            try:
                stored = keyring.get_password(SERVICE, _connection_user(connection))
            except keyring.errors.KeyringError as exc:
                log.warning("cannot read a connection key from the keyring (%s)",
                            type(exc).__name__)
                stored = None
            if stored:
                return stored
        with self._lock:
            return self._session_keys.get(connection.lower())

    def set_api_key(self, connection: str, key: str) -> TokenSaveResult:
        """Keep ``key`` for ``connection``: in the keyring if possible, else in memory."""
        key = checked_key(key)
        with self._lock:
            self._session_keys[connection.lower()] = key
        if self.keyring_usable():
            try:
                keyring.set_password(SERVICE, _connection_user(connection), key)
            except keyring.errors.KeyringError as exc:
                log.warning("cannot store a connection key in the keyring (%s)",
                            type(exc).__name__)
                return TokenSaveResult(False, "The system keyring refused the key, so it is "
                                       "kept for this session only.")
            log.info("API key of connection %s stored in the system keyring", connection)
            return TokenSaveResult(True, "Key saved in the system keyring.")
        return TokenSaveResult(False, "No system keyring is available, so the key is kept "
                               "for this session only.")

    def clear_api_key(self, connection: str) -> None:
        """Forget ``connection``'s key (keyring and session)."""
        with self._lock:
            self._session_keys.pop(connection.lower(), None)
        if self.keyring_usable():
            try:
                keyring.delete_password(SERVICE, _connection_user(connection))
            except keyring.errors.PasswordDeleteError:
                pass  # nothing was stored
            except keyring.errors.KeyringError as exc:
                log.warning("cannot remove a connection key from the keyring (%s)",
                            type(exc).__name__)


def checked_key(key: str) -> str:
    """``key`` without surrounding spaces, if it can be a connection's API key; else
    InvalidTokenError (checked before any keyring call, so a caller can check first)."""
    key = key.strip()
    if not key:
        raise InvalidTokenError("the key is empty")
    if any(c.isspace() or not c.isprintable() for c in key):
        raise InvalidTokenError("a key cannot contain spaces, line breaks or control "
                                "characters")
    return key


def _connection_user(connection: str) -> str:
    # Connection names compare case-insensitively, so their keys do too.
    return f"connection:{connection.lower()}"


@dataclass(frozen=True)
class ApiKey:
    """The local API's key, and whether the keyring keeps it."""

    value: str
    persisted: bool

    def __repr__(self) -> str:
        return f"ApiKey(persisted={self.persisted})"


class ApiKeyStore:
    """The local API's key (docs/api.md): generated here, kept in the system keyring
    (service "LlamaDesk", user "local-api"), or for this session only without one."""

    def __init__(self, secrets: SecretStore | None = None) -> None:
        self._secrets = secrets or SecretStore()
        self._session: str | None = None

    def get(self) -> str | None:
        """The key in force, or None when none was made."""
        if self._secrets.keyring_usable():
            try:
                stored = keyring.get_password(SERVICE, API_KEY_USER)
            except keyring.errors.KeyringError as exc:
                log.warning("cannot read the API key from the keyring (%s)",
                            type(exc).__name__)
                stored = None
            if stored:
                return stored
        return self._session

    def create(self) -> ApiKey:
        """A new random key, replacing any earlier one; show it to the user once."""
        value = "ld-" + token_urlsafe(32)
        self._session = value
        if self._secrets.keyring_usable():
            try:
                keyring.set_password(SERVICE, API_KEY_USER, value)
                log.info("a new local API key was stored in the system keyring")
                return ApiKey(value, True)
            except keyring.errors.KeyringError as exc:
                log.warning("cannot store the API key in the keyring (%s)",
                            type(exc).__name__)
        return ApiKey(value, False)

    def clear(self) -> None:
        """Forget the key."""
        self._session = None
        if self._secrets.keyring_usable():
            try:
                keyring.delete_password(SERVICE, API_KEY_USER)
            except keyring.errors.PasswordDeleteError:
                pass  # nothing was stored
            except keyring.errors.KeyringError as exc:
                log.warning("cannot remove the API key from the keyring (%s)",
                            type(exc).__name__)
