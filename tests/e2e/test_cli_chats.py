"""``llamadesk chats …`` as a real process on a real database: list, show, export to
Markdown and JSON, backups, imports that are whole or refused, and usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chat_fixtures import assert_same_tree, build_branchy_chat, db_snapshot
from crypt_fixtures import open_app_store

from llamadesk.core.conversation import Role
from llamadesk.core.export import conversation_markdown

TIMEOUT = 120


def llamadesk(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if home is not None:
        env["LLAMADESK_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "llamadesk", *args], capture_output=True,
                          text=True, timeout=TIMEOUT, env=env, stdin=subprocess.DEVNULL,
                          check=False)


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    """Exit 1, one line on stderr, no traceback; returns the line."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llamadesk: "), result.stderr
    return lines[0]


@pytest.fixture
def database(home: Path) -> Path:
    """The app's database in this test's home, with a branchy chat (1), a short one (2)
    and an empty one (3)."""
    store = open_app_store(home)
    build_branchy_chat(store)
    short = store.create_conversation("Pesto")
    store.add_message(short.id, Role.USER, "Pesto?")
    store.create_conversation("Nothing yet")
    store.close()
    return home / "data" / "llamadesk.sqlite3"


def test_list_and_show(database: Path) -> None:
    listed = llamadesk("chats", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["3", "2", "1"], "newest first, id first"
    assert lines[2].endswith("Trip plans ✈ «Lisbon»") and "4 messages" in lines[2]

    shown = llamadesk("chats", "show", "1")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.startswith("Trip plans ✈ «Lisbon»\n")
    assert "system prompt: Be brief. Answer in English." in text
    assert "── m-one · 51.1 tokens/s · 17 tokens · version 1 of 2 ──" in text
    assert "The Algarve." in text and "Kyoto" not in text, "only the branch on screen"
    assert "cut at the token limit" in text


def test_export_markdown_and_json_to_standard_output_and_files(
        database: Path, tmp_path: Path) -> None:
    md = llamadesk("chats", "export", "1")
    assert md.returncode == 0, md.stderr
    store = open_app_store()
    conversation = store.get_conversation(1)
    assert conversation is not None
    assert md.stdout == conversation_markdown(conversation, store.messages(1))
    store.close()

    as_json = llamadesk("chats", "export", "1", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["format"] == "llamadesk-conversation" and len(doc["messages"]) == 7

    target = tmp_path / "out" / "chat.md"
    target.parent.mkdir()
    written = llamadesk("chats", "export", "2", "--format", "md", "-o", str(target))
    assert written.returncode == 0 and written.stdout == ""
    assert target.read_text(encoding="utf-8").startswith("# Pesto\n")


def test_json_export_then_import_makes_an_identical_chat(database: Path,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "trip.json"
    assert llamadesk("chats", "export", "1", "--format", "json", "-o", str(path)).returncode == 0
    imported = llamadesk("chats", "import", str(path))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("4  Trip plans ✈ «Lisbon»  (7 messages, from trip.json)")
    assert_same_tree(database, 1, database, 4)


def test_backup_to_a_folder_and_restore_into_another_profile(database: Path,
                                                             tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    backup = llamadesk("chats", "export", "--all", "-o", str(folder))
    assert backup.returncode == 0, backup.stderr
    assert "exported 3 chats" in backup.stderr
    again = llamadesk("chats", "export", "--all", "-o", str(folder))
    assert "not empty" in one_line_failure(again)

    other = tmp_path / "other-home"
    restored = llamadesk("chats", "import", str(folder), home=other)
    assert restored.returncode == 0, restored.stderr
    assert len(restored.stdout.splitlines()) == 3
    assert "imported 3 chats, refused 0" in restored.stderr
    by_title = {line.split("  ")[1]: int(line.split()[0])
                for line in restored.stdout.splitlines()}
    other_db = other / "data" / "llamadesk.sqlite3"
    assert_same_tree(database, 1, other_db, by_title["Trip plans ✈ «Lisbon»"])
    assert_same_tree(database, 2, other_db, by_title["Pesto"])
    assert_same_tree(database, 3, other_db, by_title["Nothing yet"])


def test_broken_or_newer_files_are_refused_and_change_nothing(database: Path,
                                                              tmp_path: Path) -> None:
    good = json.loads(llamadesk("chats", "export", "1", "--format", "json").stdout)
    newer = {**good, "format_version": 2}
    loop = json.loads(json.dumps(good))
    loop["messages"][0]["parent"] = 2
    files = {"broken.json": '{"format": "llamadesk-conversation", ',
             "newer.json": json.dumps(newer), "loop.json": json.dumps(loop)}
    before = db_snapshot(database)
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        line = one_line_failure(llamadesk("chats", "import", str(tmp_path / name)))
        assert line.startswith(f"llamadesk: {name} was not imported: ")
    assert "newer LlamaDesk" in one_line_failure(
        llamadesk("chats", "import", str(tmp_path / "newer.json")))
    assert "No such file" in one_line_failure(
        llamadesk("chats", "import", str(tmp_path / "missing.json")))
    assert "no conversation 42" in one_line_failure(llamadesk("chats", "show", "42"))
    assert db_snapshot(database) == before


def test_a_folder_with_some_broken_files_imports_the_rest_and_says_why(
        database: Path, tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    assert llamadesk("chats", "export", "--all", "-o", str(folder)).returncode == 0
    damaged = next(folder.glob("00001 *.json"))
    damaged.write_text(damaged.read_text(encoding="utf-8")[:-40], encoding="utf-8")
    result = llamadesk("chats", "import", str(folder))
    assert result.returncode == 1
    assert [line.split("  ")[1] for line in result.stdout.splitlines()] == [
        "Nothing yet", "Pesto"]
    assert f"llamadesk: {damaged.name} was not imported: not a JSON file" in result.stderr
    assert "imported 2 chats, refused 1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv", [
    ["chats"], ["chats", "export"], ["chats", "export", "--all"],
    ["chats", "export", "1", "--all", "-o", "x"], ["chats", "export", "--all", "-o", "x",
                                                    "--format", "md"],
    ["chats", "show", "one"], ["chats", "export", "1", "--format", "pdf"], ["chats", "import"]])
def test_usage_errors_exit_2(argv: list[str], home: Path) -> None:
    result = llamadesk(*argv)
    assert result.returncode == 2, result
    assert "usage: llamadesk chats" in result.stderr and "Traceback" not in result.stderr


def test_a_chat_written_by_the_model_round_trips(bundled_model_path: Path, home: Path,
                                                 tmp_path: Path) -> None:
    chat = llamadesk("chat", "--new", "--max-tokens", "12", "Name a colour.")
    assert chat.returncode == 0, chat.stderr
    path = tmp_path / "chat.json"
    assert llamadesk("chats", "export", "1", "--format", "json", "-o", str(path)).returncode == 0
    reply = json.loads(path.read_text(encoding="utf-8"))["messages"][1]
    assert reply["role"] == "assistant" and reply["model_id"]
    assert reply["stats"]["completion_tokens"] and reply["stats"]["tokens_per_s"]
    imported = llamadesk("chats", "import", str(path))
    assert imported.returncode == 0, imported.stderr
    database = home / "data" / "llamadesk.sqlite3"
    assert_same_tree(database, 1, database, int(imported.stdout.split()[0]))
