"""Remember which GGUF files passed ``validate_gguf``, so a model loaded at every launch
is walked once, not every time (the bundled model's header: ~40-53 ms of CPU on the
way to the first token).

A file counts as already checked only while its device, inode, size, modification
time and change time are what they were when it passed, and the check itself is the
same (``CHECK_VERSION``). Any write to the file changes its change time, which no
program can set back, so a file replaced or altered in place is walked again. The
record is a small JSON file in the app's cache folder; a missing or unreadable one
just means every file is checked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from llamadesk.core.gguf_validate import validate_gguf

#: Raised whenever ``validate_gguf`` learns to refuse something it used to accept, so
#: that files checked by the older rules are walked again.
CHECK_VERSION = 1
#: Kept per file; older entries are dropped beyond this (a handful of models in use).
MAX_ENTRIES = 32
RECORD_NAME = "gguf-checked.json"


def _identity(path: Path) -> list[int]:
    st = path.stat()
    return [CHECK_VERSION, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _read(record: Path) -> dict[str, list[int]]:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def validate_gguf_once(path: str | os.PathLike[str], cache_dir: Path) -> bool:
    """Validate the GGUF at ``path`` (raises ``GGUFValidationError`` as
    ``validate_gguf`` does) unless it passed before and is unchanged since; returns
    whether it was walked this time."""
    file = Path(path).resolve()
    record = cache_dir / RECORD_NAME
    try:
        before = _identity(file)
    except OSError:
        before = None  # validate_gguf says why it cannot be read
    known = _read(record)
    if before is not None and known.get(str(file)) == before:
        return False
    validate_gguf(file)
    try:
        after = _identity(file)
    except OSError:
        return True
    if after != before:  # changed while it was read: not the file that passed
        return True
    known.pop(str(file), None)
    known[str(file)] = after  # newest last
    kept = dict(list(known.items())[-MAX_ENTRIES:])
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(f"{RECORD_NAME}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(kept), encoding="utf-8")
        os.replace(tmp, record)  # another process may write it too: whole files only
    except OSError:
        pass  # nothing is lost: the file is checked again next time
    return True
