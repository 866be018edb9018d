"""``llamadesk docs …`` and ``llamadesk chat --docs`` as real processes on a real
database with the real bundled model: collections, per-file reasons, ranked passages,
an answer with a ``Sources:`` line that names what the reply was given — and no
document text in the log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from doc_files import write_docx, write_pdf

from llamadesk.core.documents.index import Passage
from llamadesk.core.documents.quoting import sources_line

TIMEOUT = 180
SECRET = "Zanzibar-7731"


def llamadesk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llamadesk", *args], capture_output=True,
                          text=True, timeout=TIMEOUT, env=dict(os.environ),
                          stdin=subprocess.DEVNULL, check=False)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_pdf(docs / "tax.pdf", ["Cover", f"The tax refund for 2025 was 1,234 euros. "
                                          f"Reference {SECRET}."])
    write_docx(docs / "garden.docx", [("Tomatoes", "Tomatoes need six hours of sun.")])
    (docs / "notes.md").write_text("# Cat\nThe cat is called Miso.\n")
    (docs / "blob.txt").write_bytes(b"\x00\x01\x02" * 50)
    return docs


def test_collections_from_the_command_line(folder: Path) -> None:
    added = llamadesk("docs", "add", "Home", str(folder))
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == ("Home: 3 added, 0 changed, 0 removed, 0 unchanged, "
                                    "1 skipped; 3 files, 4 passages")
    assert f"skipped {folder / 'blob.txt'}: binary file, not text" in added.stderr

    listed = llamadesk("docs", "list")
    assert listed.stdout.startswith("Home\t3 files, 1 skipped, 4 passages, updated ")
    assert listed.stdout.rstrip().endswith(str(folder))

    found = llamadesk("docs", "search", "Home", "how much was the tax refund?", "-k", "2")
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    assert lines[0].startswith("1. tax.pdf p. 2  (score ") and str(folder) in lines[0]
    assert "1,234 euros" in lines[1]

    (folder / "notes.md").write_text("# Cat\nThe cat is now called Pixel.\n")
    (folder / "tax.pdf").unlink()
    updated = llamadesk("docs", "update", "Home")
    assert updated.stdout.strip() == ("Home: 0 added, 1 changed, 1 removed, 1 unchanged, "
                                      "1 skipped; 2 files, 2 passages")
    assert llamadesk("docs", "search", "Home", "refund").stdout == ""

    removed = llamadesk("docs", "remove", "Home")
    assert removed.returncode == 0 and llamadesk("docs", "list").stdout == ""
    gone = llamadesk("docs", "search", "Home", "cat")
    assert gone.returncode == 1
    assert gone.stderr.strip() == ("llamadesk: there is no collection named 'Home' "
                                   "(`llamadesk docs list` shows them)")


def test_chat_answers_with_sources_and_logs_no_document(folder: Path, home: Path,
                                                        bundled_model_path: Path) -> None:
    assert llamadesk("docs", "add", "Home", str(folder)).returncode == 0
    asked = llamadesk("chat", "--new", "--max-tokens", "24", "--docs", "Home",
                      "What was the tax refund for 2025?")
    assert asked.returncode == 0, asked.stderr
    answer, last = asked.stdout.rstrip("\n").rsplit("\n", 1)
    assert answer.strip(), "the bundled model answered"
    assert last.startswith("Sources: [1] tax.pdf p. 2")

    exported = llamadesk("chats", "export", "1", "--format", "json")
    reply = json.loads(exported.stdout)["messages"][-1]
    given = [Passage(s["text"], s["path"], s["page"], s["heading"]) for s in reply["sources"]]
    assert last == sources_line(given), "the printed sources are the stored ones"
    assert SECRET in given[0].text
    question = json.loads(exported.stdout)["messages"][-2]["content"]
    assert question == "What was the tax refund for 2025?", "stored as asked"

    logs = "".join(p.read_text(errors="replace") for p in (home / "logs").rglob("*")
                   if p.is_file())
    assert SECRET not in logs and "1,234 euros" not in logs, "no document text in the log"


def test_unknown_collection_fails_before_loading(folder: Path) -> None:
    asked = llamadesk("chat", "--new", "--docs", "Nope", "hello")
    assert asked.returncode == 1
    assert asked.stderr.strip().endswith("there is no collection named 'Nope' "
                                         "(`llamadesk docs list` shows them)")


def test_chat_with_an_attached_file(tmp_path: Path, bundled_model_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("# Boiler\nThe boiler pressure must stay under 2.5 bar.\n")
    blob = tmp_path / "blob.txt"
    blob.write_bytes(b"\x00\x01" * 20)
    asked = llamadesk("chat", "--new", "--max-tokens", "16", "--attach", str(note),
                      "--attach", str(blob), "What pressure for the boiler?")
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.rstrip().endswith("Sources: [1] note.md § Boiler")
    assert f"[not attached: {blob}: binary file, not text]" in asked.stderr
    only_bad = llamadesk("chat", "--new", "--attach", str(blob), "hello")
    assert only_bad.returncode == 1
    assert "none of the attached files could be read" in only_bad.stderr
