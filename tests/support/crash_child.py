"""``python crash_child.py segfault|abort ARGS…``: the ``llamadesk`` command with ARGS,
started the real way (``cli.main``), that dies natively where ``chat`` would load the model —
as llama.cpp does on a bad pointer (SIGSEGV) or a failed GGML_ASSERT (abort())."""

from __future__ import annotations

import ctypes
import os
import sys

from llamadesk.cli import chat as cli_chat
from llamadesk.cli import main as cli


def crash_by_segfault(*_args: object, **_kwargs: object) -> None:
    ctypes.string_at(0)  # reads address 0


def crash_by_abort(*_args: object, **_kwargs: object) -> None:
    os.abort()


if __name__ == "__main__":
    how, argv = sys.argv[1], sys.argv[2:]
    cli_chat.load_engine = crash_by_segfault if how == "segfault" else crash_by_abort  # type: ignore[assignment]
    sys.exit(cli.main(argv))
