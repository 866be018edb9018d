"""``llamadesk chat``: send one message and stream the answer here (the window's send path).

    llamadesk chat [--new | --conversation ID] [--model ID | --compare A,B]
                   [--max-tokens N] [--docs NAME ...] [--attach FILE ...] "message"

The reply is stored with the question; Ctrl+C stops it and keeps what was written
(exit 130). ``--docs`` answers from a document collection (cli/docs.py).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from llamadesk.cli.errors import CliError
from llamadesk.core.conversation import Conversation, FinishReason, SamplingParams
from llamadesk.core.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from llamadesk.core.paths import app_paths
from llamadesk.core.settings import load_settings
from llamadesk.core.store import LAST_CONVERSATION_KEY, ConversationStore, StoreError

if TYPE_CHECKING:
    from llamadesk.core.conversation import Message
    from llamadesk.core.documents.index import Passage
    from llamadesk.services.backend import ChatBackend
    from llamadesk.services.chat_session import ChatSession
    from llamadesk.services.engine_types import GenerationResult
    from llamadesk.services.jobs import JobEnd, ModelSpec

#: Passages a ``chat --docs`` question retrieves before fitting them to the context.
DOCS_K = 5


def add_chat_parser(subparsers: Any) -> None:
    """Add the ``chat`` command to the ``llamadesk`` parser."""
    chat = subparsers.add_parser("chat", help="send one message and stream the answer here")
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


def load_engine(model_id: str | None = None,
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
        engine, spec = load_engine(model_id, n_ctx)
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
        end = run_job(GenerateJob(1, request, None, cancel), lambda: engine, Printer())
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


class Printer:
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
