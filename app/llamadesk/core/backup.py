"""Every conversation to a folder (a backup), and such a folder back.

A backup folder holds one JSON document per conversation (``core/chat_json.py``) and an
``index.json`` that lists them. The index is written last, so a folder without one is
an unfinished backup; its documents can still be imported one by one. Importing a
folder imports each file in its own transaction: a broken file is refused whole and
the others still come in.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llamadesk import __version__
from llamadesk.core.chat_json import (
    ChatDocumentError,
    conversation_json,
    import_document,
    read_document,
)
from llamadesk.core.conversation import Conversation
from llamadesk.core.export import file_name_for, write_text_atomically
from llamadesk.core.store import ConversationStore, StoreError

log = logging.getLogger(__name__)

INDEX_FILE = "index.json"
BACKUP_FORMAT = "llamadesk-backup"
BACKUP_FORMAT_VERSION = 1
#: An index is a short list of names; anything bigger is not one of ours.
MAX_INDEX_BYTES = 16 * 1024 * 1024


class BackupError(Exception):
    """A backup that cannot be written, or a folder that cannot be read as one."""


@dataclass(frozen=True)
class BackupResult:
    """What ``export_all`` wrote: the files per conversation id, and the conversations
    that could not be exported, with the reason."""

    folder: Path
    written: dict[int, Path] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportedFile:
    """A file that became a conversation."""

    path: Path
    conversation: Conversation
    message_count: int


@dataclass(frozen=True)
class RefusedFile:
    """A file that was not imported, and why (nothing of it was stored)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class ImportSummary:
    """What a folder import did."""

    imported: list[ImportedFile] = field(default_factory=list)
    refused: list[RefusedFile] = field(default_factory=list)


def export_all(store: ConversationStore, folder: Path) -> BackupResult:
    """Write every conversation into ``folder`` (created; it must be new or empty, so a
    backup never overwrites other files), one document each, then ``index.json``."""
    if folder.exists():
        if not folder.is_dir():
            raise BackupError(f"{folder} is a file; name a new or empty folder")
        if any(folder.iterdir()):
            raise BackupError(f"{folder} is not empty; name a new or empty folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create {folder}: {exc.strerror or exc}") from exc
    result = BackupResult(folder)
    entries: list[dict[str, Any]] = []
    for conversation in store.list_conversations():
        name = f"{conversation.id:05d} " + file_name_for(conversation.title, ".json")
        try:
            text = conversation_json(store, conversation.id)
        except (ChatDocumentError, LookupError) as exc:  # damaged, or deleted meanwhile
            result.failed[conversation.id] = str(exc)
            continue
        try:
            write_text_atomically(folder / name, text)
        except OSError as exc:
            raise BackupError(f"cannot write {folder / name}: {exc.strerror or exc}") from exc
        result.written[conversation.id] = folder / name
        entries.append({"file": name, "title": conversation.title,
                        "updated_at": conversation.updated_at})
    index = {"format": BACKUP_FORMAT, "format_version": BACKUP_FORMAT_VERSION,
             "app_version": __version__, "exported_at": time.time(),
             "conversations": entries}
    try:
        write_text_atomically(folder / INDEX_FILE,
                              json.dumps(index, ensure_ascii=False, indent=1) + "\n")
    except OSError as exc:
        raise BackupError(f"cannot write {folder / INDEX_FILE}: {exc.strerror or exc}") from exc
    return result


def backup_files(folder: Path) -> list[Path]:
    """The documents of a backup folder, in the index's order; without an index, every
    ``.json`` file in name order. Raises BackupError for a damaged or newer index and
    for an index that names files outside the folder."""
    if not folder.is_dir():
        raise BackupError(f"{folder} is not a folder")
    index_path = folder / INDEX_FILE
    if not index_path.exists():
        return sorted(p for p in folder.glob("*.json") if p.is_file())
    try:
        if index_path.stat().st_size > MAX_INDEX_BYTES:
            raise BackupError(f"{index_path} is too big to be a backup index")
        index = json.loads(index_path.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise BackupError(f"the backup's {INDEX_FILE} is damaged ({exc}); nothing was "
                          "imported") from exc
    except OSError as exc:
        raise BackupError(f"cannot read {index_path}: {exc.strerror or exc}") from exc
    if not isinstance(index, dict) or index.get("format") != BACKUP_FORMAT:
        raise BackupError(f"{index_path} is not a LlamaDesk backup index")
    version = index.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BackupError(f"{index_path}: format_version must be a whole number from 1")
    if version > BACKUP_FORMAT_VERSION:
        raise BackupError(f"this backup was made by a newer LlamaDesk (format {version}; "
                          f"this version reads format {BACKUP_FORMAT_VERSION}). Update the "
                          "app to import it.")
    entries = index.get("conversations")
    if not isinstance(entries, list):
        raise BackupError(f"{index_path}: conversations must be a list")
    files: list[Path] = []
    for n, entry in enumerate(entries):
        name = entry.get("file") if isinstance(entry, dict) else None
        # Only plain names: an index must not lead the import outside its folder.
        if not isinstance(name, str) or not name or Path(name).name != name or name in {
                ".", ".."}:
            raise BackupError(f"{index_path}: conversations[{n}].file must be the name of a "
                              "file in the folder")
        files.append(folder / name)
    return files


def import_folder(store: ConversationStore, folder: Path) -> ImportSummary:
    """Import every document of a backup folder as new conversations, each file whole
    or not at all; the summary says what came in and what was refused, and why."""
    summary = ImportSummary()
    for path in backup_files(folder):
        try:
            document = read_document(path)
            conversation = import_document(store, document)
        except FileNotFoundError:
            summary.refused.append(RefusedFile(path, "the file is missing"))
        except ChatDocumentError as exc:
            summary.refused.append(RefusedFile(path, str(exc)))
        except OSError as exc:
            summary.refused.append(RefusedFile(path, f"cannot read it: {exc.strerror or exc}"))
        except StoreError as exc:  # a full disk, a locked database: this file is not in
            summary.refused.append(RefusedFile(path, str(exc)))
        else:
            summary.imported.append(ImportedFile(path, conversation, len(document.messages)))
    log.info("imported %d chats from a backup folder, refused %d",
             len(summary.imported), len(summary.refused))
    return summary
