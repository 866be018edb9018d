"""Indexing in the window, with real files in a real (encrypted) store, on
FakeInferenceService (a test of the window's behaviour): collections are picked up when
the window starts and on Documents ▸ Update, off the GUI thread, with a progress row
(files, pages, time left) that Cancel stops; the chat answers meanwhile, and indexing
waits while the reply is written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from doc_files import write_pdf
from fake_inference import FakeReply
from PySide6.QtCore import Qt, QThread
from pytestqt.qtbot import QtBot
from window_fixtures import SHORT, WindowFactory, fake_of

from llamadesk.core.documents.index import DocumentIndex, UpdateReport
from llamadesk.core.paths import app_paths
from llamadesk.core.store import ConversationStore
from llamadesk.core.store_open import open_store
from llamadesk.services.doc_indexer import IndexProgress
from llamadesk.ui.main_window import MainWindow

WAIT_MS = 60_000


def _corpus(folder: Path, files: int) -> Path:
    """``files`` documents: Markdown notes, and every fifth a two-page PDF."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        if i % 5 == 0:
            write_pdf(folder / f"report{i:03}.pdf",
                      [f"Report {i} page one: turbine {i} runs at {i * 7} rpm.",
                       f"Report {i} page two: valve {i} closes at dusk."])
        else:
            (folder / f"note{i:03}.md").write_text(
                f"# Note {i}\n\nThe heron number {i} nests by pond {i * 3}.\n"
                + "More words about the garden. " * 40)
    return folder


def _collection(name: str, folder: Path) -> None:
    """A collection named before the window opens, not indexed yet."""
    store = open_store(app_paths().ensure())
    try:
        DocumentIndex(store).add(name, [folder])
    finally:
        store.close()


def _consistent(store: ConversationStore) -> tuple[int, set[str]]:
    """(files indexed, texts of every passage), after checking that each indexed file
    has its passages and the full-text index holds exactly the passages."""
    db = store.connection
    chunks = db.execute("SELECT COUNT(*) FROM doc_chunks").fetchone()[0]
    fts = db.execute("SELECT COUNT(*) FROM doc_chunks_fts").fetchone()[0]
    assert chunks == fts
    empty = db.execute("SELECT COUNT(*) FROM doc_files f WHERE f.error IS NULL AND NOT "
                       "EXISTS (SELECT 1 FROM doc_chunks c WHERE c.file_id = f.id)"
                       ).fetchone()[0]
    assert empty == 0, "a file was recorded without its passages"
    files = db.execute("SELECT COUNT(*) FROM doc_files WHERE error IS NULL").fetchone()[0]
    texts = {str(r[0]) for r in db.execute("SELECT text FROM doc_chunks")}
    return int(files), texts


def _wait_idle(qtbot: QtBot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: not window.controller.indexer.running, timeout=WAIT_MS)


def test_start_indexes_off_the_gui_thread_with_progress_to_the_end(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path) -> None:
    _collection("Garden", _corpus(tmp_path / "garden", 25))
    window = fake_window(show=False)
    indexer = window.controller.indexer
    row = window.chat.documents_bar.indexing
    seen: list[IndexProgress] = []
    labels: list[str] = []
    threads: list[bool] = []
    indexer.progressed.connect(seen.append)
    indexer.progressed.connect(lambda _p: labels.append(row.label.text()))
    indexer.progressed.connect(
        lambda _p: threads.append(QThread.currentThread() is window.thread()))
    with qtbot.waitSignal(indexer.finished, timeout=WAIT_MS) as ended:
        window.show()
    name, report = ended.args
    assert name == "Garden" and isinstance(report, UpdateReport)
    assert len(report.added) == 25 and not report.cancelled and not report.failed
    assert report.pages == 5 * 2 + 20
    assert [p.files_done for p in seen] == list(range(25)), "one step per file, in order"
    assert all(p.files_total == 25 for p in seen)
    assert seen[-1].seconds_left is not None and seen[0].seconds_left is None
    assert all(threads), "progress reaches the window on the GUI thread"
    assert labels[-1].startswith("Indexing Garden: 24 of 25 files, ")
    assert "pages, about" in labels[-1] and labels[-1].endswith(" left")
    assert row.bar.value() == row.bar.maximum() == 25
    assert row.outcome == "Garden indexed: 25 added, 0 changed, 0 removed"
    _wait_idle(qtbot, window)
    assert row.isHidden()
    assert window.controller.documents.index.get("Garden").files == 25


def test_cancel_keeps_the_collection_consistent_and_update_finishes_it(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path) -> None:
    folder = _corpus(tmp_path / "garden", 40)
    _collection("Garden", folder)
    window = fake_window()
    indexer = window.controller.indexer
    row = window.chat.documents_bar.indexing

    def cancel_at_fifth(progress: IndexProgress) -> None:
        if progress.files_done == 5 and row.cancel_button.isEnabled():
            row.cancel_button.click()
    indexer.progressed.connect(cancel_at_fifth)
    with qtbot.waitSignal(indexer.finished, timeout=WAIT_MS) as ended:
        pass
    report = ended.args[1]
    assert report.cancelled
    assert 5 <= len(report.added) < 40
    assert row.outcome.startswith("Garden cancelled: ")
    indexer.progressed.disconnect(cancel_at_fifth)
    _wait_idle(qtbot, window)
    files, _texts = _consistent(window.store)
    assert files == len(report.added)

    bar = window.chat.documents_bar
    bar.menu.aboutToShow.emit()
    update = bar.menu.actions()[0]
    assert update.text().startswith("Update") and update.isEnabled()
    with qtbot.waitSignal(indexer.finished, timeout=WAIT_MS) as again:
        update.trigger()
    assert len(again.args[1].added) == 40 - files and not again.args[1].cancelled
    _wait_idle(qtbot, window)
    files, texts = _consistent(window.store)
    assert files == 40

    fresh = ConversationStore(tmp_path / "fresh.db")
    try:
        index = DocumentIndex(fresh)
        index.add("Garden", [folder])
        index.update("Garden")
        assert _consistent(fresh) == (40, texts), "cancel, then update = indexing at once"
    finally:
        fresh.close()


