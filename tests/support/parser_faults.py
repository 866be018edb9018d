"""Parser work for the document reader's child process that fails on purpose, by file
name: ``crash`` ends the child with SIGSEGV (as a crash inside a native parser would),
``hang`` never returns. Any other file is read by the real ``parse_and_chunk``. Imported
by name in the child (spawn), so it lives here, on the tests' import path.

The parsers' own libraries (pypdf, python-docx; ~1-2 s on a loaded machine) are imported
with this module, so in the child while it starts, under its start limit: a file's time
limit then counts only its reading, and a test can set a short one."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import docx  # noqa: F401  (imported here, before the child's first file; see above)
import pypdf  # noqa: F401

from llamadesk.core.documents.chunker import Chunk
from llamadesk.core.documents.parse_process import parse_and_chunk


def faulty_parse_and_chunk(path: Path, max_tokens: int) -> list[Chunk]:
    """``parse_and_chunk``, except for files named to crash or hang the child."""
    if "crash" in path.name:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "hang" in path.name:
        time.sleep(3600)
    return parse_and_chunk(path, max_tokens)
