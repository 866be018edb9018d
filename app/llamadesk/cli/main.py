"""The ``llamadesk`` command: the window by default, plus tools for scripts and support.

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
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from llamadesk import APP_NAME, __version__
from llamadesk.cli.errors import CliError, fail, say
from llamadesk.core import bundled
from llamadesk.core.conversation import Conversation, FinishReason, Role, SamplingParams
from llamadesk.core.crashlog import CrashLog, crash_notice
from llamadesk.core.exit_codes import (
    EXIT_CANNOT_START,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
)
from llamadesk.core.logs import setup_logging
from llamadesk.core.paths import app_paths, resources_dir
from llamadesk.core.platform_support import check_this_cpu
from llamadesk.core.settings import load_settings
from llamadesk.core.store import LAST_CONVERSATION_KEY, ConversationStore, StoreError

if TYPE_CHECKING:
    from llamadesk.core.conversation import Message
    from llamadesk.core.documents.index import Passage
    from llamadesk.services.backend import ChatBackend
    from llamadesk.services.chat_session import ChatSession
    from llamadesk.services.engine_types import GenerationResult
    from llamadesk.services.jobs import JobEnd, ModelSpec

log = logging.getLogger("llamadesk.cli")

#: Passages a ``chat --docs`` question retrieves before fitting them to the context.
DOCS_K = 5
SELF_TEST_PROMPT = "What is the capital of France? Answer in one short sentence."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llamadesk", description=f"{APP_NAME}: private, offline chat with local models.")
    parser.add_argument("--version", action="version", version=f"{APP_NAME} {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="load the bundled model, answer a fixed prompt and exit")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="open the window, save a picture of it to PNG and exit "
                        "(status 1 if the model did not load)")
    sub = parser.add_subparsers(dest="command")
    chat = sub.add_parser("chat", help="send one message and stream the answer here")
    which = chat.add_mutually_exclusive_group()
    which.add_argument("--new", action="store_true", help="start a new conversation")
    which.add_argument("--conversation", type=int, metavar="ID",
                       help="continue this conversation (default: the most recent one)")
    models = chat.add_mutually_exclusive_group()
    models.add_argument("--model", metavar="ID",
                        help="answer with this installed model (see `llamadesk models "
                             "list`) or a remote one, CONNECTION/MODEL (see `llamadesk "
                             "connections list`); the conversation keeps it")
    models.add_argument("--compare", metavar="A,B", type=_model_list,
                        help="answer with each of these models in turn; the answers are "
                             "stored as versions of one reply (the window's < 1/2 >)")
    chat.add_argument("--max-tokens", type=int, default=None, help="limit the reply's length")
    chat.add_argument("--docs", metavar="NAME", action="append",
                      help="answer from this document collection (`llamadesk docs list`); "
                           "repeat for more than one")
    chat.add_argument("--attach", metavar="FILE", type=Path, action="append",
                      help="a document for this question: whole if it fits the context, "
                           "else its best passages; repeat for more than one")
    chat.add_argument("message", help="what to say")
    # Not optional: a broken import must be reported, not quietly drop the command.
    from llamadesk.cli import chats as cli_chats
    from llamadesk.cli import connections as cli_connections
    from llamadesk.cli import docs as cli_docs
    from llamadesk.cli import models as cli_models
    from llamadesk.cli import serve as cli_serve
    from llamadesk.cli import store as cli_store

    cli_models.add_models_parser(sub)
    cli_chats.add_chats_parser(sub)
    cli_docs.add_docs_parser(sub)
    cli_connections.add_connections_parser(sub)
    cli_serve.add_serve_parser(sub)
    cli_store.add_store_parser(sub)
    return parser


def _load_engine(model_id: str | None = None,
                 n_ctx: int | None = None) -> tuple[ChatBackend, ModelSpec]:
    """Load ``model_id`` (None: the app's default model) into a fresh engine, or connect
    to the remote server that serves it."""
    from llamadesk.core.registry import ModelRegistry
    from llamadesk.services.engine import LlamaEngine, install_llama_log_routing
    from llamadesk.services.fit_check import resolve_gpu_layers
    from llamadesk.services.job_runner import backend_for
    from llamadesk.services.resolver import make_resolver

    install_llama_log_routing()
    paths = app_paths()
    settings = load_settings(paths.settings_file)
    resolve = make_resolver(lambda: settings, ModelRegistry(paths))
    try:
        spec = resolve(model_id, n_ctx)
    except LookupError as exc:
        raise CliError(str(exc)) from exc

    def load_local(model: ModelSpec | None) -> ChatBackend:
        assert model is not None
        engine = LlamaEngine()
        # GPU offload "Automatic" becomes a layer count here, where the model is loaded.
        engine.load(model.path, resolve_gpu_layers(model.options, model.path),
                    model_id=model.model_id, fallback_format=model.fallback_format,
                    name=model.name)
        return engine

    return backend_for(spec, load_local), spec


def self_test() -> int:
    """Prove an install works: verify and load the bundled model, answer a fixed prompt."""
    from llamadesk.core.conversation import Message
    from llamadesk.services.engine_errors import EngineError
    from llamadesk.services.engine_types import GenerationRequest
    from llamadesk.services.job_runner import run_job
    from llamadesk.services.jobs import GenerateJob

    started = time.perf_counter()
    try:
        bundled.locate(verify_hash=True)
        engine, _spec = _load_engine(bundled.manifest().id, 2048)
    except (bundled.BundledModelError, EngineError) as exc:
        raise CliError(f"self-test failed: {exc}") from exc
    question = Message(id=0, conversation_id=0, parent_id=None, role=Role.USER,
                       content=SELF_TEST_PROMPT, created_at=time.time())
    params = SamplingParams(temperature=0.0, max_tokens=48, seed=1)
    job = GenerateJob(1, GenerationRequest((question,), "", params), None, threading.Event())
    try:
        end = run_job(job, lambda: engine, _Printer(echo=False))
    finally:
        engine.unload()
    if end.result is None:
        raise CliError(f"self-test failed: {end.reason}")
    result = end.result
    if not result.text.strip():
        raise CliError("self-test failed: the model returned an empty answer")
    tps = result.stats.tokens_per_s or 0.0
    print(f"Q: {SELF_TEST_PROMPT}")
    print(f"A: {result.text.strip()}")
    print(f"self-test ok: {result.stats.completion_tokens} tokens at {tps:.1f} tokens/s, "
          f"{time.perf_counter() - started:.2f} s in all")
    return EXIT_OK


def _model_list(text: str) -> list[str]:
    """``A,B`` -> ["A", "B"]: at least two models to compare."""
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if len(ids) < 2:
        raise argparse.ArgumentTypeError("name at least two models, separated by commas")
    return ids


def chat(args: argparse.Namespace) -> int:
    """Send one message, stream the reply to stdout, store both (the window's send path:
    ``ChatSession``). With ``--compare``, each model answers in turn, one loaded at a time,
    and the answers are stored as versions of the same reply."""
    from llamadesk.cli.store import open_cli_store
    from llamadesk.services.chat_session import ChatSession

    paths = app_paths().ensure()
    try:
        store = open_cli_store(paths)
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    try:
        conversation = _conversation_for(args, store, paths.settings_file)
        params = conversation.params
        if args.max_tokens:
            params = SamplingParams.from_dict({**params.to_dict(),
                                               "max_tokens": args.max_tokens})
        session = ChatSession(store)
        found = _search_docs(store, args.docs, args.message)
        if args.compare:
            return _compare(session, conversation, params, args.compare, args.message,
                            found)
        engine, spec = _load_for_chat(args.model or conversation.model_id, params.n_ctx)
        if args.model:  # only once it loaded: a typo must not stick to the chat
            store.update_conversation(conversation.id, model_id=args.model)
        user = session.add_question(conversation.id, args.message).message
        store.set_state(LAST_CONVERSATION_KEY, str(conversation.id))
        print(f"[conversation {conversation.id}]", file=sys.stderr)
        passages = _fit_docs(found, spec.options.n_ctx, params.max_tokens, args.attach,
                             args.message)
        result = _answer(engine, session, conversation, user, params, spec.model_id,
                         passages)
        return _exit_status(result)
    finally:
        store.close()


def _search_docs(store: ConversationStore, names: list[str] | None,
                 question: str) -> list[Passage]:
    """The passages of the collections ``names`` that match ``question`` best (before a
    model loads, so an unknown collection fails at once)."""
    if not names:
        return []
    from llamadesk.cli.docs import query_vector
    from llamadesk.core.documents.index import CollectionError, DocumentIndex

    index = DocumentIndex(store)
    try:
        found = index.search(names, question, k=DOCS_K,
                             query_vector=query_vector(index, names, question))
    except CollectionError as exc:
        raise CliError(str(exc)) from exc
    if not found:
        print(f"[no passage of {', '.join(names)} matches; answering without documents]",
              file=sys.stderr)
    return found


def _fit_docs(found: list[Passage], n_ctx: int, max_tokens: int,
              attached: list[Path] | None = None, question: str = "") -> list[Passage]:
    """The attached files' passages (whole when they fit), then the best passages of the
    collections, within the room the model's context has beside the chat."""
    from llamadesk.core.documents.attach import attachment_passages
    from llamadesk.core.documents.quoting import fit_passages, passage_room

    room = passage_room(n_ctx, max_tokens)
    first: list[Passage] = []
    if attached:
        first, failed = attachment_passages(attached, question, room)
        for path, reason in failed:
            print(f"[not attached: {path}: {reason}]", file=sys.stderr)
        if failed and not first:
            raise CliError("none of the attached files could be read")
    return fit_passages([*first, *found], room)


def _load_for_chat(model_id: str | None, n_ctx: int) -> tuple[ChatBackend, ModelSpec]:
    """The backend that answers with ``model_id``; a remote one says where text goes."""
    from llamadesk.services.engine_errors import EngineError

    try:
        engine, spec = _load_engine(model_id, n_ctx)
    except EngineError as exc:
        raise CliError(str(exc)) from exc
    where = engine.capabilities()
    if where.remote:
        print(f"[remote: your messages in this chat are sent to {where.destination}]",
              file=sys.stderr)
    return engine, spec


def _answer(engine: ChatBackend, session: ChatSession, conversation: Conversation,
            user: Message, params: SamplingParams,
            model_id: str | None = None, passages: Sequence[Passage] = ()) -> GenerationResult:
    """Stream a reply to the branch ending at ``user`` and store it after ``user``, with
    the document ``passages`` it was given (then a ``Sources:`` line); Ctrl+C stops it
    (what was written is kept). The engine is unloaded afterwards."""
    from llamadesk.services.job_runner import run_job
    from llamadesk.services.jobs import GenerateJob

    cancel = threading.Event()

    def on_sigint(_signum: int, _frame: FrameType | None) -> None:
        cancel.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        request = session.request(conversation, params, on_context=session.note_context,
                                  passages=passages)
        end = run_job(GenerateJob(1, request, None, cancel), lambda: engine, _Printer())
    finally:
        signal.signal(signal.SIGINT, previous)
        engine.unload()
    if end.result is None:
        raise CliError(end.reason)
    result = end.result
    sys.stdout.write("\n")
    if session.store_reply(conversation.id, user.id, result, model_id, passages) and passages:
        from llamadesk.core.documents.quoting import sources_line

        print(sources_line(passages))
    if result.context is not None and result.context.dropped:
        print(f"[{result.context.dropped} older messages are beyond the model's memory; "
              "it sees the rest]", file=sys.stderr)
    stats = result.stats
    count = stats.completion_tokens
    tokens = "? tokens" if count is None else f"{count} tokens"
    rate = f", {stats.tokens_per_s:.1f} tokens/s" if stats.tokens_per_s else ""
    print(f"[{tokens}{rate}{', stopped' if result.cancelled else ''}]", file=sys.stderr)
    if stats.finish_reason == FinishReason.INTERRUPTED:
        print(f"[interrupted: {stats.finish_detail}; the partial reply is kept]",
              file=sys.stderr)
    return result


def _exit_status(result: GenerationResult) -> int:
    """OK for a whole reply, FAILED for one a server cut off, INTERRUPTED for one
    stopped by Ctrl+C."""
    if result.stats.finish_reason == FinishReason.INTERRUPTED:
        return EXIT_FAILED
    return EXIT_INTERRUPTED if result.cancelled else EXIT_OK


def _compare(session: ChatSession, conversation: Conversation, params: SamplingParams,
             model_ids: list[str], text: str, found: list[Passage]) -> int:
    """Each model answers ``text`` in turn; every answer is a version of one reply."""
    store = session.store
    user = session.add_question(conversation.id, text).message
    store.set_state(LAST_CONVERSATION_KEY, str(conversation.id))
    print(f"[conversation {conversation.id}]", file=sys.stderr)
    for number, model_id in enumerate(model_ids, 1):
        print(f"[{number}/{len(model_ids)} {model_id}: loading…]", file=sys.stderr)
        engine, spec = _load_for_chat(model_id, params.n_ctx)
        # Each model answers the question, not the previous model's answer.
        store.set_leaf(conversation.id, user.id)
        print(f"## {model_id}")
        passages = _fit_docs(found, spec.options.n_ctx, params.max_tokens)
        if _answer(engine, session, conversation, user, params, model_id,
                   passages).cancelled:
            return EXIT_INTERRUPTED
    print(f"[{len(model_ids)} versions of the reply stored; the window's Compare view "
          "shows them side by side]", file=sys.stderr)
    return EXIT_OK


def _conversation_for(args: argparse.Namespace, store: ConversationStore,
                      settings_file: Path) -> Conversation:
    """The conversation to continue: the one asked for, else the last one used (unless
    ``--new``), else a new one with the default settings."""
    if args.conversation is not None:
        conversation = store.get_conversation(args.conversation)
        if conversation is None:
            raise CliError(f"there is no conversation {args.conversation} "
                           "(the window's sidebar lists them)")
        return conversation
    last = store.get_state(LAST_CONVERSATION_KEY)
    if not args.new and last is not None and last.isdigit():
        conversation = store.get_conversation(int(last))
        if conversation is not None:
            return conversation
    settings = load_settings(settings_file)
    return store.create_conversation(system_prompt=settings.default_system_prompt,
                                     params=settings.defaults)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


class _Printer:
    """The job runner's sink for a reply on the command line: its text to stdout as it
    comes (unless ``echo`` is off); the end is read from what ``run_job`` returns."""

    def __init__(self, echo: bool = True) -> None:
        self._echo = echo

    def started(self) -> None:
        pass

    def text(self, piece: str) -> None:
        if self._echo:
            _write(piece)

    def ended(self, end: JobEnd) -> None:
        pass


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
    try:
        parser = _parser()
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


def _run(args: argparse.Namespace, crash: str | None) -> int:
    """Run the command ``args`` names; ``crash`` says that the last run crashed (the
    window shows it, a command prints it as one line on stderr)."""
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
            return self_test()
        if args.command == "chat":
            return chat(args)
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
        from llamadesk.ui.app import run_gui

        return run_gui(screenshot=args.screenshot, crash=crash)
    except CliError as exc:
        return fail(exc, log=log)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
