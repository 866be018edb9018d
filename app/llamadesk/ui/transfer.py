"""Chats in and out of the window: export one chat (Markdown or JSON), every chat to a
folder (a backup), and import a JSON file or a backup folder (File menu, or dropped
on the window). The work is core's (``export.py``, ``chat_json.py``, ``backup.py``);
this part asks where, and says what happened."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QMimeData, QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from llamadesk.core.backup import BackupError, export_all, import_folder
from llamadesk.core.chat_json import ChatDocumentError, conversation_json, import_file
from llamadesk.core.conversation import Conversation
from llamadesk.core.export import conversation_markdown, file_name_for, write_text_atomically
from llamadesk.core.store import StoreError
from llamadesk.ui.context import AppContext

log = logging.getLogger(__name__)

JSON_FILTER = "LlamaDesk chat (*.json)"
MARKDOWN_FILTER = "Markdown (*.md)"
#: At most this many refused files are named in the banner; the log has them all.
REFUSED_SHOWN = 3


def dropped_paths(mime: QMimeData) -> list[Path]:
    """The local JSON files and folders in a drag, in order (nothing else can be
    imported)."""
    paths = []
    for url in mime.urls() if mime.hasUrls() else []:
        if not url.isLocalFile():
            continue
        path = Path(url.toLocalFile())
        if path.is_dir() or path.suffix.lower() == ".json":
            paths.append(path)
    return paths


class ChatTransfer(QObject):
    """Export and import for the window.

    Signals:
        imported(Conversation): a chat came in (once per chat).
        problem(str): what went wrong, in words (nothing was changed by it).
        notice(str): what was done, for the status bar.
    """

    imported = Signal(object)
    problem = Signal(str)
    notice = Signal(str)

    def __init__(self, ctx: AppContext, parent: QWidget) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._parent = parent

    # -- export ----------------------------------------------------------------------------
    def export_markdown(self, conversation: Conversation) -> Path | None:
        """Save the chat's branch on screen as Markdown, where the user says."""
        path = self._save_path(conversation, ".md", "Export chat as Markdown", MARKDOWN_FILTER)
        if path is None:
            return None
        text = conversation_markdown(conversation, self._ctx.store.messages(conversation.id),
                                     self._ctx.names.as_dict())
        return self._write(path, text)

    def export_json(self, conversation: Conversation) -> Path | None:
        """Save the whole chat (every branch and version, settings, statistics) as JSON."""
        path = self._save_path(conversation, ".json", "Export chat as JSON", JSON_FILTER)
        if path is None:
            return None
        try:
            text = conversation_json(self._ctx.store, conversation.id)
        except (ChatDocumentError, LookupError) as exc:
            self.problem.emit(f"The chat could not be exported: {exc}")
            return None
        return self._write(path, text)

    def export_all(self, folder: Path | None = None) -> Path | None:
        """Write every chat into a new or empty folder the user picks (a backup)."""
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(
                self._parent, "Back up every chat into a new or empty folder", str(Path.home()))
            if not chosen:
                return None
            folder = Path(chosen)
        try:
            result = export_all(self._ctx.store, folder)
        except BackupError as exc:
            self.problem.emit(f"The backup was not made: {exc}")
            return None
        if result.failed:
            reasons = "; ".join(f"chat {cid}: {why}" for cid, why in
                                list(result.failed.items())[:REFUSED_SHOWN])
            self.problem.emit(f"{len(result.failed)} chat(s) could not be backed up "
                              f"({reasons}). The others are in {folder}.")
        self.notice.emit(f"Backed up {len(result.written)} chats to {folder}")
        return folder

    def _save_path(self, conversation: Conversation, suffix: str, title: str,
                   file_filter: str) -> Path | None:
        suggested = str(Path.home() / file_name_for(conversation.title, suffix))
        path, _filter = QFileDialog.getSaveFileName(self._parent, title, suggested,
                                                    file_filter)
        return Path(path) if path else None

    def _write(self, path: Path, text: str) -> Path | None:
        try:
            write_text_atomically(path, text)
        except OSError as exc:
            self.problem.emit(f"The chat could not be exported to {path}: "
                              f"{exc.strerror or exc}")
            return None
        self.notice.emit(f"Exported to {path}")
        return path

    # -- import ----------------------------------------------------------------------------
    def import_file_dialog(self) -> list[Conversation]:
        """Ask for exported chats (JSON) and import them."""
        paths, _filter = QFileDialog.getOpenFileNames(self._parent, "Import chats",
                                                      str(Path.home()), JSON_FILTER)
        return self.import_paths([Path(p) for p in paths])

    def import_folder_dialog(self) -> list[Conversation]:
        """Ask for a backup folder and import every chat in it."""
        folder = QFileDialog.getExistingDirectory(self._parent, "Import a backup folder",
                                                  str(Path.home()))
        return self.import_paths([Path(folder)]) if folder else []

    def import_paths(self, paths: list[Path]) -> list[Conversation]:
        """Import JSON files and backup folders as new chats, each file whole or not at
        all; returns the chats that came in (a refused file changes nothing)."""
        came_in: list[Conversation] = []
        refused: list[str] = []
        for path in paths:
            if path.is_dir():
                try:
                    summary = import_folder(self._ctx.store, path)
                except BackupError as exc:
                    refused.append(str(exc))
                    continue
                came_in += [f.conversation for f in summary.imported]
                refused += [f"{f.path.name}: {f.reason}" for f in summary.refused]
                continue
            try:
                came_in.append(import_file(self._ctx.store, path))
            except (ChatDocumentError, StoreError) as exc:
                refused.append(f"{path.name}: {exc}")
            except OSError as exc:
                refused.append(f"{path.name}: cannot read it ({exc.strerror or exc})")
        for conversation in came_in:
            self.imported.emit(conversation)
        if refused:
            for reason in refused:
                log.warning("import refused: %s", reason)
            more = len(refused) - REFUSED_SHOWN
            shown = "; ".join(refused[:REFUSED_SHOWN]) + (f"; and {more} more (see the log)"
                                                          if more > 0 else "")
            self.problem.emit(f"Not imported (nothing was changed): {shown}")
        if came_in:
            self.notice.emit(f"Imported {len(came_in)} chat{'s' if len(came_in) != 1 else ''}")
        return came_in
