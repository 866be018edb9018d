"""Attachments: whole when they fit, their best passages when they do not."""

from __future__ import annotations

from pathlib import Path

from doc_files import write_pdf

from llamadesk.core.documents.attach import attachment_passages
from llamadesk.core.documents.chunker import estimate_tokens
from llamadesk.core.documents.quoting import quote_passages


def test_small_files_go_whole_with_their_pages(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "a.pdf", ["Page one text.", "Page two text."])
    note = tmp_path / "n.txt"
    note.write_text("A short note.")
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"\x00\x00binary")
    passages, failed = attachment_passages([pdf, note, bad], "anything", room=1000)
    assert [(p.where, p.text) for p in passages] == [
        ("a.pdf p. 1", "Page one text."), ("a.pdf p. 2", "Page two text."),
        ("n.txt", "A short note.")]
    assert failed == [(str(bad), "binary file, not text")]


def test_a_large_file_gives_its_best_passages_within_the_room(tmp_path: Path) -> None:
    big = tmp_path / "big.md"
    parts = [f"# Part {i}\n" + f"Filler words about topic {i}. " * 80 for i in range(40)]
    parts[23] = "# Part 23\nThe boiler pressure must stay under 2.5 bar. " + "More. " * 20
    big.write_text("\n".join(parts))
    passages, failed = attachment_passages([big], "What pressure for the boiler?", room=600)
    assert failed == []
    assert passages and passages[0].heading == "Part 23"
    assert "2.5 bar" in passages[0].text
    assert estimate_tokens(quote_passages(passages)) <= 600
