"""``llamadesk chats …``: conversations from the terminal.

    llamadesk chats list                        one line per chat, starting with its id
    llamadesk chats show ID                     the branch on screen, readable
    llamadesk chats export ID [--format md|json] [-o FILE]
                                                Markdown (the branch on screen) or JSON
                                                (every branch); standard output by default
    llamadesk chats export --all -o FOLDER      every chat as JSON, plus an index (a backup)
    llamadesk chats import FILE|FOLDER          a JSON export, or a backup folder

Failures print one line on stderr and exit 1; usage errors exit 2. An import stores
each file whole or not at all.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from llamadesk.cli.errors import CliError, fail, os_reason, say
from llamadesk.cli.store import open_cli_store
from llamadesk.core.backup import BackupError, export_all, import_folder
from llamadesk.core.chat_json import (
    ChatDocumentError,
    conversation_json,
    import_document,
    read_document,
)
from llamadesk.core.conversation import Conversation, FinishReason, Message, Role
from llamadesk.core.exit_codes import EXIT_FAILED, EXIT_OK
from llamadesk.core.export import conversation_markdown, write_text_atomically
from llamadesk.core.paths import app_paths
from llamadesk.core.store import ConversationStore, StoreError

log = logging.getLogger("llamadesk.cli.chats")


def add_chats_parser(subparsers: Any) -> None:
    """Add the ``chats`` command and its subcommands to the ``llamadesk`` parser."""
    chats = subparsers.add_parser(
        "chats", help="list, show, export and import conversations",
        description="Conversations: list, show, export (Markdown or JSON, one or all) and "
                    "import.")
    sub = chats.add_subparsers(dest="chats_command", metavar="COMMAND", required=True)
    sub.add_parser("list", help="one line per chat: id, last change, messages, title")
    show = sub.add_parser("show", help="print a chat's branch on screen")
    show.add_argument("id", type=int, metavar="ID")
    export = sub.add_parser(
        "export", help="a chat as Markdown or JSON, or every chat to a folder",
        description="Export chat ID as Markdown (the branch on screen) or JSON (every "
                    "branch and version, settings and statistics: what import reads back). "
                    "With --all, every chat as JSON into a new or empty FOLDER.")
    export.add_argument("id", type=int, nargs="?", metavar="ID")
    export.add_argument("--all", action="store_true", help="every chat (needs -o FOLDER)")
    export.add_argument("--format", choices=["md", "json"], default=None,
                        help="md (default) or json; --all always writes json")
    export.add_argument("-o", "--output", type=Path, metavar="FILE|FOLDER",
                        help="where to write (default: standard output)")
    export.set_defaults(chats_usage=export.error)
    imp = sub.add_parser("import", help="import a JSON export or a backup folder as new chats")
    imp.add_argument("path", type=Path, metavar="FILE|FOLDER")


def run_chats(args: argparse.Namespace, out: TextIO | None = None,
              err: TextIO | None = None) -> int:
    """Run a ``chats`` subcommand; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    command: Callable[[ConversationStore, argparse.Namespace, TextIO, TextIO], int]
    command = _COMMANDS[args.chats_command]
    if args.chats_command == "export":
        _check_export_usage(args)
    try:
        store = open_cli_store(app_paths().ensure())
    except (StoreError, OSError) as exc:
        return _fail(args, str(exc), err)
    try:
        return command(store, args, out, err)
    except (CliError, ChatDocumentError, BackupError, LookupError) as exc:
        return _fail(args, str(exc), err)
    except BrokenPipeError:  # the reader went away (`| head`): nothing more to say
        return EXIT_FAILED
    except OSError as exc:
        return _fail(args, os_reason(exc), err)
    finally:
        store.close()


def _fail(args: argparse.Namespace, reason: str, err: TextIO) -> int:
    return fail(reason, err, log=log, during=f"chats {args.chats_command}")


def _check_export_usage(args: argparse.Namespace) -> None:
    usage: Callable[[str], None] = args.chats_usage
    if args.all:
        if args.id is not None:
            usage("give either a chat ID or --all, not both")
        if args.output is None:
            usage("--all needs -o FOLDER (a new or empty folder)")
        if args.format == "md":
            usage("--all writes JSON (what import reads back); leave out --format md")
    elif args.id is None:
        usage("give the ID of a chat (see `llamadesk chats list`), or --all")


def _conversation(store: ConversationStore, conversation_id: int) -> Conversation:
    conversation = store.get_conversation(conversation_id)
    if conversation is None:
        raise CliError(f"there is no conversation {conversation_id} "
                       "(`llamadesk chats list` lists them)")
    return conversation


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def _model_names() -> dict[str, str]:
    """Installed models' names by id, to show instead of ids; empty if the registry
    cannot be read (the ids are shown then)."""
    from llamadesk.core.registry import ModelRegistry, RegistryError

    try:
        return {m.id: m.name for m in ModelRegistry(app_paths()).models()}
    except (RegistryError, OSError, ValueError) as exc:
        log.warning("model names unavailable: %s", exc)
        return {}


