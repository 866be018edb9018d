"""The ``llamadesk`` command as a real process, on the real bundled model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from crypt_fixtures import open_any, open_app_store
from model_files import variant_of

TIMEOUT = 300  # generous: a shared machine; the benchmark measures speed


def llamadesk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llamadesk", *args], capture_output=True,
                          text=True, timeout=TIMEOUT, env=env or dict(os.environ), check=False)


def test_self_test_answers_from_the_bundled_model(bundled_model_path: Path) -> None:
    result = llamadesk("--self-test")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Q: ")
    assert lines[1].startswith("A: ") and len(lines[1]) > 5
    assert "self-test ok" in lines[-1] and "tokens/s" in lines[-1]
    assert lines[-2] == "document reader ok: 1 passage read in a child process"


def test_self_test_without_the_model_fails_with_one_clear_line(tmp_path: Path) -> None:
    resources = tmp_path / "resources"
    (resources / "models").mkdir(parents=True)
    manifest = Path(__file__).resolve().parents[2] / "resources" / "bundled-model.json"
    (resources / "bundled-model.json").write_text(manifest.read_text())
    env = {**os.environ, "LLAMADESK_RESOURCES": str(resources)}
    result = llamadesk("--self-test", env=env)
    assert result.returncode == 1
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, "one line, no traceback"
    assert "bundled model is missing" in message and "set-up" in message


def test_chat_streams_and_stores_in_the_windows_database(
        bundled_model_path: Path, home: Path) -> None:
    first = llamadesk("chat", "--new", "--max-tokens", "24", "Hello! What is two plus two?")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip(), "the answer is printed"
    assert "[conversation 1]" in first.stderr

    second = llamadesk("chat", "--max-tokens", "16", "Thanks. And three plus three?")
    assert second.returncode == 0, second.stderr
    assert "[conversation 1]" in second.stderr, "continues the most recent conversation"

    third = llamadesk("chat", "--new", "--max-tokens", "8", "A new topic")
    assert "[conversation 2]" in third.stderr

    db = open_any(home / "data" / "llamadesk.sqlite3")
    rows = db.execute("SELECT conversation_id, role, content, parent_id FROM messages "
                      "ORDER BY id").fetchall()
    db.close()
    assert [(c, r) for c, r, _, _ in rows] == [
        (1, "user"), (1, "assistant"), (1, "user"), (1, "assistant"), (2, "user"),
        (2, "assistant")]
    assert rows[0][2] == "Hello! What is two plus two?"
    assert rows[1][2].strip() == first.stdout.strip()
    # Each message follows the one before it in its conversation.
    assert rows[2][3] is not None and rows[4][3] is None


def test_chat_with_an_unknown_conversation_fails_clearly(bundled_model_path: Path) -> None:
    result = llamadesk("chat", "--conversation", "42", "hello")
    assert result.returncode == 1
    assert "no conversation 42" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["chat", "--help"]])
def test_help_and_version(argv: list[str]) -> None:
    result = llamadesk(*argv)
    assert result.returncode == 0
    assert "llamadesk" in result.stdout.lower()


def test_window_opens_and_saves_a_screenshot(bundled_model_path: Path, tmp_path: Path) -> None:
    shot = tmp_path / "window.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = llamadesk("--screenshot", str(shot), env=env)
    assert result.returncode == 0, result.stderr
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_chat_with_an_unknown_model_fails_and_leaves_the_chat_alone(
        bundled_model_path: Path, home: Path) -> None:
    first = llamadesk("chat", "--new", "--max-tokens", "4", "Hi")
    assert first.returncode == 0, first.stderr
    result = llamadesk("chat", "--model", "no-such-model", "Hello?")
    assert result.returncode == 1
    assert "not installed" in result.stderr and "Traceback" not in result.stderr
    db = open_any(home / "data" / "llamadesk.sqlite3")
    model_ids = db.execute("SELECT model_id FROM conversations").fetchall()
    count = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    db.close()
    assert model_ids == [(None,)]
    assert count == 2, "the failed request stored nothing"


def test_a_reply_in_flight_survives_the_app_being_killed(
        bundled_model_path: Path, home: Path, tmp_path: Path) -> None:
    import json
    import signal
    import time

    config = home / "config"
    config.mkdir(parents=True)
    # Long replies, so the kill lands mid-reply.
    (config / "settings.json").write_text(json.dumps(
        {"defaults": {"max_tokens": 4000, "temperature": 0.9, "repeat_penalty": 1.0}}))
    events = tmp_path / "events.jsonl"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "LLAMADESK_BENCH_TIMINGS": str(events),
           "LLAMADESK_BENCH_SEND": "Write a very long story about a lighthouse keeper."}
    app = subprocess.Popen([sys.executable, "-m", "llamadesk"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if events.exists() and "first_token" in events.read_text():
                break
            assert app.poll() is None, "the app ended by itself"
            time.sleep(0.2)
        else:
            pytest.fail("no reply started")
        db_path = home / "data" / "llamadesk.sqlite3"
        # Wait for a checkpoint with some text (one every 2 s), then kill without warning.
        saved = ""
        while time.monotonic() < deadline and len(saved) < 40:
            db = open_any(db_path)
            drafts = db.execute("SELECT value FROM app_state WHERE key LIKE 'draft:%'").fetchall()
            db.close()
            saved = json.loads(drafts[0][0])["text"] if drafts else ""
            time.sleep(0.2)
        assert app.poll() is None, "the reply ended before the kill; make it longer"
        app.send_signal(signal.SIGKILL)
        app.wait(timeout=30)
        db = open_any(db_path)
        (last,) = db.execute("SELECT value FROM app_state WHERE key LIKE 'draft:%'").fetchone()
        db.close()
        saved = json.loads(last)["text"]  # the checkpoint the killed run left
    finally:
        if app.poll() is None:
            app.kill()

    # The next start keeps what was written, marked interrupted.
    again = llamadesk("--screenshot", str(tmp_path / "after.png"),
                      env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert again.returncode == 0, again.stderr
    db = open_any(home / "data" / "llamadesk.sqlite3")
    rows = db.execute("SELECT role, content, finish_reason FROM messages ORDER BY id").fetchall()
    drafts_left = db.execute("SELECT COUNT(*) FROM app_state WHERE key LIKE 'draft:%'").fetchone()
    db.close()
    assert [r[0] for r in rows] == ["user", "assistant"]
    assert rows[1][2] == "interrupted"
    assert rows[1][1] == saved.strip(), "the last checkpoint is what was kept"
    assert drafts_left == (0,)


@pytest.mark.parametrize("last", ["not-a-number", "4242"])
def test_chat_with_a_damaged_or_stale_last_conversation_starts_a_new_one(
        bundled_model_path: Path, home: Path, last: str) -> None:
    from llamadesk.core.store import LAST_CONVERSATION_KEY

    store = open_app_store(home)
    store.set_state(LAST_CONVERSATION_KEY, last)
    store.close()
    result = llamadesk("chat", "--max-tokens", "4", "Hello?")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "[conversation 1]" in result.stderr


def test_chat_notes_when_older_messages_are_beyond_the_models_memory(
        bundled_model_path: Path, home: Path) -> None:
    from llamadesk.core.conversation import Role, SamplingParams
    from llamadesk.core.store import LAST_CONVERSATION_KEY

    store = open_app_store(home)
    conversation = store.create_conversation(params=SamplingParams(n_ctx=256, max_tokens=8))
    for i in range(12):
        store.add_message(conversation.id, Role.USER, f"Question {i} about the old mill "
                          "by the river, its miller, and the bread the village bakes.")
        store.add_message(conversation.id, Role.ASSISTANT, f"Answer {i}: the mill still "
                          "turns, and the bread is sold warm every morning.")
    store.set_state(LAST_CONVERSATION_KEY, str(conversation.id))
    store.close()
    result = llamadesk("chat", "And the mill's pond?")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "beyond the model's memory" in line]
    assert len(notes) == 1, result.stderr
    store = open_app_store(home)
    try:
        start = store.memory_start(conversation.id)
        messages = store.messages(conversation.id)
    finally:
        store.close()
    assert start is not None, "the memory start is kept for the next turn"
    assert messages[-1].role == Role.ASSISTANT and messages[-2].content == "And the mill's pond?"
    dropped = [m.id for m in messages].index(start)
    assert notes[0].startswith(f"[{dropped} older messages")


def test_chat_compare_stores_one_version_per_model(bundled_model_path: Path, home: Path,
                                                    tmp_path: Path) -> None:
    variant = variant_of(bundled_model_path, tmp_path / "variant.gguf")
    imported = llamadesk("models", "import", str(variant), "--name", "Second model")
    assert imported.returncode == 0, imported.stderr
    listed = llamadesk("models", "list")
    other = next(line.split()[0] for line in listed.stdout.splitlines()
                 if "Second model" in line)
    bundled_id = "smollm2-135m-instruct-q4_1"

    result = llamadesk("chat", "--new", "--max-tokens", "12", "--compare",
                       f"{bundled_id},{other}", "Name a colour.")
    assert result.returncode == 0, result.stderr
    assert f"## {bundled_id}" in result.stdout and f"## {other}" in result.stdout
    assert f"[1/2 {bundled_id}: loading…]" in result.stderr
    assert "2 versions of the reply stored" in result.stderr

    db = open_any(home / "data" / "llamadesk.sqlite3")
    rows = db.execute("SELECT id, role, parent_id, model_id FROM messages "
                      "ORDER BY id").fetchall()
    conversation_model = db.execute("SELECT model_id FROM conversations").fetchone()[0]
    db.close()
    question, first, second = rows
    assert question[1] == "user"
    # Both answers follow the question (versions of one reply), each from its model.
    assert [(r[1], r[2], r[3]) for r in (first, second)] == [
        ("assistant", question[0], bundled_id), ("assistant", question[0], other)]
    assert conversation_model != other, "comparing does not change the chat's model"


def test_chat_compare_needs_two_models() -> None:
    result = llamadesk("chat", "--compare", "only-one", "hello")
    assert result.returncode == 2
    assert "at least two models" in result.stderr
