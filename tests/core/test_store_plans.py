"""The branch reads look their messages up by id from the walk; they never read the
whole messages table (SQLite 3.53, sqlcipher3's, did so for the sort when the final
select was a plain JOIN: 0.1-0.7 s at 1,000,000 messages to open a chat)."""

from __future__ import annotations

from llamadesk.core import store as store_module
from llamadesk.core.store import ConversationStore


def _plan(store: ConversationStore, sql: str, *args: object) -> list[str]:
    rows = store._db.execute(f"EXPLAIN QUERY PLAN {sql}", args).fetchall()
    return [str(row[3]) for row in rows]


def test_a_branch_page_and_a_whole_branch_are_read_by_id(
        store: ConversationStore) -> None:
    page = ("WITH RECURSIVE up(id, depth) AS (SELECT current_leaf_id, 1 FROM conversations"
            f" WHERE id = ? AND current_leaf_id IS NOT NULL {store_module._UP_STEP})"
            f" {store_module._PAGE_SELECT}")
    for plan in (_plan(store, page, 1, 60), _plan(store, store_module._BRANCH_SELECT, 1)):
        assert not [step for step in plan if step.startswith("SCAN m")], plan
        assert any(step.startswith("SEARCH m USING INTEGER PRIMARY KEY") for step in plan)
