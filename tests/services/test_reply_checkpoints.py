"""Reply checkpoints are committed on their own thread and connection, and a reply that
ended is never written again (a real SQLite file, a real second connection)."""

from __future__ import annotations

import threading
import time

import pytest

from llamadesk.core.conversation import Role
from llamadesk.core.store import ConversationStore, StoreError
from llamadesk.services.reply_checkpoints import ReplyCheckpoints

KEY = "draft:1"


def _wait_for(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_checkpoint_is_committed_by_the_writer_thread_on_its_own_connection(
        store: ConversationStore) -> None:
    opened_on: list[str] = []

    def open_store() -> ConversationStore:
        opened_on.append(threading.current_thread().name)
        return store.another_connection()

    checkpoints = ReplyCheckpoints(open_store)
    statements: list[str] = []
    store.connection.set_trace_callback(statements.append)
    try:
        checkpoints.save(KEY, "Once upon")
        _wait_for(lambda: store.get_state(KEY) == "Once upon")
        checkpoints.save(KEY, "Once upon a time")
        _wait_for(lambda: store.get_state(KEY) == "Once upon a time")
    finally:
        checkpoints.shutdown()
        store.connection.set_trace_callback(None)
    assert opened_on and opened_on[0].startswith("llamadesk-checkpoints")
    assert not [s for s in statements if "INSERT" in s or "BEGIN" in s], (
        "the caller's connection wrote nothing")


def test_a_reply_that_ended_before_its_checkpoint_was_written_leaves_none(
        store: ConversationStore) -> None:
    checkpoints = ReplyCheckpoints(store.another_connection)
    # Another writer (through the app's own SQLite: locks are per library in a process)
    # holds the write lock, so the save waits.
    blocker = store.another_connection().connection
    try:
        blocker.execute("BEGIN IMMEDIATE")
        checkpoints.save(KEY, "half a reply")
        time.sleep(0.3)  # the writer is inside its BEGIN, waiting for the lock
        checkpoints.end(KEY)  # the reply is stored meanwhile
        blocker.execute("COMMIT")
        checkpoints.shutdown()  # everything queued has run
    finally:
        blocker.close()
    assert store.get_state(KEY) is None


def test_the_reply_replaces_its_checkpoint_in_one_transaction(
        store: ConversationStore) -> None:
    conversation = store.create_conversation()
    question = store.add_message(conversation.id, Role.USER, "Tell me a story.")
    checkpoints = ReplyCheckpoints(store.another_connection)
    checkpoints.save(KEY, "Once")
    _wait_for(lambda: store.get_state(KEY) == "Once")
    checkpoints.end(KEY)
    store.add_message(conversation.id, Role.ASSISTANT, "Once upon a time.",
                      parent_id=question.id, forget_state=KEY)
    checkpoints.save("draft:2", "another reply")  # the writer still runs after it
    checkpoints.shutdown()
    assert store.get_state(KEY) is None
    assert store.get_state("draft:2") == "another reply"


def test_shutdown_writes_the_newest_text_waiting(store: ConversationStore) -> None:
    checkpoints = ReplyCheckpoints(store.another_connection)
    blocker = store.another_connection().connection
    try:
        blocker.execute("BEGIN IMMEDIATE")
        for n in range(1, 50):  # saves pile up behind the lock: only the newest counts
            checkpoints.save(KEY, f"text {n}")
        blocker.execute("COMMIT")
    finally:
        blocker.close()
    checkpoints.shutdown()
    assert store.get_state(KEY) == "text 49"
    checkpoints.shutdown()  # twice is harmless


def test_a_store_job_runs_on_the_writer_thread_after_the_saves_queued_before_it(
        store: ConversationStore, caplog: pytest.LogCaptureFixture) -> None:
    checkpoints = ReplyCheckpoints(store.another_connection)
    seen: list[tuple[str, str | None]] = []

    def failing(_other: ConversationStore) -> None:
        raise StoreError("the disk went away")

    try:
        checkpoints.save(KEY, "queued first")
        checkpoints.call(lambda other: seen.append(
            (threading.current_thread().name, other.get_state(KEY))))
        checkpoints.call(failing)  # reported, and the thread goes on
        _wait_for(lambda: "StoreError" in caplog.text)
        checkpoints.save("draft:2", "after the failed job")
        _wait_for(lambda: store.get_state("draft:2") == "after the failed job")
    finally:
        checkpoints.shutdown()
    checkpoints.call(lambda _other: seen.append(("after the shutdown", None)))
    checkpoints.shutdown()  # would wait for it, had it been queued
    assert len(seen) == 1, "nothing runs after the shutdown"
    assert seen[0][0].startswith("llamadesk-checkpoints")
    assert seen[0][1] == "queued first", "a job sees what was saved before it"
    assert "StoreError" in caplog.text and "the disk went away" not in caplog.text