# -- commands -----------------------------------------------------------------------------
def _list(store: ConversationStore, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    conversations = store.list_conversations()
    width = max((len(str(c.id)) for c in conversations), default=1)
    for c in conversations:
        count = len(store.messages(c.id))
        print(f"{c.id:<{width}}  {_stamp(c.updated_at)}  {count:>4} message"
              f"{'' if count == 1 else 's'}  {c.title}", file=out)
    return EXIT_OK


_NOTES = {FinishReason.STOPPED: "stopped", FinishReason.LENGTH: "cut at the token limit",
          FinishReason.INTERRUPTED: "interrupted"}


def _show(store: ConversationStore, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    conversation = _conversation(store, args.id)
    messages = store.messages(conversation.id)
    versions = store.version_counts(conversation.id)
    names = _model_names() if any(m.model_id for m in messages) else {}
    print(conversation.title, file=out)
    print(f"conversation {conversation.id}, started {_stamp(conversation.created_at)}, "
          f"{len(messages)} messages on screen", file=out)
    if conversation.system_prompt.strip():
        print(f"system prompt: {' '.join(conversation.system_prompt.split())}", file=out)
    for message in messages:
        print(f"\n{_heading(message, names, versions)}", file=out)
        print(message.content.rstrip(), file=out)
    return EXIT_OK


def _heading(message: Message, names: dict[str, str],
             versions: dict[int, tuple[int, int]]) -> str:
    if message.role == Role.USER:
        parts = ["You"]
    elif message.role == Role.ASSISTANT:
        parts = [names.get(message.model_id or "", message.model_id or "Assistant")]
        stats = message.stats
        if stats.tokens_per_s:
            parts.append(f"{stats.tokens_per_s:.1f} tokens/s")
        if stats.completion_tokens:
            parts.append(f"{stats.completion_tokens} tokens")
        note = _NOTES.get(stats.finish_reason) if stats.finish_reason else None
        if note:
            parts.append(note)
    else:
        parts = ["System"]
    if message.id in versions:
        position, count = versions[message.id]
        parts.append(f"version {position} of {count}")
    return "── " + " · ".join(parts) + " ──"


def _export(store: ConversationStore, args: argparse.Namespace, out: TextIO,
            err: TextIO) -> int:
    if args.all:
        result = export_all(store, args.output)
        for conversation_id, reason in sorted(result.failed.items()):
            say(f"conversation {conversation_id} was not exported: {reason}", err)
        print(f"exported {len(result.written)} chats to {result.folder}", file=err)
        return EXIT_FAILED if result.failed else EXIT_OK
    conversation = _conversation(store, args.id)
    if args.format == "json":
        text = conversation_json(store, conversation.id)
    else:
        text = conversation_markdown(conversation, store.messages(conversation.id),
                                     _model_names())
    if args.output is None:
        out.write(text)
        out.flush()
        return EXIT_OK
    if args.output.is_dir():
        raise CliError(f"{args.output} is a folder; name a file")
    write_text_atomically(args.output, text)
    print(f"exported conversation {conversation.id} to {args.output}", file=err)
    return EXIT_OK


def _import(store: ConversationStore, args: argparse.Namespace, out: TextIO,
            err: TextIO) -> int:
    path: Path = args.path
    if path.is_dir():
        summary = import_folder(store, path)
        for item in summary.imported:
            print(_imported_line(item.conversation, item.message_count, item.path), file=out)
        for refused in summary.refused:
            say(f"{refused.path.name} was not imported: {refused.reason}", err)
        print(f"imported {len(summary.imported)} chats, refused {len(summary.refused)}",
              file=err)
        return EXIT_FAILED if summary.refused else EXIT_OK
    try:
        document = read_document(path)
    except ChatDocumentError as exc:
        raise CliError(f"{path.name} was not imported: {exc}") from exc
    conversation = import_document(store, document)
    print(_imported_line(conversation, len(document.messages), path), file=out)
    return EXIT_OK


def _imported_line(conversation: Conversation, count: int, path: Path) -> str:
    return (f"{conversation.id}  {conversation.title}  ({count} message"
            f"{'' if count == 1 else 's'}, from {path.name})")


_COMMANDS: dict[str, Callable[[ConversationStore, argparse.Namespace, TextIO, TextIO], int]] = {
    "list": _list,
    "show": _show,
    "export": _export,
    "import": _import,
}
