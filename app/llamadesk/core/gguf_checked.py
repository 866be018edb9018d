"""Remember which GGUF files passed ``validate_gguf``, so a model loaded at every launch
is walked once, not every time (the bundled model's header: ~40-53 ms of CPU on the
way to the first token).

What ``validate_gguf`` decides depends only on the file's size and the bytes of its
header (everything before the tensor data: metadata, tensor infos, the padding). So a
file counts as already checked while its size is the same and a BLAKE2 digest of those
bytes, read again at every load (a few milliseconds for a 50,000-token vocabulary), is
the one recorded when it passed, under the same check (``CHECK_VERSION`` and the app's
version). No timestamp is trusted: a file rewritten in place with its times set back,
a copy under the same name, or a write within one clock tick is walked again. The
record is a small JSON file in the app's cache folder; a missing, unreadable or hostile
one just means every file is checked.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from llamadesk import __version__

#: Raised whenever ``validate_gguf`` learns to refuse something it used to accept, so
#: that files checked by the older rules are walked again (a test ties it to the
#: checking modules' sources; a new release of the app walks every file again anyway).
CHECK_VERSION = 1
#: Kept per file; older entries are dropped beyond this (a handful of models in use).
MAX_ENTRIES = 32
RECORD_NAME = "gguf-checked.json"
#: Headers larger than this are walked every time (no real model's is near it).
MAX_HEADER_BYTES = 256 << 20


def _check_id() -> str:
    return f"{CHECK_VERSION}/{__version__}"


def _header_digest(path: Path, length: int) -> str | None:
    """BLAKE2b of the file's first ``length`` bytes, or None if it cannot be read whole."""
    digest = hashlib.blake2b(digest_size=32)
    try:
        with path.open("rb") as fh:
            left = length
            while left > 0:
                chunk = fh.read(min(left, 1 << 20))
                if not chunk:
                    return None
                digest.update(chunk)
                left -= len(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _read(record: Path) -> dict[str, object]:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except Exception:  # any bad record (nested too deep, say) means starting afresh
        return {}
    return data if isinstance(data, dict) else {}


def _passed_before(file: Path, entry: object) -> bool:
    if not isinstance(entry, dict) or entry.get("check") != _check_id():
        return False
    size, length, digest = entry.get("size"), entry.get("header"), entry.get("blake2b")
    if not (isinstance(size, int) and isinstance(length, int) and isinstance(digest, str)):
        return False
    if not 0 < length <= min(size, MAX_HEADER_BYTES):
        return False
    try:
        if file.stat().st_size != size:
            return False
    except OSError:
        return False
    return _header_digest(file, length) == digest


def validate_gguf_once(path: str | os.PathLike[str], cache_dir: Path) -> bool:
    """Validate the GGUF at ``path`` (raises ``GGUFValidationError`` as
    ``validate_gguf`` does) unless the same header in a file of the same size passed
    before; returns whether it was walked this time."""
    file = Path(path).resolve()
    record = cache_dir / RECORD_NAME
    known = _read(record)
    if _passed_before(file, known.get(str(file))):
        return False
    # Only now: the reader with gguf's constants is ~12 ms of CPU that a remembered
    # file does not need (the early load and the engine's load check it after show).
    from llamadesk.core.gguf_validate import validate_gguf

    header = validate_gguf(file)
    length = header.data_offset
    if not 0 < length <= min(header.file_size, MAX_HEADER_BYTES):
        return True
    digest = _header_digest(file, length)
    try:
        unchanged = digest is not None and file.stat().st_size == header.file_size
    except OSError:
        unchanged = False
    if not unchanged:  # cut or grown while it was read: not the file that passed
        return True
    known.pop(str(file), None)
    known[str(file)] = {"check": _check_id(), "size": header.file_size,
                        "header": length, "blake2b": digest}  # newest last
    kept = dict(list(known.items())[-MAX_ENTRIES:])
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(f"{RECORD_NAME}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(kept), encoding="utf-8")
        os.replace(tmp, record)  # another process may write it too: whole files only
    except OSError:
        pass  # nothing is lost: the file is checked again next time
    return True
