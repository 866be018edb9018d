"""Connections in the settings: names and URLs checked, a hand-edited file tolerated,
keys only in the keyring (or this session), and why a reply was interrupted stored."""

from __future__ import annotations

import json
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from hub_fixtures import InMemoryKeyring

from llamadesk.core import connections as remote
from llamadesk.core.connections import Connection, InvalidConnectionError, RemoteSettings
from llamadesk.core.conversation import FinishReason, MessageStats, Role
from llamadesk.core.secrets import SERVICE, InvalidTokenError, SecretStore
from llamadesk.core.settings import AppSettings, load_settings, save_settings
from llamadesk.core.store import ConversationStore


@pytest.mark.parametrize(("given", "expected"), [
    ("http://gpu-box:8000/v1", "http://gpu-box:8000/v1"),
    ("http://gpu-box:8000/v1/", "http://gpu-box:8000/v1"),
    ("https://models.example.org", "https://models.example.org/v1"),
    ("  http://127.0.0.1:11434/v1  ", "http://127.0.0.1:11434/v1"),
])
def test_urls_are_normalized(given: str, expected: str) -> None:
    assert remote.normalize_url(given) == expected


@pytest.mark.parametrize("bad", ["gpu-box:8000", "ftp://host/v1", "http:///v1",
                                 "http://user:secret@host/v1", "http://host/v1?key=1"])
def test_bad_urls_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(InvalidConnectionError) as info:
        remote.normalize_url(bad)
    assert "secret" not in str(info.value), "a password in an address is never repeated"


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "-dash", "local", "x" * 41])
def test_bad_names_are_refused(bad: str) -> None:
    with pytest.raises(InvalidConnectionError):
        remote.check_name(bad)


def test_model_ids_split_at_the_first_slash() -> None:
    assert remote.split_model_id("gpu-box/meta-llama/Llama-3-70B") == \
        ("gpu-box", "meta-llama/Llama-3-70B")
    assert remote.split_model_id("smollm2-135m-instruct-q4_1") is None
    assert remote.split_model_id("box/") is None


def test_adding_replaces_in_place_and_removing_needs_a_name() -> None:
    conns = remote.added((), Connection("a", "http://a:1"))
    conns = remote.added(conns, Connection("b", "http://b:1"))
    conns = remote.added(conns, Connection("A", "http://a:2", enabled=False))
    assert [(c.name, c.base_url, c.enabled) for c in conns] == [
        ("A", "http://a:2/v1", False), ("b", "http://b:1/v1", True)]
    assert remote.removed(conns, "a") == (conns[1],)
    with pytest.raises(KeyError):
        remote.removed(conns, "zzz")


def test_connections_round_trip_through_the_settings_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings = AppSettings(connections=(Connection("box", "http://box:8000/v1"),),
                           remote=RemoteSettings(5.0, 30.0, 1))
    save_settings(path, settings)
    assert load_settings(path) == settings


def test_a_hand_edited_file_keeps_the_good_connections(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({
        "connections": [{"name": "ok", "base_url": "http://ok:1/v1"}, {"name": "bad name"},
                        "junk", {"name": "nourl"}, {"name": "x", "base_url": "nota url"}],
        "remote": {"read_timeout_s": -5, "max_retries": "lots"}}))
    loaded = load_settings(path)
    assert [c.name for c in loaded.connections] == ["ok"]
    assert loaded.remote.read_timeout_s == 0.1 and loaded.remote.max_retries == 2


def test_a_settings_file_from_before_connections_loads(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"model_id": None, "default_system_prompt": "Hi."}))
    loaded = load_settings(path)
    assert loaded.connections == () and loaded.remote == RemoteSettings()


def test_api_keys_live_in_the_keyring_per_connection(memory_keyring: InMemoryKeyring,
                                                     tmp_path: Path) -> None:
    store = SecretStore(environ={})
    assert store.set_api_key("Box", "sk-abc123").persisted
    assert memory_keyring.passwords[(SERVICE, "connection:box")] == "sk-abc123"
    assert SecretStore(environ={}).api_key("box") == "sk-abc123"  # after a restart
    assert store.api_key("other") is None
    with pytest.raises(InvalidTokenError):
        store.set_api_key("box", "two words")
    store.clear_api_key("BOX")
    assert store.api_key("box") is None and memory_keyring.passwords == {}


def test_without_a_keyring_a_key_lasts_the_session_only() -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    store = SecretStore(environ={})
    result = store.set_api_key("box", "sk-abc123")
    assert not result.persisted and "session" in result.message
    assert store.api_key("box") == "sk-abc123"
    assert SecretStore(environ={}).api_key("box") is None


def test_an_interrupted_replys_reason_is_stored(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "chats.sqlite3")
    try:
        c = store.create_conversation()
        store.add_message(c.id, Role.USER, "Hi")
        stats = MessageStats(finish_reason=FinishReason.INTERRUPTED,
                             finish_detail="box closed the connection")
        reply = store.add_message(c.id, Role.ASSISTANT, "Hel", model_id="box/m", stats=stats)
        assert store.get_message(reply.id) == reply and reply.stats == stats
    finally:
        store.close()


def test_a_database_from_before_finish_details_upgrades(tmp_path: Path) -> None:
    from llamadesk.core.db import sqlite
    from llamadesk.core.store import MIGRATIONS, SCHEMA_VERSION

    path = tmp_path / "old.sqlite3"
    con = sqlite.connect(str(path))
    con.executescript("".join(MIGRATIONS[:3]) + "\nPRAGMA user_version = 3;")
    con.execute("INSERT INTO conversations (id, title, created_at, updated_at, params, "
                "current_leaf_id) VALUES (1, 'Old', 1.0, 2.0, '{}', 2)")
    con.execute("INSERT INTO messages (id, conversation_id, parent_id, role, content, "
                "created_at, finish_reason) VALUES (1, 1, NULL, 'user', 'hi', 1.5, NULL), "
                "(2, 1, 1, 'assistant', 'hel', 1.6, 'interrupted')")
    con.commit()
    con.close()
    store = ConversationStore(path)
    try:
        assert store.schema_version == SCHEMA_VERSION >= 4
        reply = store.messages(1)[-1]
        assert reply.stats.finish_reason == FinishReason.INTERRUPTED
        assert reply.stats.finish_detail is None
        assert store.get_conversation(1).origin is None  # type: ignore[union-attr]
    finally:
        store.close()


def test_an_interrupted_replys_reason_survives_export_and_import(tmp_path: Path) -> None:
    from chat_fixtures import assert_same_tree

    from llamadesk.core.chat_json import conversation_json, import_document, parse_document

    store = ConversationStore(tmp_path / "chats.sqlite3")
    try:
        c = store.create_conversation()
        store.add_message(c.id, Role.USER, "Hi")
        store.add_message(c.id, Role.ASSISTANT, "Hel", model_id="box/m", stats=MessageStats(
            finish_reason=FinishReason.INTERRUPTED, finish_detail="box went away"))
        text = conversation_json(store, c.id)
        assert '"finish_detail": "box went away"' in text
        copy = import_document(store, parse_document(text))
        assert_same_tree(store.path, c.id, store.path, copy.id)
        assert store.messages(copy.id)[-1].stats.finish_detail == "box went away"
    finally:
        store.close()
