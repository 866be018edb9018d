"""Export and import from the window: a chat as JSON (every branch and version), every
chat to a backup folder, and back through File → Import or a file dropped on the
window. A broken or newer file is refused with its reason in the banner and changes
nothing. The real window, store and files, on FakeInferenceService."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QWidget
from pytestqt.qtbot import QtBot
from window_fixtures import WindowFactory

from llamadesk.core.chat_json import FORMAT_VERSION, export_document
from llamadesk.core.conversation import FinishReason, MessageStats, Role
from llamadesk.ui.main_window import MainWindow
from llamadesk.ui.operations import chat_changed


def chat_with_versions(window: MainWindow) -> int:
    """A chat with two versions of its reply, stored as the window would."""
    store = window.store
    conversation = store.create_conversation("Branches and all")
    question = store.add_message(conversation.id, Role.USER, "Name a colour.")
    store.add_message(conversation.id, Role.ASSISTANT, "Blue.", parent_id=question.id,
                      model_id="model-a",
                      stats=MessageStats(12, 3, 40.0, 55.5, 300.0, FinishReason.STOP))
    store.add_message(conversation.id, Role.ASSISTANT, "Green, **bright** green.",
                      parent_id=question.id, model_id="model-b",
                      stats=MessageStats(12, 6, 35.0, 61.0, 280.0, FinishReason.LENGTH))
    window.ctx.operations.announce(chat_changed(conversation.id))
    window.select_conversation(conversation.id)
    return conversation.id


def same_tree(window: MainWindow, first: int, second: int) -> None:
    a, b = export_document(window.store, first), export_document(window.store, second)
    for document in (a, b):
        document.pop("exported_at")
    assert a == b


def drop(window: MainWindow, paths: list[Path], on: QWidget | None = None) -> QDropEvent:
    """Drag ``paths`` over a widget (the window) and drop them; Qt hands a drag a widget
    ignores on to its parents, as a real drag."""
    target = on or window
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    mime.setText("\n".join(str(p) for p in paths))  # file managers add the paths as text
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted(), "the window takes the drag"
    event = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(target, event)
    return event


def test_export_json_then_import_it_from_the_file_menu(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    window = fake_window()
    original = chat_with_versions(window)
    target = tmp_path / "out.json"
    asked: list[str] = []

    def save_dialog(_parent: object, _title: str, suggested: str,
                    _filter: str) -> tuple[str, str]:
        asked.append(suggested)
        return str(target), _filter

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    window.export_current_json()
    assert asked[0].endswith("Branches and all.json")
    document = json.loads(target.read_text(encoding="utf-8"))
    assert [m["model_id"] for m in document["messages"]] == [None, "model-a", "model-b"]
    assert window.status.currentMessage() == f"Exported to {target}"

    before = window.store.count_conversations()
    monkeypatch.setattr(QFileDialog, "getOpenFileNames",
                        lambda *_a, **_k: ([str(target)], "LlamaDesk chat (*.json)"))
    window.import_files()
    assert window.store.count_conversations() == before + 1
    imported = window.current_id
    assert imported not in (None, original), "the imported chat is open"
    assert window.sidebar.conversations.row_of(imported) == 0, "…and listed first"
    same_tree(window, original, imported)
    shown = [window.chat.messages.row_at(i) for i in range(window.chat.messages.rowCount())]
    assert [r.content for r in shown] == ["Name a colour.", "Green, **bright** green."]
    assert shown[1].alternatives == (2, 2)


def test_a_dropped_json_file_is_imported_and_opened(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path) -> None:
    window = fake_window()
    original = chat_with_versions(window)
    path = tmp_path / "dropped.json"
    path.write_text(json.dumps(export_document(window.store, original)), encoding="utf-8")
    event = drop(window, [path])
    assert event.isAccepted()
    assert window.current_id != original
    same_tree(window, original, window.current_id)
    assert window.chat.title_label.text() == "Branches and all"


def test_a_chat_dropped_on_the_message_box_is_imported_not_typed(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path) -> None:
    window = fake_window()
    original = chat_with_versions(window)
    path = tmp_path / "onto the box.json"
    path.write_text(json.dumps(export_document(window.store, original)), encoding="utf-8")
    drop(window, [path], on=window.chat.composer.viewport())
    assert window.chat.composer.toPlainText() == ""
    assert window.current_id != original
    same_tree(window, original, window.current_id)


def test_what_cannot_be_imported_is_not_taken_from_a_drag(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path) -> None:
    window = fake_window()
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello", encoding="utf-8")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(text_file)), QUrl("https://example.com/a.json")])
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter.ignore()
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()


@pytest.mark.parametrize(("content", "reason"), [
    (json.dumps({"format": "llamadesk-conversation", "format_version": FORMAT_VERSION + 1,
                 "conversation": {}, "messages": []}), "newer"),
    ('{"format": "llamadesk-conversation", "format_version": 1, "conversation": ',
     "not a JSON file"),
    (json.dumps({"format": "something-else", "format_version": 1}), "not a LlamaDesk"),
])
def test_a_newer_or_broken_file_is_refused_with_its_reason_and_changes_nothing(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path, content: str,
        reason: str) -> None:
    window = fake_window()
    chat_with_versions(window)
    current = window.current_id
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    before = window.store.count_conversations()
    rows = window.sidebar.conversations.rowCount()
    drop(window, [path])
    assert window.store.count_conversations() == before
    assert window.sidebar.conversations.rowCount() == rows
    assert window.current_id == current
    banner = window.chat.banner
    assert banner.isVisible()
    assert "bad.json" in banner.label.text() and reason in banner.label.text()
    assert "Traceback" not in banner.label.text()


def test_back_up_every_chat_and_import_the_folder(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    window = fake_window()
    first = chat_with_versions(window)
    window.store.add_message(window.current_id, Role.USER, "A follow-up")
    folder = tmp_path / "backup"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_a, **_k: str(folder))
    window.back_up_all()
    count = window.store.count_conversations()
    assert len(list(folder.glob("*.json"))) == count + 1, "a document per chat and the index"
    assert window.status.currentMessage() == f"Backed up {count} chats to {folder}"

    # A second backup into the same, now full, folder is refused and says why.
    window.back_up_all()
    assert "not empty" in window.chat.banner.label.text()

    window.import_folder()
    assert window.store.count_conversations() == 2 * count
    assert window.status.currentMessage() == f"Imported {count} chats"
    titles = [window.sidebar.conversations.index(i).data()
              for i in range(window.sidebar.conversations.rowCount())]
    assert titles.count("Branches and all") == 2
    copy = next(c.id for c in window.store.list_conversations()
                if c.title == "Branches and all" and c.id != first)
    same_tree(window, first, copy)
