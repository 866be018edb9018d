"""What keeps web pages out of the local API (docs/security.md), as ASGI middleware that
runs before any route, streaming ones included:

- ``Host``: only this computer's names (``localhost``, loopback addresses), the host
  names the user allowed, and, when the server listens beyond loopback, addresses. A
  page whose name was rebound to 127.0.0.1 (DNS rebinding) sends its own name: 403.
- ``Origin``: a request that carries one not on the allowed list is refused (403),
  preflight or not. Programs other than browsers send no ``Origin`` and pass.
- ``Content-Type``: a POST must say its body is JSON; text, forms and untyped bodies,
  which a page may send without asking the browser first, are refused (415).
- The API key, when one is set; and CORS headers for the allowed origins only.

Every check reads the server's settings as they are now, so the window can change them
while the API runs.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from email.message import Message
from typing import Protocol

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from llamadesk.api.errors import ApiError
from llamadesk.core.api_access import host_of, is_ip_address, is_loopback_host


class AccessRules(Protocol):
    """The part of the server's settings the checks read."""

    @property
    def host(self) -> str:
        """The address the server listens on."""

    @property
    def api_key(self) -> str | None:
        """The key every request must carry, or None."""

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        """Web origins (normalized) whose pages may call the API."""

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        """Host names (normalized) that requests may name besides this computer's."""


Rules = Callable[[], AccessRules]


def host_allowed(rules: AccessRules, header: str | None) -> bool:
    """Whether a request with this ``Host`` header may be answered."""
    host = host_of(header) if header is not None else None
    if host is None:
        return False
    if is_loopback_host(host) or host in rules.allowed_hosts:
        return True
    if host == host_of(rules.host):  # the name it was told to listen on
        return True
    # Listening beyond loopback, clients name the machine by its address; an address
    # cannot be rebound to another machine, so it is no way in for a web page.
    return not is_loopback_host(host_of(rules.host) or "") and is_ip_address(host)


def is_json(content_type: str | None) -> bool:
    """Whether a body of this type is JSON. An untyped body is not: a page may send one
    without asking, and older FastAPI versions would read it as JSON."""
    if content_type is None:
        return False
    parsed = Message()
    parsed["content-type"] = content_type
    subtype = parsed.get_content_subtype()
    return parsed.get_content_maintype() == "application" and \
        (subtype == "json" or subtype.endswith("+json"))


class AccessGuard:
    """The outermost middleware: Host, Origin and body type, before anything else."""

    def __init__(self, app: ASGIApp, rules: Rules) -> None:
        self.app = app
        self._rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is not None:
            await refusal.response()(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> ApiError | None:
        """Why this request is refused, or None."""
        rules = self._rules()
        headers = Headers(scope=scope)
        host = headers.get("host")
        if not host_allowed(rules, host):
            return ApiError(403, f"Refused: the Host header {host!r} is not this computer "
                            "or a host name allowed for the local API (a web page whose "
                            "address was pointed at this computer sends its own). Allow "
                            "the name with --allow-host or in Settings → Local API access.",
                            code="host_not_allowed")
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in rules.allowed_origins:
            return ApiError(403, f"Refused: requests from web pages at {origin!r} are not "
                            "allowed. Allow that origin with --allow-origin or in "
                            "Settings → Local API access.", code="origin_not_allowed")
        if scope["method"] == "POST" and not is_json(headers.get("content-type")):
            return ApiError(415, "The request body must be JSON: send 'Content-Type: "
                            "application/json'.", code="unsupported_content_type")
        return None


class AllowedOriginsCors(CORSMiddleware):
    """Starlette's CORS, for the origins allowed now (the list may change while it
    runs). Only allowed origins get this far: AccessGuard refused the others."""

    def __init__(self, app: ASGIApp, rules: Rules) -> None:
        # allow_origins non-empty and not "*": Starlette then echoes each allowed origin.
        super().__init__(app, allow_origins=("none: see is_allowed_origin",),
                         allow_methods=("GET", "POST", "OPTIONS"), allow_headers=("*",),
                         allow_private_network=True)
        self._rules = rules

    def is_allowed_origin(self, origin: str) -> bool:
        """Whether the user allowed pages at ``origin``."""
        return origin.lower() in self._rules().allowed_origins


class BearerAuth:
    """With a key set, every request must carry it; CORS preflights are answered
    before this (by AllowedOriginsCors), since browsers send no credentials with them."""

    def __init__(self, app: ASGIApp, rules: Rules) -> None:
        self.app = app
        self._rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self._rules().api_key
        if scope["type"] != "http" or not key:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if not hmac.compare_digest(given, f"Bearer {key}".encode()):
            response = ApiError(401, "Missing or wrong API key: send it as "
                                "'Authorization: Bearer <key>'.",
                                code="invalid_api_key").response()
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
