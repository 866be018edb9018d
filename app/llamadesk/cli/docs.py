"""``llamadesk docs …``: document collections from the terminal.

    llamadesk docs add NAME PATH…          a new collection of files and folders, indexed
    llamadesk docs list                    one line per collection
    llamadesk docs update NAME             pick up changed, added and removed files
    llamadesk docs remove NAME             forget a collection (the files stay)
    llamadesk docs search NAME "question" [-k N]
                                           the best passages: rank, score, file, page

``llamadesk chat --docs NAME "question"`` answers from a collection (cli/chat.py). Failures
print one line on stderr and exit 1. A file that cannot be read is named with its reason
on stderr and the rest are indexed. Document text is printed, never logged.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from llamadesk.cli.errors import fail, say
from llamadesk.cli.store import open_cli_store
from llamadesk.core.documents.index import (
    CollectionError,
    DocumentIndex,
    UpdateReport,
)
from llamadesk.core.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from llamadesk.core.paths import app_paths
from llamadesk.core.store import StoreError

if TYPE_CHECKING:
    from llamadesk.services.doc_embedder import DocumentEmbedder

log = logging.getLogger("llamadesk.cli.docs")


def add_docs_parser(subparsers: Any) -> None:
    """Add the ``docs`` command and its subcommands to the ``llamadesk`` parser."""
    docs = subparsers.add_parser(
        "docs", help="collections of your documents to chat with",
        description="Collections of documents (PDF, DOCX, Markdown, reStructuredText, "
                    "HTML, text, source code) that `llamadesk chat --docs NAME` answers "
                    "from. Everything stays on this machine.")
    sub = docs.add_subparsers(dest="docs_command", metavar="COMMAND", required=True)
    add = sub.add_parser("add", help="a new collection of files and folders, indexed now")
    add.add_argument("name", metavar="NAME")
    add.add_argument("paths", type=Path, nargs="+", metavar="PATH")
    add.add_argument("--embed", metavar="MODEL",
                     help="also index by meaning with this installed embedding model "
                          "(hybrid search); without it, keyword search")
    sub.add_parser("list", help="one line per collection: name, files, passages, folders")
    update = sub.add_parser("update", help="pick up changed, added and removed files")
    update.add_argument("name", metavar="NAME")
    how = update.add_mutually_exclusive_group()
    how.add_argument("--embed", metavar="MODEL",
                     help="index by meaning with this embedding model from now on "
                          "(another model than before: every passage is embedded again)")
    how.add_argument("--keyword-only", action="store_true",
                     help="drop the collection's vectors: keyword search only")
    remove = sub.add_parser("remove", help="forget a collection (the files stay)")
    remove.add_argument("name", metavar="NAME")
    search = sub.add_parser("search", help="the passages that match a question best")
    search.add_argument("name", metavar="NAME")
    search.add_argument("question")
    search.add_argument("-k", type=int, default=5, metavar="N",
                        help="how many passages (default 5)")


def run_docs(args: argparse.Namespace, out: TextIO | None = None,
             err: TextIO | None = None) -> int:
    """Run a ``docs`` subcommand; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    command = _COMMANDS[args.docs_command]
    try:
        store = open_cli_store(app_paths().ensure())
    except (StoreError, OSError) as exc:
        return _fail(args, str(exc), err)
    try:
        return command(DocumentIndex(store), args, out, err)
    except (CollectionError, StoreError) as exc:
        return _fail(args, str(exc), err)
    except BrokenPipeError:
        return EXIT_FAILED
    finally:
        store.close()


def _fail(args: argparse.Namespace, reason: str, err: TextIO) -> int:
    log.error("docs %s failed", args.docs_command)  # a reason may quote a file's name
    return fail(reason, err)


