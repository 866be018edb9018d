"""Parsing and chunking files in a child process, so the indexing thread never holds the
GIL for long.

pypdf is pure Python; parsing a PDF on a thread of the window's process holds the GIL
for tens of milliseconds at a time, and the GUI thread waits for it (a stalled frame).
``ParserProcess`` hands each file to a child started with ``spawn`` (no forked Qt or
SQLite state; ``multiprocessing.freeze_support`` in packaging/entry.py lets the frozen
program serve as the child) over a pipe, and gets its chunks back. The parent waits in
``poll`` (no GIL held), checking the cancel flag: Cancel stops the child at once and the
file stays as it was. A child that dies (a crash in a parser) or takes longer than
``timeout_s`` on one file is stopped, the file gets a reason in words, and a fresh child
reads the next one. A child that cannot start, or dies before it is ready, is given up
for the rest of the update: files are then parsed on the calling thread as before.
The pipe is a local socket pair between the two processes; the child opens nothing
else, and never logs a document's text.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # multiprocessing loads with the first file to read, not the window
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from llamadesk.core.documents.chunker import Chunk

log = logging.getLogger(__name__)

#: One file may take this long to parse and chunk before it is given up (seconds).
PARSE_TIMEOUT_S = 300.0
#: The child has this long to import the parsers and say it is ready (seconds).
START_TIMEOUT_S = 60.0
#: How much lower the child's scheduling priority is than the window's (POSIX nice).
CHILD_NICENESS = 10
#: How often the parent, waiting for the child, looks at the cancel flag (seconds).
POLL_S = 0.05

#: work(path, max_tokens) -> chunks: what the child runs per file (importable by name).
Work = Callable[[Path, int], "list[Chunk]"]


class ParseCancelledError(Exception):
    """Cancel was pressed while the child read a file; the file was left as it was."""


class ParserUnavailableError(Exception):
    """No child could be started here; parse on the calling thread instead."""


def parse_and_chunk(path: Path, max_tokens: int) -> list[Chunk]:
    """The child's work: ``parse_file`` then ``chunk_sections`` with estimated tokens."""
    from llamadesk.core.documents.chunker import chunk_sections, estimate_tokens
    from llamadesk.core.documents.parsers import parse_file

    return chunk_sections(parse_file(path), max_tokens=max_tokens,
                          count_tokens=estimate_tokens)


def read_chunks(path: Path, max_tokens: int, count_tokens: Callable[[str], int] | None,
                parse: Work | None) -> list[Chunk]:
    """``path``'s chunks: through ``parse`` (a ``ParserProcess``) when given and the
    tokens are estimated (a model's tokenizer stays in this process), else here."""
    from llamadesk.core.documents.chunker import chunk_sections, estimate_tokens
    from llamadesk.core.documents.parsers import parse_file

    if parse is not None and count_tokens is None:
        try:
            return parse(path, max_tokens)
        except ParserUnavailableError:
            pass  # read here, as without a child
    return chunk_sections(parse_file(path), max_tokens=max_tokens,
                          count_tokens=count_tokens or estimate_tokens)


def _serve(conn: Connection, work: Work) -> None:
    """The child's loop: (path, max_tokens) in; ("ok", chunks) or ("error", reason) out."""
    from llamadesk.core.documents.parsers import DocumentError

    if hasattr(os, "nice"):  # background work: on a busy machine the window goes first
        with contextlib.suppress(OSError):
            os.nice(CHILD_NICENESS)
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        path, max_tokens = request
        try:
            reply: tuple[str, object] = ("ok", work(Path(path), max_tokens))
        except DocumentError as exc:
            reply = ("error", str(exc))
        except FileNotFoundError:
            reply = ("error", "the file is gone (deleted or moved while indexing)")
        except OSError as exc:
            reply = ("error", f"cannot read the file: {exc.strerror or exc}")
        except Exception as exc:  # a parser bug: this file fails, the next one is read
            reply = ("error", f"the file could not be read ({type(exc).__name__})")
        conn.send(reply)


