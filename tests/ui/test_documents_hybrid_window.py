"""The window's document chat searches a collection indexed by meaning hybrid: the
question is embedded on the query embedder's own thread (never the inference thread or
the chat's context), then keywords and vectors are fused. The bundled chat model stands
in as the embedding model (``STAND_IN_ID``, mean-pooled: the plumbing is real, the
quality is not an embedding model's); the reply comes from FakeInferenceService (a test
of the window's behaviour)."""

from __future__ import annotations

import threading
from pathlib import Path

from fake_inference import FakeReply
from link_probe import send_and_wait
from pytestqt.qtbot import QtBot
from window_fixtures import SHORT, WindowFactory, fake_of

from llamadesk.core.documents.index import DocumentIndex
from llamadesk.core.documents.quoting import sources
from llamadesk.core.paths import app_paths
from llamadesk.core.store_open import open_store
from llamadesk.services.engine import LoadOptions
from llamadesk.services.inference import ModelSpec

STAND_IN_ID = "smollm2-stand-in-embedder"
WAIT_MS = 120_000


def test_a_collection_with_an_embedding_model_is_searched_hybrid_in_the_window(
        qtbot: QtBot, fake_window: WindowFactory, bundled_model_path: Path,
        tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "boat.md").write_text("# Boat\nThe sailing boat is moored at pier nine.\n")
    (docs / "cat.md").write_text("# Cat\nThe cat sleeps on the warm windowsill.\n")
    (docs / "tax.txt").write_text("The tax refund for 2025 was 1,234 euros.\n")
    store = open_store(app_paths().ensure())
    try:
        index = DocumentIndex(store)
        index.add("Home", [docs])
        index.set_embedding("Home", STAND_IN_ID, 576)  # SmolLM2-135M's width
    finally:
        store.close()
    located: list[str] = []

    def resolve(model_id: str | None, n_ctx: int) -> ModelSpec:
        located.append(model_id or "")
        return ModelSpec(path=str(bundled_model_path), model_id=model_id or "chat",
                         options=LoadOptions(n_ctx=n_ctx))

    window = fake_window(SHORT, resolve, show=False)
    indexer = window.controller.indexer
    with qtbot.waitSignal(indexer.finished, timeout=WAIT_MS) as indexed:
        window.show()  # the start's update embeds every passage on the indexer's thread
    assert (indexed.args[1].embedded, indexed.args[1].unembedded) == (3, 0)
    window.new_conversation()
    cid = window.current_id
    assert cid is not None
    window.controller.documents.set_collections(cid, ["Home"])

    vectors: list[object] = []
    window.controller.query_embedder.query_embedded.connect(
        lambda _token, vector: vectors.append(vector))
    fake_of(window).script(FakeReply("In 2025.", words_per_batch=2))
    send_and_wait(qtbot, window, "When is the refund of the tax?")
    reply = window.store.messages(cid)[-1]
    found = [Path(p.path).name for p in sources(window.store, reply.id)]
    assert found[0] == "tax.txt", "the passage both rankings agree on comes first"
    assert sorted(found) == ["boat.md", "cat.md", "tax.txt"], \
        "vectors add passages with none of the question's words (keywords find one)"
    assert STAND_IN_ID in located
    assert len(vectors) == 1 and isinstance(vectors[0], list) and len(vectors[0]) == 576
    assert any(t.name.startswith("llamadesk-query-embed") for t in threading.enumerate()), \
        "the question was embedded on the query embedder's own thread"
    request, _model = fake_of(window).requests[-1]
    assert "The tax refund for 2025" in request.history[-1].content


def test_stop_while_the_question_is_embedded_sends_nothing(
        qtbot: QtBot, fake_window: WindowFactory, bundled_model_path: Path,
        tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tax.txt").write_text("The tax refund for 2025 was 1,234 euros.\n")
    store = open_store(app_paths().ensure())
    try:
        DocumentIndex(store).add("Home", [docs])
        DocumentIndex(store).set_embedding("Home", STAND_IN_ID, 576)
    finally:
        store.close()

    def resolve(model_id: str | None, n_ctx: int) -> ModelSpec:
        return ModelSpec(path=str(bundled_model_path), model_id=model_id or "chat",
                         options=LoadOptions(n_ctx=n_ctx))

    window = fake_window(SHORT, resolve)
    window.new_conversation()
    cid = window.current_id
    assert cid is not None
    controller = window.controller
    controller.documents.set_collections(cid, ["Home"])
    ended: list[object] = []
    controller.reply_finished.connect(lambda _cid, message: ended.append(message))
    assert controller.send(cid, "When is the refund of the tax?") is not None
    assert controller.generating_in(cid) and controller.busy, "busy while it is embedded"
    assert controller.send(cid, "A second question at once") is None
    controller.stop(cid)
    assert ended == [None] and not controller.busy
    # The vector still arrives (llama.cpp cannot be interrupted), and is dropped.
    with qtbot.waitSignal(controller.query_embedder.query_embedded, timeout=WAIT_MS):
        pass
    assert fake_of(window).requests == [], "no reply was asked for"
    assert [m.role.value for m in window.store.messages(cid)] == ["user"]