def _add(index: DocumentIndex, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    embedder = _embedder(args.embed) if args.embed else None  # a bad model: nothing made
    if embedder is not None:
        embedder.close()
    index.add(args.name, args.paths)
    return _update(index, args, out, err)


def _update(index: DocumentIndex, args: argparse.Namespace, out: TextIO,
            err: TextIO) -> int:
    if getattr(args, "keyword_only", False):
        index.set_embedding(args.name, None)
    model_id = args.embed or index.get(args.name).embed_model
    embedder = _embedder(model_id) if model_id else None
    cancel = threading.Event()
    started = time.monotonic()
    try:
        if embedder is not None:
            index.set_embedding(args.name, embedder.model_id, _dimension(embedder))
        report = index.update(args.name, progress=_progress(err, started), cancel=cancel,
                              embed=embedder.documents if embedder else None)
    except KeyboardInterrupt:  # between files' transactions: what was done is kept
        cancel.set()
        print(file=err)  # end the progress line
        say("stopped; `llamadesk docs update` goes on later", err)
        return EXIT_INTERRUPTED
    finally:
        if embedder is not None:
            embedder.close()
    _report(index, args.name, report, out, err)
    return EXIT_OK


def _embedder(model_id: str) -> DocumentEmbedder:
    """The installed model ``model_id`` as an embedder (its own llama.cpp context)."""
    from llamadesk.core.catalog import embedding_entry_for
    from llamadesk.core.registry import ModelRegistry
    from llamadesk.core.settings import load_settings
    from llamadesk.services.doc_embedder import DocumentEmbedder
    from llamadesk.services.engine import install_llama_log_routing
    from llamadesk.services.resolver import make_resolver

    install_llama_log_routing()
    paths = app_paths()
    settings = load_settings(paths.settings_file)
    try:
        spec = make_resolver(lambda: settings, ModelRegistry(paths))(model_id, 512)
    except LookupError as exc:
        raise CollectionError(str(exc)) from exc
    if spec.connection is not None:
        raise CollectionError("documents are embedded on this machine: name an installed "
                              "model, not a remote one")
    return DocumentEmbedder(spec.path, spec.model_id, settings.hardware.threads(),
                            embedding_entry_for(spec.model_id))


def _dimension(embedder: DocumentEmbedder) -> int:
    from llamadesk.services.engine_errors import EngineError

    try:
        return embedder.dim
    except EngineError as exc:  # the wrong file for a catalog model: nothing is changed
        raise CollectionError(str(exc)) from exc


def query_vector(index: DocumentIndex, names: list[str], question: str
                 ) -> list[float] | None:
    """The question embedded by the collections' model, when they have one (the first
    named collection's model decides; the others' vectors must match it)."""
    models = {index.get(n).embed_model for n in names} - {None}
    if not models:
        return None
    if len(models) > 1:
        raise CollectionError("these collections use different embedding models; "
                              "search them one at a time")
    embedder = _embedder(str(models.pop()))
    try:
        return embedder.query(question)
    finally:
        embedder.close()


def _progress(err: TextIO, started: float) -> Callable[[int, int, str], None]:
    def show(done: int, total: int, _path: str) -> None:
        if err.isatty():
            spent = time.monotonic() - started
            left = f", about {spent / done * (total - done):.0f} s left" if done else ""
            print(f"\r[{done}/{total} files{left}]   ", end="", file=err, flush=True)
    return show


def _report(index: DocumentIndex, name: str, report: UpdateReport, out: TextIO,
            err: TextIO) -> None:
    if err.isatty():
        print("\r", end="", file=err)
    for path, reason in report.failed:
        print(f"skipped {path}: {reason}", file=err)
    if report.unembedded:
        print(f"{report.unembedded} passages have no vector yet (found by keywords "
              "only until the next update)", file=err)
    collection = index.get(name)
    print(f"{collection.name}: {len(report.added)} added, {len(report.changed)} changed, "
          f"{len(report.removed)} removed, {report.unchanged} unchanged, "
          f"{len(report.failed)} skipped; {collection.files} files, "
          f"{collection.chunks} passages", file=out)


def _list(index: DocumentIndex, _args: argparse.Namespace, out: TextIO, _err: TextIO) -> int:
    for c in index.collections():
        when = (time.strftime("%Y-%m-%d %H:%M", time.localtime(c.updated_at))
                if c.updated_at else "never")
        skipped = f", {c.failed} skipped" if c.failed else ""
        print(f"{c.name}\t{c.files} files{skipped}, {c.chunks} passages, updated {when}\t"
              f"{', '.join(c.roots)}", file=out)
    return EXIT_OK


def _remove(index: DocumentIndex, args: argparse.Namespace, out: TextIO,
            _err: TextIO) -> int:
    index.remove(args.name)
    print(f"removed the collection {args.name!r} (its files are untouched)", file=out)
    return EXIT_OK


def _search(index: DocumentIndex, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.k < 1:
        raise CollectionError("-k must be at least 1")
    hits = index.search(args.name, args.question, k=args.k,
                        query_vector=query_vector(index, [args.name], args.question))
    if not hits:
        print("no passage matches", file=err)
    for rank, hit in enumerate(hits, 1):
        text = " ".join(hit.text.split())
        print(f"{rank}. {hit.where}  (score {-hit.score:.2f})  {hit.path}\n   {text}",
              file=out)
    return EXIT_OK


_COMMANDS: dict[str, Callable[[DocumentIndex, argparse.Namespace, TextIO, TextIO], int]] = {
    "add": _add, "list": _list, "update": _update, "remove": _remove, "search": _search,
}