def test_a_reply_is_written_while_indexing_and_indexing_waits_for_it(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path) -> None:
    _collection("Garden", _corpus(tmp_path / "garden", 30))
    window = fake_window(replace(SHORT, max_tokens=1000), show=False)
    indexer = window.controller.indexer
    with qtbot.waitSignal(indexer.finished, timeout=WAIT_MS):
        window.show()
    _wait_idle(qtbot, window)
    (tmp_path / "garden" / "late.txt").write_text("A kingfisher came late in the year.")
    window.new_conversation()
    fake_of(window).script(FakeReply.long(400))
    seen: list[IndexProgress] = []
    indexer.progressed.connect(seen.append)
    row = window.chat.documents_bar.indexing
    with qtbot.waitSignal(window.controller.reply_finished, timeout=WAIT_MS):
        qtbot.keyClicks(window.chat.composer, "Hello while the garden is indexed")
        qtbot.keyClick(window.chat.composer, Qt.Key.Key_Return)
        qtbot.waitSignal(window.controller.reply_started, timeout=WAIT_MS).wait()
        window.chat.documents_bar.update_collections()
        qtbot.waitUntil(lambda: any(p.waiting for p in seen), timeout=WAIT_MS)
        assert indexer.running and window.controller.busy
        assert row.isVisible()
        assert row.label.text() == ("Indexing Garden: 0 of 31 files, 0 pages, "
                                    "waiting for the reply")
        assert not [p for p in seen if p.files_done > 0], "no file while the reply runs"
    reply = window.store.messages(window.current_id or 0)[-1]
    assert reply.content.startswith("word0 word1") and reply.content.endswith("word399")
    with qtbot.waitSignal(indexer.finished, timeout=WAIT_MS) as ended:
        pass
    assert ended.args[1].added == [str(tmp_path / "garden" / "late.txt")]
    assert [p.files_done for p in seen if not p.waiting] == list(range(31))


def test_update_picks_up_modified_added_and_deleted_files(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path) -> None:
    folder = _corpus(tmp_path / "garden", 6)
    _collection("Garden", folder)
    window = fake_window(show=False)
    indexer = window.controller.indexer
    with qtbot.waitSignal(indexer.finished, timeout=WAIT_MS):
        window.show()
    _wait_idle(qtbot, window)
    index = window.controller.documents.index
    assert index.get("Garden").files == 6

    (folder / "note001.md").write_text("# Note 1\n\nThe heron moved to the kingfisher pond.\n")
    (folder / "note002.md").unlink()
    (folder / "added.txt").write_text("An otter was seen at dawn by the weir.")
    bar = window.chat.documents_bar
    with qtbot.waitSignal(indexer.finished, timeout=WAIT_MS) as ended:
        bar.update_collections()
    report = ended.args[1]
    assert report.changed == [str(folder / "note001.md")]
    assert report.removed == [str(folder / "note002.md")]
    assert report.added == [str(folder / "added.txt")]
    _wait_idle(qtbot, window)
    assert [p.where for p in index.search("Garden", "otter weir", k=1)] == ["added.txt"]
    assert index.search("Garden", "kingfisher", k=1)[0].path == str(folder / "note001.md")
    assert index.search("Garden", "heron number 2 nests pond 6", k=10)
    assert all("note002" not in p.path
               for p in index.search("Garden", "heron number 2 nests pond 6", k=10))


def test_an_update_of_a_collection_removed_meanwhile_fails_with_its_reason(
        qtbot: QtBot, fake_window: WindowFactory) -> None:
    window = fake_window()
    indexer = window.controller.indexer
    with qtbot.waitSignal(indexer.failed, timeout=WAIT_MS) as failed:
        indexer.update(["Gone"])
    assert failed.args == ["Gone", "there is no collection named 'Gone' "
                                   "(`llamadesk docs list` shows them)"]
    row = window.chat.documents_bar.indexing
    assert row.outcome == f"Gone could not be indexed: {failed.args[1]}"
    _wait_idle(qtbot, window)
    assert row.isHidden()


def _toggle_in_menu(window: MainWindow, name: str) -> None:
    bar = window.chat.documents_bar
    bar._fill_menu()  # what opening the Documents menu shows
    (action,) = [a for a in bar.menu.actions() if a.text().startswith(f"{name} (")]
    action.trigger()


def test_a_collection_switched_on_in_the_menu_is_kept_and_a_refusal_is_a_banner(
        qtbot: QtBot, fake_window: WindowFactory, tmp_path: Path) -> None:
    _collection("Garden", _corpus(tmp_path / "garden", 2))
    window = fake_window()
    _wait_idle(qtbot, window)
    cid = window.current_id
    assert cid is not None
    documents = window.controller.documents
    _toggle_in_menu(window, "Garden")
    assert documents.collections(cid) == ["Garden"]
    window.store._db.execute("PRAGMA query_only = 1")  # the store's own connection refuses
    try:
        _toggle_in_menu(window, "Garden")  # switching it off is refused
    finally:
        window.store._db.execute("PRAGMA query_only = 0")
    assert window.chat.banner.isVisible()
    assert "read-only" in window.chat.banner.label.text()
    assert documents.collections(cid) == ["Garden"], "the refused change lost nothing"
