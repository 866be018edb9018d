"""Who may use the local API (docs/api.md, docs/security.md): the web origins and host
names the user allows, written the one way the server compares them.

A browser names the page behind a request in its ``Origin`` header and the name it
connected to in ``Host``. DNS rebinding points an attacker's name at 127.0.0.1, so the
``Host`` of a request from such a page is the attacker's name: the API answers only
loopback names, addresses and the names listed here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit

#: The names of this computer that no DNS answer can take over.
LOOPBACK_NAMES = frozenset({"localhost"})
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class AccessListError(ValueError):
    """An origin or host name that cannot be allowed; the message says why."""


def normalize_origin(text: str) -> str:
    """``scheme://host[:port]`` as a browser sends it in ``Origin`` (lower case, no
    default port, no path). Raises AccessListError for anything else."""
    given = text.strip()
    parts = urlsplit(given)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise AccessListError(f"{given!r} is not a web origin: write it as "
                              "http://host or https://host:port")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username \
            or parts.password:
        raise AccessListError(f"{given!r} is not a web origin: an origin has no path, "
                              "query or user name (write https://host:port)")
    host = normalize_host_name(parts.hostname)
    try:
        port = parts.port
    except ValueError as exc:
        raise AccessListError(f"{given!r} has no valid port number") from exc
    shown = f"[{host}]" if ":" in host else host
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{shown}"
    return f"{parts.scheme}://{shown}:{port}"


def normalize_host_name(text: str) -> str:
    """A host name (or address) in lower case, without brackets or a port. Raises
    AccessListError for what cannot be a host."""
    given = text.strip().lower().rstrip(".")
    bare = given[1:-1] if given.startswith("[") and given.endswith("]") else given
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    labels = bare.split(".")
    if not bare or len(bare) > 253 or not all(_LABEL.match(label) for label in labels):
        raise AccessListError(f"{text.strip()!r} is not a host name: use letters, digits, "
                              "hyphens and dots, without a port (like llm.home.arpa)")
    return bare


def parse_list(text: str, normalize: Callable[[str], str]) -> tuple[str, ...]:
    """Entries one per line (or separated by commas or spaces), normalized, without
    duplicates. Raises AccessListError naming the first entry that is not valid."""
    found: list[str] = []
    for entry in re.split(r"[\s,]+", text):
        if entry and (value := normalize(entry)) not in found:
            found.append(value)
    return tuple(found)


def host_of(header: str) -> str | None:
    """The host in a ``Host`` header (``name``, ``name:port``, ``[v6]:port``), lower
    case and without brackets; None when it is not a host."""
    value = header.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        rest = value[end + 1:]
        if end < 0 or (rest and not re.fullmatch(r":\d{1,5}", rest)):
            return None
        value = value[:end + 1]
    elif value.count(":") == 1:
        value, port = value.split(":")
        if not port.isdigit():
            return None
    try:
        return normalize_host_name(value)
    except AccessListError:
        return None


def is_ip_address(host: str) -> bool:
    """Whether ``host`` (as ``host_of`` returns it) is an address rather than a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (as ``host_of`` returns it) names this computer: ``localhost``
    or a loopback address."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
