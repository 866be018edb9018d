"""``llamadesk serve``: the local OpenAI-compatible API without the window (docs/api.md).

    llamadesk serve [--host 127.0.0.1] [--port 8716] [--model ID] [--api-key]
                    [--new-api-key] [--require-key] [--allow-origin URL ...]
                    [--allow-host NAME ...]

The inference service runs in this process as it does in the window: one worker thread
owns the model, and API requests queue on it. Ctrl+C (or SIGTERM) stops the server at
once and frees the model.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, TextIO

# The server (FastAPI, uvicorn) is imported when `serve` runs, not when the command line
# is parsed: every launch of the window parses it.
from llamadesk.api import DEFAULT_HOST, DEFAULT_PORT
from llamadesk.cli.errors import fail, say
from llamadesk.core.api_access import (
    AccessListError,
    normalize_host_name,
    normalize_origin,
    parse_list,
)
from llamadesk.core.exit_codes import EXIT_OK
from llamadesk.core.paths import app_paths
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.secrets import ApiKeyStore
from llamadesk.core.settings import load_settings

if TYPE_CHECKING:
    from llamadesk.api.server import ApiSettings
    from llamadesk.services.inference import InferenceService
    from llamadesk.services.jobs import ModelSpec


def add_serve_parser(subparsers: Any) -> None:
    """Add the ``serve`` command to the ``llamadesk`` parser."""
    serve = subparsers.add_parser(
        "serve", help="serve the OpenAI-compatible local API (no window)",
        description="Serve installed models to OpenAI clients at http://HOST:PORT/v1. "
                    "Only this machine can connect unless --host names another address, "
                    "which needs an API key.")
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help=f"address to listen on (default {DEFAULT_HOST}: this machine only)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)")
    serve.add_argument("--model", metavar="ID",
                       help="load this installed model now (see `llamadesk models list`); "
                            "requests may name any installed model")
    serve.add_argument("--api-key", action="store_true",
                       help="require the API key on every request (made and shown once if "
                            "there is none yet; kept in the system keyring)")
    serve.add_argument("--new-api-key", action="store_true",
                       help="make a new API key, replacing the old one, and require it")
    serve.add_argument("--require-key", action="store_true",
                       help="require the API key from programs on this computer as well "
                            "(the same as --api-key: with a key, every request needs it)")
    serve.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                       help="let web pages from URL (like https://app.example:8443) call "
                            "the API (repeatable; default: no web page can)")
    # The earlier name of --allow-origin, kept for scripts that use it.
    serve.add_argument("--cors-origin", action="append", dest="allow_origin",
                       metavar="URL", help=argparse.SUPPRESS)
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="answer requests addressed to host NAME as well as to "
                            "localhost and loopback addresses (repeatable)")


def api_key_for(args: argparse.Namespace, err: TextIO) -> str | None:
    """The key ``--api-key`` / ``--new-api-key`` ask for (made and shown once when
    needed), or None."""
    if not (args.api_key or args.new_api_key or args.require_key):
        return None
    keys = ApiKeyStore()
    existing = None if args.new_api_key else keys.get()
    if existing:
        return existing
    made = keys.create()
    kept = ("kept in the system keyring" if made.persisted
            else "for this run only: no system keyring is available")
    # Shown once, on the terminal of the person who asked for it; never logged.
    print(f"API key ({kept}); clients send it as 'Authorization: Bearer <key>':\n"
          f"{made.value}", file=err)
    return made.value


def run_serve(args: argparse.Namespace, out: TextIO | None = None,
              err: TextIO | None = None) -> int:
    """Serve until interrupted; returns the exit status."""
    from llamadesk.api.server import ApiConfigError, ApiSettings, check_settings

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        origins = parse_list(" ".join(args.allow_origin), normalize_origin)
        hosts = parse_list(" ".join(args.allow_host), normalize_host_name)
        if not (args.api_key or args.new_api_key or args.require_key):
            # refuse before a key is made
            check_settings(ApiSettings(host=args.host, port=args.port))
        settings = ApiSettings(host=args.host, port=args.port, api_key=api_key_for(args, err),
                               allowed_origins=origins, allowed_hosts=hosts)
        check_settings(settings)
    except (ApiConfigError, AccessListError) as exc:
        return fail(exc, err)
    return _serve(settings, args.model, out, err)


def _load(service: InferenceService, spec: ModelSpec) -> str | None:
    """Load ``spec`` and wait (llama.cpp silences the process's stdout while it loads);
    returns why it failed, or None."""
    from PySide6.QtCore import QEventLoop

    outcome: list[str | None] = []
    loop = QEventLoop()
    service.model_loaded.connect(lambda _info: (outcome.append(None), loop.quit()))
    service.model_load_failed.connect(lambda reason: (outcome.append(reason), loop.quit()))
    service.load_model(spec)
    if not outcome:
        loop.exec()
    return outcome[0]


def _serve(settings: ApiSettings, model_id: str | None, out: TextIO, err: TextIO) -> int:
    from PySide6.QtCore import QCoreApplication

    from llamadesk.api.documents import app_store_opener, store_search
    from llamadesk.api.server import ApiConfigError, ApiServer
    from llamadesk.services.activity import Busy, what_stops
    from llamadesk.services.inference import InferenceService
    from llamadesk.services.query_embedder import QueryEmbedder, resolver_locate
    from llamadesk.services.resolver import make_resolver
    from llamadesk.ui.quit_signals import install_quit_signals

    app = QCoreApplication.instance() or QCoreApplication([])
    paths = app_paths().ensure()
    app_settings = load_settings(paths.settings_file)
    registry = ModelRegistry(paths)
    resolver = make_resolver(lambda: app_settings, registry)
    service = InferenceService()
    embedder = QueryEmbedder(resolver_locate(resolver))  # questions to hybrid search
    try:
        if model_id:
            try:
                failure = _load(service, resolver.api_spec(model_id))
            except LookupError as exc:
                failure = str(exc)
            if failure:
                return fail(failure, err)
        server = ApiServer(service, registry.models, resolver.api_spec,
                           settings, documents=store_search(app_store_opener(paths),
                                                            embedder.embed))
        try:
            server.start()
        except ApiConfigError as exc:
            return fail(exc, err)
        # The first Ctrl+C (or SIGTERM) stops the server and frees the model; a second
        # ends the process at once, even if that shutdown is stuck. Installed before the
        # line below, which tells a supervising process that signals are now heard.
        busy = Busy(service, requests=server.runner)  # says what a quit cuts off
        def say_what_stops() -> None:
            stopping = what_stops(busy)
            if stopping is not None:
                say(f"stopping {stopping}", err)

        signals = install_quit_signals(app, lambda: (say_what_stops(), app.quit()))
        print(f"LlamaDesk API on {server.base_url} (Ctrl+C stops it)", file=out, flush=True)
        try:
            app.exec()
        finally:
            server.stop()
            signals.uninstall()
        return EXIT_OK
    finally:
        embedder.shutdown()
        service.shutdown()
