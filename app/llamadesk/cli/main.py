"""The ``llamadesk`` command: the window by default, plus tools for scripts and support.
This module assembles the parser and dispatches; each command group is its own module.

    llamadesk                        open the window
    llamadesk --self-test            load the bundled model, answer a fixed prompt, exit 0
    llamadesk chat [--new | --conversation ID] [--model ID | --compare A,B] "message"
    llamadesk models ...             list, search, download, import, remove models
    llamadesk chats ...              list, show, export and import conversations
    llamadesk docs ...               collections of documents; chat --docs NAME answers
                                     from one
    llamadesk connections ...        remote OpenAI-compatible servers to chat through
    llamadesk serve ...              the OpenAI-compatible local API, without the window
    llamadesk store ...              the chat database's encryption and its key
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence

from llamadesk import APP_NAME, __version__
from llamadesk.cli.errors import CliError, fail, say
from llamadesk.core.crashlog import CrashLog, crash_notice
from llamadesk.core.exit_codes import EXIT_CANNOT_START, EXIT_INTERRUPTED
from llamadesk.core.logs import setup_logging
from llamadesk.core.paths import app_paths, resources_dir
from llamadesk.core.platform_support import check_this_cpu

log = logging.getLogger("llamadesk.cli")


def _parser(commands: bool = True) -> argparse.ArgumentParser:
    """The command line's parser; without ``commands``, only the window's options (an
    empty command line opens the window, and need not import every command's module)."""
    parser = argparse.ArgumentParser(
        prog="llamadesk", description=f"{APP_NAME}: private, offline chat with local models.")
    parser.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="load the bundled model, answer a fixed prompt and exit")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="open the window, save a picture of it to PNG and exit "
                        "(status 1 if the model did not load)")
    parser.set_defaults(command=None)
    if not commands:
        return parser
    sub = parser.add_subparsers(dest="command")
    # Not optional: a broken import must be reported, not quietly drop the command.
    from llamadesk.cli import chat as cli_chat
    from llamadesk.cli import chats as cli_chats
    from llamadesk.cli import connections as cli_connections
    from llamadesk.cli import docs as cli_docs
    from llamadesk.cli import models as cli_models
    from llamadesk.cli import serve as cli_serve
    from llamadesk.cli import store as cli_store

    cli_chat.add_chat_parser(sub)
    cli_models.add_models_parser(sub)
    cli_chats.add_chats_parser(sub)
    cli_docs.add_docs_parser(sub)
    cli_connections.add_connections_parser(sub)
    cli_serve.add_serve_parser(sub)
    cli_store.add_store_parser(sub)
    return parser


def _refuse_cpu(problem: str, args: argparse.Namespace) -> int:
    """This CPU cannot run the bundled llama.cpp: say so on stderr, and in the window
    too when there is one (core/platform_support.py)."""
    say(problem)
    if args.command is None and not args.self_test:
        from llamadesk.ui.app import refuse_to_start

        refuse_to_start(problem, screenshot=args.screenshot)
    return EXIT_CANNOT_START


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llamadesk`` command."""
    # Start-up creates a few hundred thousand objects that live as long as the process;
    # each full collection while they are made walks them all (~25 ms of CPU here, the
    # window's launch paid for several). The window collects again once it is shown
    # (ui/app.py), every other command before it runs.
    gc.disable()
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    finally:
        gc.enable()


def _main(argv: list[str]) -> int:
    try:
        parser = _parser(commands=bool(argv))
    except ImportError as exc:
        return fail(f"this installation is incomplete ({exc}); reinstall LlamaDesk")
    args = parser.parse_args(argv)
    paths = app_paths()
    try:
        paths.ensure()
        setup_logging(paths.log_file)
    except OSError as exc:
        return fail(f"cannot use the data folders ({exc}); set LLAMADESK_HOME to a "
                    "writable folder")
    with CrashLog(paths.crash_dir) as crash_log:
        return _run(args, crash_notice(crash_log.previous))


def run() -> None:
    """The process's entry (the ``llamadesk`` command, ``python -m llamadesk``, the frozen
    app): ``main``, then exit with its status — at once when a thread was abandoned
    (``services/worker.leave_now_if_abandoned``). Not in ``main``, which tests call in
    their own process."""
    status = main()
    if "llamadesk.services.worker" in sys.modules:  # only commands that start threads
        from llamadesk.services.worker import leave_now_if_abandoned

        leave_now_if_abandoned(status)
    if "llamadesk.services.engine_import" in sys.modules:  # the window's early import
        from llamadesk.services.engine_import import leave_if_still_importing

        leave_if_still_importing(status)
    sys.exit(status)


def _start_engine_import() -> None:
    """Start the engine's import on a thread of its own as soon as the window is shown,
    before its first paint (services/engine_import.py): on this CPU (checked) and with
    the tested llama-cpp-python only; otherwise the window says why and imports
    nothing. Not beside the window's modules or its construction: both are Python
    holding the interpreter, so side by side each waits for the other (the window was
    idle up to ~0.2 s later and the model no sooner; docs/performance.md, "Start-up")."""
    from llamadesk.services.llama_version import version_problem

    if version_problem() is None:
        from llamadesk.services.engine_import import start_early

        start_early()


def _run(args: argparse.Namespace, crash: str | None) -> int:
    """Run the command ``args`` names; ``crash`` says that the last run crashed (the
    window shows it, a command prints it as one line on stderr)."""
    if args.command is not None or args.self_test:
        gc.enable()  # a command runs as long as it needs; only the window defers this
    if crash is not None and (args.command is not None or args.self_test):
        say(crash)
    if args.self_test or args.command not in (None, "chats", "connections"):
        # Stored chats and connections stay reachable; anything that may load a model
        # needs the llama-cpp-python that was tested (the window says so in a dialog).
        from llamadesk.services.llama_version import version_problem

        untested = version_problem()
        if untested is not None:
            fail(untested, log=logging.getLogger(__name__))
            return EXIT_CANNOT_START
    problem = check_this_cpu(resources_dir())
    try:
        if problem and (args.self_test or args.command in (None, "chat", "serve")):
            return _refuse_cpu(problem, args)
        if args.self_test:
            from llamadesk.cli.self_test import self_test

            return self_test()
        if args.command == "chat":
            from llamadesk.cli import chat as cli_chat

            return cli_chat.chat(args)
        if args.command == "models":
            from llamadesk.cli import models as cli_models

            return int(cli_models.run_models(args))
        if args.command == "chats":
            from llamadesk.cli import chats as cli_chats

            return cli_chats.run_chats(args)
        if args.command == "docs":
            from llamadesk.cli import docs as cli_docs

            return cli_docs.run_docs(args)
        if args.command == "connections":
            from llamadesk.cli import connections as cli_connections

            return cli_connections.run_connections(args)
        if args.command == "store":
            from llamadesk.cli import store as cli_store

            return cli_store.run_store(args)
        if args.command == "serve":
            from llamadesk.cli import serve as cli_serve

            return cli_serve.run_serve(args)
        from llamadesk.services.engine_import import limit_blas_threads

        limit_blas_threads()  # before any thread starts (Qt's included)
        from llamadesk.cli.qt_support_cache import import_qt_core

        import_qt_core(app_paths().cache_dir)  # before the window's modules import Qt
        from llamadesk.ui.app import run_gui

        return run_gui(screenshot=args.screenshot, crash=crash,
                       on_shown=_start_engine_import)
    except CliError as exc:
        return fail(exc, log=log)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    run()
