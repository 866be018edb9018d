"""PySide6's support package, compiled once instead of at every launch.

Importing PySide6 runs its signature support (``shibokensupport``), whose ~130 KB of
Python source ship inside shiboken's library and are compiled from source by its own
importer at every import (14 files: 19-30 ms of the GUI thread's CPU here, before any
window). ``import_qt_core`` imports ``PySide6.QtCore`` with ``compile`` answering those
files from a cache of their code objects, keyed by each file's name and a digest of its
source and written once (the same code a compile gives; Python does the same for every
module it imports, in ``__pycache__``). Anything else compiled meanwhile is compiled as
usual, and an unreadable or damaged cache is compiled again and rewritten.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import logging
import marshal
import os
import sys
import types
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The names shiboken's importer compiles its embedded files under.
SUPPORT_PREFIX = "shibokensupport/"
_MAGIC = b"LDQTSUP1"
_DIGEST = 32


def cache_file(folder: Path) -> Path:
    """Where the code is kept: per interpreter build, since code objects are."""
    return folder / f"qt-support-{sys.implementation.cache_tag}-{sys.hexversion:x}.bin"


def _read(path: Path) -> dict[str, bytes]:
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    start = len(_MAGIC) + _DIGEST
    digest, payload = data[len(_MAGIC):start], data[start:]
    if (not data.startswith(_MAGIC)
            or hashlib.blake2b(payload, digest_size=_DIGEST).digest() != digest):
        return {}  # another format, or damaged: compiled again
    try:
        entries = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return {}
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, bytes)}


def _write(path: Path, entries: dict[str, bytes]) -> None:
    payload = marshal.dumps(entries)
    data = _MAGIC + hashlib.blake2b(payload, digest_size=_DIGEST).digest() + payload
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(data)
        os.replace(temporary, path)  # whole or not at all, also with two launches at once
    except OSError as exc:
        log.debug("PySide6's support code was not cached: %s", exc)
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def import_qt_core(folder: Path) -> list[str]:
    """Import ``PySide6.QtCore`` (once per process), its support package's code from the
    cache in ``folder``; returns the names of its files that were compiled (none: all
    cached, or PySide6 was imported already)."""
    compiled: list[str] = []
    if "PySide6.QtCore" in sys.modules:
        return compiled
    path = cache_file(folder)
    known = _read(path)
    used: dict[str, bytes] = {}
    real_compile = builtins.compile

    def compile_cached(source: Any, filename: Any, mode: str, *args: Any,
                       **kwargs: Any) -> Any:
        if (args or kwargs or mode != "exec" or not isinstance(filename, str)
                or not filename.startswith(SUPPORT_PREFIX)
                or not isinstance(source, (bytes, str))):
            return real_compile(source, filename, mode, *args, **kwargs)
        text = source.encode("utf-8") if isinstance(source, str) else source
        key = f"{filename}:{hashlib.blake2b(text, digest_size=16).hexdigest()}"
        kept = known.get(key)
        if kept is not None:
            try:
                code = marshal.loads(kept)
            except (EOFError, ValueError, TypeError):
                code = None
            if isinstance(code, types.CodeType):
                used[key] = kept
                return code
        compiled.append(filename)
        code = real_compile(source, filename, mode)
        used[key] = marshal.dumps(code)
        return code

    builtins.compile = compile_cached
    try:
        import PySide6.QtCore  # noqa: F401
    finally:
        builtins.compile = real_compile
    if compiled and used:
        _write(path, used)
    return compiled
