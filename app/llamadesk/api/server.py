"""The local API server: uvicorn on its own thread with its own event loop.

Private by default: it binds 127.0.0.1, and refuses any other address unless an API key
is set; with a key, every request must carry ``Authorization: Bearer <key>``. Web pages
are kept out by the checks of ``api.guard`` (Host, Origin, body type); CORS answers only
the origins the user allowed. ``stop()`` cancels the API's jobs on the inference worker
and closes every connection at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import uvicorn
from fastapi import FastAPI

from llamadesk.api import DEFAULT_HOST, DEFAULT_PORT
from llamadesk.api.documents import DocumentSearch
from llamadesk.api.errors import install_handlers
from llamadesk.api.guard import AccessGuard, AllowedOriginsCors, BearerAuth, Rules
from llamadesk.api.jobs import ChatHook, JobRunner, RequestRecord, Submitter
from llamadesk.api.routes import ApiContext, mount
from llamadesk.core.api_access import AccessListError, normalize_host_name, normalize_origin
from llamadesk.core.registry import ModelEntry
from llamadesk.services.jobs import ModelSpec

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0


class ApiConfigError(Exception):
    """The server cannot start as configured; the message says why and what to do."""


@dataclass(frozen=True)
class ApiSettings:
    """How to serve. ``port`` 0 picks a free port (see ``ApiServer.port``)."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None
    #: Web origins whose pages may call the API, and host names requests may name
    #: besides this computer's (both normalized by ``core.api_access``).
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    queue_limit: int = 64  # API requests running or queued at once; more get 429


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (a name other than localhost is not)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_settings(settings: ApiSettings) -> None:
    """Refuse what must not be served, before anything is bound."""
    if not is_loopback(settings.host) and not settings.api_key:
        raise ApiConfigError(
            f"Refusing to listen on {settings.host}: other machines could use your models. "
            "Set an API key first (llamadesk serve --api-key), or listen on 127.0.0.1.")
    if not 0 <= settings.port <= 65535:
        raise ApiConfigError(f"{settings.port} is not a port number (0-65535).")
    try:
        for origin in settings.allowed_origins:
            if normalize_origin(origin) != origin:
                raise ApiConfigError(f"Write the origin {origin!r} as "
                                     f"{normalize_origin(origin)!r}.")
        for name in settings.allowed_hosts:
            if normalize_host_name(name) != name:
                raise ApiConfigError(f"Write the host name {name!r} as "
                                     f"{normalize_host_name(name)!r}.")
    except AccessListError as exc:
        raise ApiConfigError(str(exc)) from exc


def create_app(ctx: ApiContext, rules: Rules) -> FastAPI:
    """The ASGI app: the routes and OpenAI-shaped errors inside the access checks
    (outermost first: Host, Origin and body type; CORS; the key)."""
    app = FastAPI(title="LlamaDesk local API", docs_url=None, redoc_url=None,
                  openapi_url=None)
    install_handlers(app)
    mount(app, ctx)
    # Each added middleware wraps the ones before it: the last added runs first.
    app.add_middleware(BearerAuth, rules=rules)
    app.add_middleware(AllowedOriginsCors, rules=rules)
    app.add_middleware(AccessGuard, rules=rules)
    return app


class ApiServer:
    """The server's life: ``start()`` binds and serves on a thread, ``stop()`` ends it."""

    def __init__(self, service: Submitter, models: Callable[[], list[ModelEntry]],
                 resolve: Callable[[str], ModelSpec], settings: ApiSettings,
                 on_chat: ChatHook | None = None,
                 documents: DocumentSearch | None = None) -> None:
        self.settings = settings
        self.runner = JobRunner(service, settings.queue_limit, on_chat)
        self._ctx = ApiContext(self.runner, models, resolve, documents)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = settings.port

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen when the settings said 0)."""
        return self._port

    @property
    def base_url(self) -> str:
        """Where OpenAI clients point: ``http://host:port/v1``."""
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self._port}/v1"

    def recent(self) -> list[RequestRecord]:
        """The most recent requests, oldest first (safe from any thread)."""
        return list(self.runner.recent)

    def set_access(self, api_key: str | None, allowed_origins: tuple[str, ...],
                   allowed_hosts: tuple[str, ...]) -> None:
        """Change who may use the API; the next request is checked against it (running
        replies go on). Raises ApiConfigError for what ``check_settings`` refuses."""
        wanted = replace(self.settings, api_key=api_key, allowed_origins=allowed_origins,
                         allowed_hosts=allowed_hosts)
        check_settings(wanted)
        self.settings = wanted  # one reference swap: the server's thread sees old or new

    def start(self) -> None:
        """Bind and serve. Raises ApiConfigError when refused or the port is taken."""
        if self.running:
            return
        check_settings(self.settings)
        sock = self._bind()
        self._port = int(sock.getsockname()[1])
        config = uvicorn.Config(create_app(self._ctx, lambda: self.settings), log_config=None,
                                access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=self._serve, args=(server, sock),
                                        name="local-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ApiConfigError("The local API did not start; see the log.")
            time.sleep(0.01)
        log.info("local API listening on %s", self.base_url)

    def _bind(self) -> socket.socket:
        host, port = self.settings.host, self.settings.port
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            # IPPROTO_TCP named: asyncio turns Nagle off (TCP_NODELAY) only on sockets
            # that say they are TCP, and with Nagle on, each small SSE chunk after the
            # first waits for the client's delayed ACK (about 40 ms).
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host.strip("[]"), port))
        except OSError as exc:
            sock.close()
            raise ApiConfigError(f"Cannot listen on {host}:{port} ({exc.strerror or exc}); "
                                 "is another program using that port?") from exc
        sock.listen(128)
        sock.setblocking(False)
        return sock

    @staticmethod
    def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            with asyncio.Runner() as runner:  # cancels what is left when it ends
                runner.run(server.serve(sockets=[sock]))
        except Exception:
            log.exception("the local API stopped unexpectedly")
        finally:
            sock.close()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop at once: cancel the API's jobs, close connections, end the thread."""
        self.runner.cancel_all()
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("the local API thread did not stop within %.1f s", timeout_s)
            else:
                log.info("local API stopped")
                self.runner.forget_jobs()
        self._thread = None
        self._server = None
