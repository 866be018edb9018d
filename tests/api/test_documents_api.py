"""The local API's ``collections`` extension on chat completions, over real HTTP with
the real bundled model: passages quoted in the prompt, ``sources`` in the response
(whole and streamed), clear errors for an unknown collection or a server without any."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import LiveApi, start_server
from doc_files import write_pdf

from llamadesk.api.documents import store_search
from llamadesk.core import bundled
from llamadesk.core.documents.index import DocumentIndex
from llamadesk.core.paths import app_paths
from llamadesk.core.store import ConversationStore
from llamadesk.services.inference import InferenceService

QUESTION = {"role": "user", "content": "What was the tax refund for 2025?"}


@pytest.fixture
def docs_api(service: InferenceService, bundled_model_path: Path,
             tmp_path: Path) -> Iterator[LiveApi]:
    folder = tmp_path / "docs"
    folder.mkdir()
    write_pdf(folder / "tax.pdf", ["Cover", "The tax refund for 2025 was 1,234 euros."])
    (folder / "notes.md").write_text("# Cat\nThe cat is called Miso.\n")
    database = app_paths().ensure().database
    store = ConversationStore(database)
    DocumentIndex(store).add("Home", [folder])
    DocumentIndex(store).update("Home")
    store.close()
    server = start_server(service, documents=store_search(lambda: ConversationStore(database)))
    yield LiveApi(server, service, bundled.manifest().id)
    server.stop()


def test_sources_in_the_response_and_the_openai_client(docs_api: LiveApi) -> None:
    body = {"model": docs_api.model_id, "messages": [QUESTION], "max_tokens": 12,
            "temperature": 0, "collections": ["Home"]}
    with httpx.Client(timeout=120) as http:
        reply = http.post(f"{docs_api.base_url}/chat/completions", json=body)
        plain = http.post(f"{docs_api.base_url}/chat/completions",
                          json={**body, "collections": None})
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["choices"][0]["message"]["content"].strip()
    assert [(s["index"], Path(s["path"]).name, s["page"]) for s in data["sources"]] == [
        (1, "tax.pdf", 2)]
    assert data["sources"][0]["text"] == "The tax refund for 2025 was 1,234 euros."
    # The passages were read: the prompt is longer by at least the quoted passage.
    assert data["usage"]["prompt_tokens"] > plain.json()["usage"]["prompt_tokens"] + 20
    assert "sources" not in plain.json()

    completion = docs_api.client().chat.completions.create(
        model=docs_api.model_id, messages=[QUESTION], max_tokens=8,  # type: ignore[list-item]
        temperature=0, extra_body={"collections": ["Home"]})
    assert completion.model_extra is not None
    assert completion.model_extra["sources"][0]["page"] == 2


def test_streamed_sources_come_with_the_first_chunk(docs_api: LiveApi) -> None:
    body = {"model": docs_api.model_id, "messages": [QUESTION], "max_tokens": 8,
            "temperature": 0, "stream": True, "collections": ["Home"]}
    with httpx.Client(timeout=120) as http, \
            http.stream("POST", f"{docs_api.base_url}/chat/completions", json=body) as r:
        raw = r.read().decode()
    # A comment event (": ping", sent every 15 s on a slow reply) is part of SSE.
    events = [e[len("data: "):] for e in raw.split("\n\n")
              if e.strip() and not e.startswith(":")]
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["sources"][0]["page"] == 2
    assert all("sources" not in c for c in chunks[1:])
    assert events[-1] == "[DONE]"


def test_unknown_collection_and_no_documents(docs_api: LiveApi,
                                             service: InferenceService) -> None:
    body = {"model": docs_api.model_id, "messages": [QUESTION], "max_tokens": 4,
            "collections": ["Nope"]}
    with httpx.Client(timeout=120) as http:
        missing = http.post(f"{docs_api.base_url}/chat/completions", json=body)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "collection_not_found"
    assert missing.json()["error"]["param"] == "collections"
    bare = start_server(service)
    try:
        with httpx.Client(timeout=120) as http:
            refused = http.post(f"{bare.base_url}/chat/completions",
                                json={**body, "collections": ["Home"]})
    finally:
        bare.stop()
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "documents_unavailable"


def test_a_collection_with_an_embedding_model_is_searched_hybrid(
        service: InferenceService, bundled_model_path: Path, tmp_path: Path) -> None:
    """The bundled chat model stands in as the embedding model (``STAND_IN_ID``,
    mean-pooled): passages without the question's words are found by their vectors."""
    from llamadesk.services.doc_embedder import DocumentEmbedder
    from llamadesk.services.query_embedder import QueryEmbedder

    stand_in = "smollm2-stand-in-embedder"
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "boat.md").write_text("# Boat\nThe sailing boat is moored at pier nine.\n")
    (folder / "cat.md").write_text("# Cat\nThe cat sleeps on the warm windowsill.\n")
    (folder / "tax.txt").write_text("The tax refund for 2025 was 1,234 euros.\n")
    database = app_paths().ensure().database
    store = ConversationStore(database)
    embedder = DocumentEmbedder(bundled_model_path, stand_in, n_threads=2)
    try:
        index = DocumentIndex(store)
        index.add("Home", [folder])
        index.set_embedding("Home", stand_in, embedder.dim)
        assert index.update("Home", embed=embedder.documents).embedded == 3
    finally:
        embedder.close()
        store.close()
    asked: list[str] = []

    def locate(model_id: str) -> tuple[Path, None]:
        asked.append(model_id)
        return bundled_model_path, None
    queries = QueryEmbedder(locate)
    server = start_server(service, documents=store_search(
        lambda: ConversationStore(database), queries.embed))
    try:
        api = LiveApi(server, service, bundled.manifest().id)
        body = {"model": api.model_id, "max_tokens": 4, "temperature": 0,
                "messages": [{"role": "user", "content": "When is the refund of the tax?"}],
                "collections": ["Home"]}
        with httpx.Client(timeout=300) as http:
            reply = http.post(f"{api.base_url}/chat/completions", json=body)
    finally:
        server.stop()
        queries.shutdown()
    assert reply.status_code == 200, reply.text
    names = [Path(s["path"]).name for s in reply.json()["sources"]]
    assert names[0] == "tax.txt", "the passage both rankings agree on comes first"
    assert sorted(names) == ["boat.md", "cat.md", "tax.txt"], "keywords alone find one"
    assert asked == [stand_in]
