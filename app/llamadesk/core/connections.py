"""Connections to remote OpenAI-compatible servers (vLLM, llama.cpp's server, Ollama,
another LlamaDesk): what is kept in the settings, and the rules for names and URLs.

A connection's API key is never part of it: the key lives only in the OS keychain
(``core.secrets``), looked up by the connection's name when a request is made.
A remote model's id is ``<connection>/<model>``; the connection's name cannot hold a
slash, so the first slash always splits the two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

#: A connection's name: what the picker shows and what prefixes its model ids.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
#: Reserved: the picker's group of local models.
RESERVED_NAMES = frozenset({"local"})


class InvalidConnectionError(ValueError):
    """A connection's name or URL is not acceptable; the message says why."""


@dataclass(frozen=True)
class Connection:
    """One remote server the user added. ``base_url`` ends where ``/models`` and
    ``/chat/completions`` are appended (e.g. ``http://gpu-box:8000/v1``)."""

    name: str
    base_url: str
    enabled: bool = True

    def model_id(self, model: str) -> str:
        """The app-wide id of ``model`` served by this connection."""
        return f"{self.name}/{model}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no key: keys are never stored with a connection)."""
        return {"name": self.name, "base_url": self.base_url, "enabled": self.enabled}


@dataclass(frozen=True)
class RemoteSettings:
    """How the app talks to remote servers: seconds to connect, seconds to wait for the
    next piece of a reply, and retries of a request that has not started streaming."""

    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0
    max_retries: int = 2

    def validated(self) -> RemoteSettings:
        """Timeouts between 0.1 s and an hour; 0 to 10 retries."""
        def seconds(value: object, default: float) -> float:
            try:
                return min(max(float(value), 0.1), 3600.0)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return default
        try:
            retries = min(max(int(self.max_retries), 0), 10)
        except (TypeError, ValueError):
            retries = 2
        return RemoteSettings(seconds(self.connect_timeout_s, 10.0),
                              seconds(self.read_timeout_s, 120.0), retries)


def check_name(name: str) -> str:
    """``name`` stripped, or InvalidConnectionError saying what a name may hold."""
    name = name.strip()
    if not _NAME.match(name):
        raise InvalidConnectionError(
            "A connection name is 1 to 40 letters, digits, dots, dashes or underscores, "
            f"starting with a letter or digit (not {name!r}).")
    if name.lower() in RESERVED_NAMES:
        raise InvalidConnectionError(f"{name!r} is reserved for the models on this computer.")
    return name


def normalize_url(url: str) -> str:
    """An http(s) base URL without a trailing slash, or InvalidConnectionError saying why not.
    A URL without a path gets ``/v1``, where OpenAI-compatible servers answer."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidConnectionError(f"{url!r} is not an http:// or https:// address with a host "
                               "(for example http://gpu-box:8000/v1).")
    if parts.username or parts.password:
        raise InvalidConnectionError("Put the API key in the key field, not in the address: an "
                               "address is stored in the settings file, a key only in the "
                               "system keychain.")
    if parts.query or parts.fragment:
        raise InvalidConnectionError(f"{url!r} has a query or fragment; give the base "
                                     "address only.")
    path = parts.path.rstrip("/") or "/v1"
    return f"{parts.scheme}://{parts.netloc}{path}"


def split_model_id(model_id: str) -> tuple[str, str] | None:
    """``(connection, model)`` for an id of the form ``<connection>/<model>``, else None."""
    name, sep, model = model_id.partition("/")
    if not sep or not model or not _NAME.match(name):
        return None
    return name, model


def find(connections: tuple[Connection, ...], name: str) -> Connection | None:
    """The connection called ``name`` (names compare case-insensitively)."""
    return next((c for c in connections if c.name.lower() == name.lower()), None)


def added(connections: tuple[Connection, ...], connection: Connection) -> tuple[Connection, ...]:
    """``connections`` with ``connection`` added at the end, or replacing the one of the
    same name where it stands."""
    name = check_name(connection.name)
    conn = replace(connection, name=name, base_url=normalize_url(connection.base_url))
    if find(connections, name) is None:
        return (*connections, conn)
    return tuple(conn if c.name.lower() == name.lower() else c for c in connections)


def removed(connections: tuple[Connection, ...], name: str) -> tuple[Connection, ...]:
    """``connections`` without the one called ``name`` (KeyError when there is none)."""
    if find(connections, name) is None:
        raise KeyError(name)
    return tuple(c for c in connections if c.name.lower() != name.lower())


def from_list(data: object) -> tuple[Connection, ...]:
    """Connections read from the settings file; entries that are not valid are skipped
    (a hand-edited file must not stop the app)."""
    result: tuple[Connection, ...] = ()
    if not isinstance(data, list):
        return result
    for item in data:
        if not isinstance(item, dict):
            continue
        try:
            result = added(result, Connection(str(item["name"]), str(item["base_url"]),
                                              bool(item.get("enabled", True))))
        except (KeyError, InvalidConnectionError):
            continue
    return result
