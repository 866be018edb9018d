"""Chats with branches, versions and statistics, and ways to look at a database file
from outside the store (to compare trees, and to prove a refused import changed
nothing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crypt_fixtures import open_any

from llamadesk.core.conversation import FinishReason, MessageStats, Role, SamplingParams
from llamadesk.core.db import sqlite
from llamadesk.core.store import ConversationStore

PARAMS = SamplingParams(temperature=0.35, top_p=0.9, top_k=30, min_p=0.07,
                        repeat_penalty=1.15, max_tokens=300, n_ctx=2048, seed=1234)
STATS_A = MessageStats(prompt_tokens=41, completion_tokens=17, ttft_ms=83.25,
                       tokens_per_s=51.125, prompt_tokens_per_s=812.5,
                       finish_reason=FinishReason.STOP)
STATS_B = MessageStats(prompt_tokens=41, completion_tokens=9, ttft_ms=77.0,
                       tokens_per_s=48.0, prompt_tokens_per_s=790.0,
                       finish_reason=FinishReason.STOPPED)
STATS_C = MessageStats(prompt_tokens=90, completion_tokens=300, ttft_ms=120.5,
                       tokens_per_s=40.75, prompt_tokens_per_s=650.0,
                       finish_reason=FinishReason.LENGTH)


def build_branchy_chat(store: ConversationStore, title: str = "Trip plans ✈ «Lisbon»") -> int:
    """A chat with two versions of the first question, two versions of a reply (from
    two models), a follow-up on the older reply, an interrupted reply, and the branch on
    screen left in the middle of the tree. Returns its id."""
    c = store.create_conversation(title, model_id="m-one",
                                  system_prompt="Be brief.\nAnswer in English.",
                                  params=PARAMS)
    q1 = store.add_message(c.id, Role.USER, "Where should I go?", created_at=1000.5)
    a1 = store.add_message(c.id, Role.ASSISTANT, "**Lisbon**, then Porto.\n\n```python\n"
                           "print('olá')\n```", model_id="m-one", stats=STATS_A,
                           created_at=1001.25)
    store.add_message(c.id, Role.ASSISTANT, "Madrid — or", parent_id=q1.id, model_id="m-two",
                      stats=STATS_B, created_at=1002.0)
    q2 = store.add_message(c.id, Role.USER, "And in winter? 🌧", parent_id=a1.id,
                           created_at=1003.0)
    a2 = store.add_message(c.id, Role.ASSISTANT, "The Algarve.", parent_id=q2.id,
                           model_id="m-one", stats=STATS_C, created_at=1004.0)
    q1b = store.add_message(c.id, Role.USER, "Where should I go in spring?", as_root=True,
                            created_at=1005.0)
    store.add_message(c.id, Role.ASSISTANT, "Kyoto, for the cherry blossom", parent_id=q1b.id,
                      model_id="m-two",
                      stats=MessageStats(completion_tokens=6,
                                         finish_reason=FinishReason.INTERRUPTED),
                      created_at=1006.0)
    store.set_leaf(c.id, a2.id)
    return c.id


def tree_rows(db_path: Path, conversation_id: int) -> tuple[dict[str, Any],
                                                            list[dict[str, Any]]]:
    """The conversation's row and all its message rows (id order), read with a separate
    connection, straight from the file."""
    db = open_any(db_path)
    db.row_factory = sqlite.Row
    try:
        conv = db.execute("SELECT * FROM conversations WHERE id = ?",
                          (conversation_id,)).fetchone()
        rows = db.execute("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id",
                          (conversation_id,)).fetchall()
    finally:
        db.close()
    assert conv is not None, f"no conversation {conversation_id} in {db_path}"
    return dict(conv), [dict(r) for r in rows]


def assert_same_tree(db_a: Path, id_a: int, db_b: Path, id_b: int) -> None:
    """Two conversations hold the same tree: every field equal, ids mapped."""
    conv_a, rows_a = tree_rows(db_a, id_a)
    conv_b, rows_b = tree_rows(db_b, id_b)
    assert len(rows_a) == len(rows_b)
    new_id = {a["id"]: b["id"] for a, b in zip(rows_a, rows_b, strict=True)}
    assert len(set(new_id.values())) == len(rows_b)
    for a, b in zip(rows_a, rows_b, strict=True):
        assert b["conversation_id"] == id_b
        assert b["parent_id"] == (None if a["parent_id"] is None else new_id[a["parent_id"]])
        same = {k: v for k, v in a.items() if k not in ("id", "conversation_id", "parent_id")}
        assert {k: b[k] for k in same} == same, f"message {a['id']} differs"
    leaf_a = conv_a.pop("current_leaf_id")
    assert conv_b.pop("current_leaf_id") == (None if leaf_a is None else new_id[leaf_a])
    params_a, params_b = json.loads(conv_a.pop("params")), json.loads(conv_b.pop("params"))
    assert SamplingParams.from_dict(params_a) == SamplingParams.from_dict(params_b)
    conv_a.pop("id"), conv_b.pop("id")
    assert conv_a == conv_b


def db_snapshot(db_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (the search index's too) and the schema version, read
    with a separate connection."""
    db = open_any(db_path)
    try:
        tables = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        snap = {t: sorted(db.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
                for t in tables}
        snap["user_version"] = db.execute("PRAGMA user_version").fetchall()
    finally:
        db.close()
    return snap


def file_bytes(db_path: Path) -> dict[str, bytes]:
    """The database file and its write-ahead log, byte for byte."""
    out = {}
    for path in (db_path, db_path.with_name(db_path.name + "-wal")):
        out[path.name] = path.read_bytes() if path.exists() else b""
    return out