class ParserProcess:
    """Files into chunks in a child process, one at a time (one calling thread).

    ``__call__`` returns the chunks, or raises ``DocumentError`` (the file's reason:
    also for a crash or a timeout), ``ParseCancelledError`` or ``ParserUnavailableError``."""

    def __init__(self, *, cancel: threading.Event | None = None,
                 timeout_s: float = PARSE_TIMEOUT_S, work: Work = parse_and_chunk) -> None:
        self._cancel = cancel
        self._timeout_s = timeout_s
        self._work = work
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._unavailable = False

    @property
    def pid(self) -> int | None:
        """The running child's process id, if one runs."""
        return self._process.pid if self._process is not None else None

    def __call__(self, path: Path, max_tokens: int) -> list[Chunk]:
        from llamadesk.core.documents.parsers import DocumentError

        conn = self._started()
        try:
            conn.send((str(path), max_tokens))
            kind, value = self._answer(conn, self._timeout_s)
        except ParseCancelledError:
            self._stop()
            raise
        except TimeoutError as exc:
            self._stop()
            raise DocumentError(f"reading it took over {self._timeout_s:.0f} s; "
                                "skipped") from exc
        except (EOFError, OSError) as exc:
            self._stop()
            raise DocumentError("the document reader stopped while reading this file "
                                "(a crash in the parser); skipped") from exc
        if kind == "error":
            raise DocumentError(str(value))
        return value  # type: ignore[return-value]

    def close(self) -> None:
        """Ask the child to end, and make sure it has."""
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send(None)
        self._stop(grace_s=2.0)

    def _started(self) -> Connection:
        if self._unavailable:
            raise ParserUnavailableError("the document reader process could not start")
        if self._conn is not None:
            return self._conn
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        try:
            process = context.Process(target=_serve, args=(child, self._work), daemon=True,
                                      name="llamadesk-parser")
            process.start()
        except Exception as exc:  # no child here (a spawn refused, work not importable)
            self._unavailable = True
            log.warning("document reader process unavailable: %s", exc)
            raise ParserUnavailableError(str(exc)) from exc
        finally:
            child.close()
        self._process, self._conn = process, parent
        try:
            kind, _ = self._answer(parent, START_TIMEOUT_S)
        except ParseCancelledError:
            self._stop()
            raise
        except (TimeoutError, EOFError, OSError) as exc:
            self._stop()
            self._unavailable = True
            log.warning("document reader process did not start: %s", type(exc).__name__)
            raise ParserUnavailableError("the document reader process did not start") from exc
        if kind != "ready":
            self._stop()
            self._unavailable = True
            raise ParserUnavailableError("the document reader process did not start")
        return parent

    def _answer(self, conn: Connection, timeout_s: float) -> tuple[str, object]:
        """The child's next message; waits without the GIL, watching cancel and the
        child. EOFError when the child died, TimeoutError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not conn.poll(POLL_S):
            if self._cancel is not None and self._cancel.is_set():
                raise ParseCancelledError()
            if self._process is not None and not self._process.is_alive():
                if conn.poll(0):  # it answered, then ended
                    break
                raise EOFError("the child ended")
            if time.monotonic() > deadline:
                raise TimeoutError()
        answer: tuple[str, object] = conn.recv()
        return answer

    def _stop(self, grace_s: float = 0.0) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is not None:
            process.join(grace_s)
            if process.is_alive():
                process.kill()
                process.join(5.0)
            if not process.is_alive():
                process.close()
        if conn is not None:
            conn.close()


def check_reader() -> int:
    """Read a small Markdown file in a child process (``--self-test``: an installed or
    frozen build can start its document reader); the passages read. Raises
    ``ParserUnavailableError`` or ``DocumentError``."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="llamadesk-reader-") as folder:
        path = Path(folder) / "check.md"
        path.write_text("# Check\n\nThe document reader runs in its own process.\n",
                        encoding="utf-8")
        parser = ParserProcess(timeout_s=START_TIMEOUT_S)
        try:
            return len(parser(path, 256))
        finally:
            parser.close()
