"""A conversation as a JSON document: a lossless round trip through real SQLite files,
and refused documents that change nothing."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chat_fixtures import (
    PARAMS,
    assert_same_tree,
    build_branchy_chat,
    db_snapshot,
    file_bytes,
)

from llamadesk.core.chat_json import (
    FORMAT_VERSION,
    MAX_DOCUMENT_BYTES,
    ChatDocumentError,
    ChatFormatError,
    NewerFormatError,
    conversation_json,
    conversation_tree,
    export_document,
    import_document,
    import_file,
    parse_document,
    read_document,
)
from llamadesk.core.conversation import Role, SamplingParams
from llamadesk.core.store import ConversationStore


@pytest.fixture
def source(tmp_path: Path) -> tuple[ConversationStore, int]:
    store = ConversationStore(tmp_path / "source.sqlite3")
    store.create_conversation("Another chat")  # ids differ between the two files
    chat = build_branchy_chat(store)
    yield store, chat
    store.close()


def test_round_trip_into_another_database_keeps_every_field(
        source: tuple[ConversationStore, int], tmp_path: Path) -> None:
    store, chat = source
    path = tmp_path / "chat.json"
    path.write_text(conversation_json(store, chat), encoding="utf-8")

    target = ConversationStore(tmp_path / "target.sqlite3")
    target.create_conversation("Already here")
    imported = import_file(target, path)
    target.close()
    assert imported.id == 2, "a new conversation beside the one already there"
    assert_same_tree(tmp_path / "source.sqlite3", chat, tmp_path / "target.sqlite3",
                     imported.id)


def test_round_trip_into_the_same_database_shows_the_same_branch_and_versions(
        source: tuple[ConversationStore, int]) -> None:
    store, chat = source
    copy_ = import_document(store, parse_document(conversation_json(store, chat)))
    assert copy_.id != chat
    assert_same_tree(store.path, chat, store.path, copy_.id)
    # What the window shows follows from the tree: the branch and the version counters.
    old = store.messages(chat)
    new = store.messages(copy_.id)
    assert [(m.role, m.content, m.stats, m.model_id) for m in old] == \
        [(m.role, m.content, m.stats, m.model_id) for m in new]
    assert sorted(store.version_counts(chat).values()) == \
        sorted(store.version_counts(copy_.id).values())
    assert copy_.params == PARAMS and copy_.system_prompt == "Be brief.\nAnswer in English."
    # The imported messages are searchable like any other.
    assert {m.conversation_id for m in store.search("Algarve")} == {chat, copy_.id}


def test_the_document_is_readable_and_carries_everything(
        source: tuple[ConversationStore, int]) -> None:
    store, chat = source
    doc = json.loads(conversation_json(store, chat))
    assert doc["format"] == "llamadesk-conversation" and doc["format_version"] == FORMAT_VERSION
    conv = doc["conversation"]
    assert conv["title"] == "Trip plans ✈ «Lisbon»" and conv["model_id"] == "m-one"
    assert conv["params"] == PARAMS.to_dict()
    messages = doc["messages"]
    assert [m["id"] for m in messages] == list(range(1, 8)), "local ids, in order"
    assert [m["parent"] for m in messages] == [None, 1, 1, 2, 4, None, 6]
    assert conv["current_leaf"] == 5
    assert messages[1]["stats"] == {
        "prompt_tokens": 41, "completion_tokens": 17, "ttft_ms": 83.25,
        "tokens_per_s": 51.125, "prompt_tokens_per_s": 812.5, "finish_reason": "stop"}
    assert messages[6]["stats"]["finish_reason"] == "interrupted"
    assert "🌧" in conversation_json(store, chat), "text stays readable, not \\u-escaped"


def test_an_empty_chat_round_trips(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    c = store.create_conversation("Nothing yet")
    copy_ = import_document(store, parse_document(conversation_json(store, c.id)))
    assert copy_.current_leaf_id is None and store.messages(copy_.id) == []
    assert_same_tree(store.path, c.id, store.path, copy_.id)
    store.close()


def test_the_tree_holds_every_branch(source: tuple[ConversationStore, int]) -> None:
    store, chat = source
    conversation, messages = conversation_tree(store, chat)
    assert conversation.id == chat and len(messages) == 7
    assert len(store.messages(chat)) == 4, "the branch on screen is only part of it"
    with pytest.raises(LookupError, match="no conversation 99"):
        conversation_tree(store, 99)


def test_unknown_fields_are_ignored_and_missing_settings_take_defaults(
        source: tuple[ConversationStore, int]) -> None:
    store, chat = source
    doc = export_document(store, chat)
    doc["something_new"] = {"a": 1}
    doc["conversation"]["pinned"] = True
    doc["conversation"]["params"]["mirostat"] = 2
    del doc["conversation"]["params"]["min_p"]
    doc["messages"][1]["memory_starts_here"] = True
    doc["messages"][1]["stats"]["energy_j"] = 3.5
    imported = import_document(store, parse_document(json.dumps(doc)))
    assert imported.params.min_p == SamplingParams().min_p
    assert imported.params.seed == PARAMS.seed
    assert [m.content for m in store.messages(imported.id)] == \
        [m.content for m in store.messages(chat)]


def test_messages_in_any_order_are_stored_parents_first(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    doc = export_document(store, build_branchy_chat(store))
    doc["messages"].reverse()
    imported = import_document(store, parse_document(json.dumps(doc)))
    assert [m.content for m in store.messages(imported.id)] == [
        "Where should I go?", "**Lisbon**, then Porto.\n\n```python\nprint('olá')\n```",
        "And in winter? 🌧", "The Algarve."]
    store.close()


# -- refused documents ----------------------------------------------------------------------
def _mutate(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], str]:
    def apply(doc: dict[str, Any]) -> str:
        doc = copy.deepcopy(doc)
        change(doc)
        return json.dumps(doc)
    return apply


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], str]:
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        target: Any = doc
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is _DELETE:
            del target[last]
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return _mutate(change)


_DELETE = object()


def _loop(doc: dict[str, Any]) -> None:
    doc["messages"][3]["parent"] = 5  # 4 follows 5, which follows 4


BROKEN: dict[str, tuple[Callable[[dict[str, Any]], str | bytes], str]] = {
    "not json": (lambda _d: "{\"format\": ", "not a JSON file"),
    "not an object": (lambda _d: "[1, 2]", "not an object"),
    "bad utf-8": (lambda d: json.dumps(d).encode().replace(b"Where", b"\xffWhere", 1),
                  "not a JSON file"),
    "other format": (_set("format", "chatgpt"), "not a LlamaDesk chat export"),
    "no format version": (_set("format_version", _DELETE), "format_version"),
    "version as text": (_set("format_version", "1"), "format_version"),
    "no messages": (_set("messages", _DELETE), "messages is missing"),
    "messages not a list": (_set("messages", {"1": {}}), "messages must be a list"),
    "no conversation": (_set("conversation", _DELETE), "conversation is missing"),
    "title a number": (_set("conversation/title", 7), "conversation.title must be text"),
    "params not an object": (_set("conversation/params", []), "params must be an object"),
    "temperature as text": (_set("conversation/params/temperature", "hot"),
                            "params.temperature must be a number"),
    "top_k a fraction": (_set("conversation/params/top_k", 4.5),
                         "params.top_k must be a whole number"),
    "leaf pointing nowhere": (_set("conversation/current_leaf", 70), "no message 70"),
    "unknown role": (_set("messages/0/role", "robot"), "messages[0].role must be one of"),
    "content missing": (_set("messages/1/content", _DELETE), "messages[1].content is missing"),
    "content a list": (_set("messages/1/content", ["a"]), "must be text, not a list"),
    "lone surrogate": (lambda d: json.dumps(d).replace("Where should", "\\ud800 should", 1),
                       "not valid Unicode"),
    "created_at as text": (_set("messages/2/created_at", "yesterday"),
                           "messages[2].created_at must be a number"),
    "tokens as true": (_set("messages/1/stats/prompt_tokens", True),
                       "prompt_tokens must be a whole number, not true/false"),
    "speed as text": (_set("messages/1/stats/tokens_per_s", "fast"),
                      "tokens_per_s must be a number"),
    "temperature NaN": (_set("conversation/params/temperature", float("nan")),
                        "params.temperature must be a finite number"),
    "speed Infinity": (_set("messages/1/stats/tokens_per_s", float("inf")),
                       "tokens_per_s must be a finite number"),
    "huge number": (_set("messages/1/stats/completion_tokens", 10**30), "out of range"),
    "unknown finish reason": (_set("messages/1/stats/finish_reason", "done"),
                              "finish_reason must be one of"),
    "no stats": (_set("messages/1/stats", _DELETE), "messages[1].stats is missing"),
    "message not an object": (_set("messages/2", "hello"), "messages[2] must be an object"),
    "parent pointing nowhere": (_set("messages/3/parent", 42),
                                "message 4 follows message 42, which is not in the file"),
    "parent loop": (_mutate(_loop), "loop"),
    "own parent": (_set("messages/0/parent", 1), "loop"),
    "duplicate id": (_set("messages/2/id", 2), "two messages with id 2"),
    "deep nesting": (lambda _d: "[" * 200_000 + "]" * 200_000, "nested too deeply"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_document_is_refused_clearly_and_changes_nothing(
        case: str, source: tuple[ConversationStore, int], tmp_path: Path) -> None:
    store, chat = source
    make, expected = BROKEN[case]
    path = tmp_path / "broken.json"
    data = make(export_document(store, chat))
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    before_rows, before_bytes = db_snapshot(store.path), file_bytes(store.path)
    with pytest.raises(ChatFormatError) as caught:
        import_file(store, path)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value), "one line"
    assert db_snapshot(store.path) == before_rows
    assert file_bytes(store.path) == before_bytes
    assert store.count_conversations() == 2


def test_a_document_from_a_newer_version_is_refused_with_the_reason(
        source: tuple[ConversationStore, int], tmp_path: Path) -> None:
    store, chat = source
    doc = export_document(store, chat)
    doc["format_version"] = FORMAT_VERSION + 1
    doc["messages"] = "a shape this version has never seen"
    before = db_snapshot(store.path)
    with pytest.raises(NewerFormatError, match=r"newer LlamaDesk.*Update the app"):
        import_document(store, parse_document(json.dumps(doc)))
    assert db_snapshot(store.path) == before


def test_a_huge_file_is_refused_before_it_is_read(
        source: tuple[ConversationStore, int], tmp_path: Path) -> None:
    store, _chat = source
    path = tmp_path / "huge.json"
    with path.open("wb") as fh:  # sparse: no disk used, and never read
        fh.truncate(MAX_DOCUMENT_BYTES + 1)
    before = db_snapshot(store.path)
    with pytest.raises(ChatFormatError, match="too big"):
        read_document(path)
    with pytest.raises(ChatFormatError, match="too big"):
        import_file(store, path)
    assert db_snapshot(store.path) == before


def test_a_failure_halfway_through_the_import_rolls_everything_back(
        source: tuple[ConversationStore, int]) -> None:
    store, chat = source
    document = parse_document(conversation_json(store, chat))
    # A write that fails after some rows went in, as a full disk would: a trigger on
    # this connection refuses the fourth message.
    with store.transaction() as db:
        db.execute("CREATE TEMP TRIGGER refuse_fourth BEFORE INSERT ON messages "
                   "WHEN (SELECT COUNT(*) FROM messages) >= 10 "
                   "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
    before = db_snapshot(store.path)
    with pytest.raises(ChatDocumentError, match=r"nothing was imported.*disk is full"):
        import_document(store, document)
    assert db_snapshot(store.path) == before
    with store.transaction() as db:
        db.execute("DROP TRIGGER refuse_fourth")
    assert import_document(store, document).id == 3, "the same document imports afterwards"


def test_importing_does_not_need_the_models_to_be_installed(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "c.sqlite3")
    c = store.create_conversation("x", model_id="not-installed-here")
    store.add_message(c.id, Role.USER, "hi")
    copy_ = import_document(store, parse_document(conversation_json(store, c.id)))
    assert copy_.model_id == "not-installed-here"
    store.close()
