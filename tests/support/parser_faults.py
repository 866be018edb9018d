"""Parser work for the document reader's child process that fails on purpose, by file
name: ``crash`` ends the child with SIGSEGV (as a crash inside a native parser would),
``hang`` never returns. Any other file is read by the real ``parse_and_chunk``. Imported
by name in the child (spawn), so it lives here, on the tests' import path."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from llamadesk.core.documents.chunker import Chunk
from llamadesk.core.documents.parse_process import parse_and_chunk


def faulty_parse_and_chunk(path: Path, max_tokens: int) -> list[Chunk]:
    """``parse_and_chunk``, except for files named to crash or hang the child."""
    if "crash" in path.name:
        os.kill(os.getpid(), signal.SIGSEGV)
    if "hang" in path.name:
        time.sleep(3600)
    return parse_and_chunk(path, max_tokens)
