"""``llamadesk serve``: the local OpenAI-compatible API without the window (docs/api.md).

    llamadesk serve [--host 127.0.0.1] [--port 8716] [--model ID] [--api-key]
                    [--new-api-key] [--cors-origin ORIGIN ...]

The inference service runs in this process as it does in the window: one worker thread
owns the model, and API requests queue on it. Ctrl+C (or SIGTERM) stops the server at
once and frees the model.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import TYPE_CHECKING, Any, TextIO

# The server (FastAPI, uvicorn) is imported when `serve` runs, not when the command line
# is parsed: every launch of the window parses it.
from llamadesk.api import DEFAULT_HOST, DEFAULT_PORT
from llamadesk.core.paths import app_paths
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.secrets import ApiKeyStore
from llamadesk.core.settings import load_settings

if TYPE_CHECKING:
    from llamadesk.api.server import ApiSettings
    from llamadesk.services.inference import InferenceService, ModelSpec

EXIT_OK = 0
EXIT_FAILED = 1


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
    serve.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                       help="allow browser pages from ORIGIN (repeatable; default: none)")


def api_key_for(args: argparse.Namespace, err: TextIO) -> str | None:
    """The key ``--api-key`` / ``--new-api-key`` ask for (made and shown once when
    needed), or None."""
    if not (args.api_key or args.new_api_key):
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
        if not (args.api_key or args.new_api_key):  # refuse before anything is made
            check_settings(ApiSettings(host=args.host, port=args.port))
        settings = ApiSettings(host=args.host, port=args.port, api_key=api_key_for(args, err),
                               cors_origins=tuple(args.cors_origin))
        check_settings(settings)
    except ApiConfigError as exc:
        print(f"llamadesk: {exc}", file=err)
        return EXIT_FAILED
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
    from PySide6.QtCore import QCoreApplication, QTimer

    from llamadesk.api.documents import store_search
    from llamadesk.api.server import ApiConfigError, ApiServer
    from llamadesk.services.inference import InferenceService
    from llamadesk.services.resolver import make_resolver

    app = QCoreApplication.instance() or QCoreApplication([])
    paths = app_paths().ensure()
    app_settings = load_settings(paths.settings_file)
    registry = ModelRegistry(paths)
    resolver = make_resolver(lambda: app_settings, registry)
    n_ctx = app_settings.defaults.n_ctx
    service = InferenceService()
    try:
        if model_id:
            try:
                failure = _load(service, resolver(model_id, n_ctx))
            except LookupError as exc:
                failure = str(exc)
            if failure:
                print(f"llamadesk: {failure}", file=err)
                return EXIT_FAILED
        server = ApiServer(service, registry.models, lambda mid: resolver(mid, n_ctx),
                           settings, documents=store_search(paths.database))
        try:
            server.start()
        except ApiConfigError as exc:
            print(f"llamadesk: {exc}", file=err)
            return EXIT_FAILED
        print(f"LlamaDesk API on {server.base_url} (Ctrl+C stops it)", file=out, flush=True)
        previous = {sig: signal.signal(sig, lambda *_: app.quit())
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        # Python runs its signal handlers only between bytecodes: a timer that calls
        # into Python lets Ctrl+C through while Qt's loop waits.
        ticker = QTimer()
        ticker.timeout.connect(lambda: None)
        ticker.start(200)
        try:
            app.exec()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            server.stop()
        return EXIT_OK
    finally:
        service.shutdown()
