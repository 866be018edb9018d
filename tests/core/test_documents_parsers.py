"""Parsing documents: each format read with its pages or headings, each bad file refused
with its own reason (tests/support/doc_files.py writes the PDFs and DOCX files)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from doc_files import write_docx, write_pdf

from llamadesk.core.documents.parsers import (
    DocumentError,
    Section,
    check_zip,
    decode_text,
    parse_file,
    walk,
)


def test_pdf_keeps_pages_and_skips_empty_ones(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "r.pdf", ["First page (intro)", "", "Third page"])
    assert parse_file(pdf) == [Section("First page (intro)", page=1),
                               Section("Third page", page=3)]


def test_pdf_without_text_layer_says_scanned(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "scan.pdf", ["", ""])
    with pytest.raises(DocumentError, match="no text — scanned"):
        parse_file(pdf)


def test_password_protected_pdf_is_refused(tmp_path: Path) -> None:
    import pypdf

    plain = write_pdf(tmp_path / "p.pdf", ["secret numbers"])
    writer = pypdf.PdfWriter(clone_from=plain)
    writer.encrypt("hunter2")
    writer.write(tmp_path / "locked.pdf")
    with pytest.raises(DocumentError, match="password-protected"):
        parse_file(tmp_path / "locked.pdf")


def test_corrupt_pdf_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >> garbage")
    with pytest.raises(DocumentError, match=r"corrupt or unreadable PDF|no text"):
        parse_file(bad)


def test_docx_sections_follow_headings(tmp_path: Path) -> None:
    docx = write_docx(tmp_path / "d.docx", [("Intro", "one"), (None, "two"), ("Money", "12")])
    assert parse_file(docx) == [Section("one\ntwo", heading="Intro"),
                                Section("12", heading="Money")]


def test_docx_zip_bomb_refused_before_unpacking(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * (4 * 1024 * 1024))
    with pytest.raises(DocumentError, match="zip bomb"):
        parse_file(bomb)
    with pytest.raises(DocumentError, match="unpacks to"):
        check_zip(bomb, max_unpacked=1024 * 1024, max_ratio=10_000)


def test_docx_that_is_not_a_zip(tmp_path: Path) -> None:
    fake = tmp_path / "fake.docx"
    fake.write_text("not a zip")
    with pytest.raises(DocumentError, match="corrupt DOCX"):
        parse_file(fake)


def test_markdown_rst_and_html_headings(tmp_path: Path) -> None:
    md = tmp_path / "n.md"
    md.write_text("intro\n# Taxes\nrefund\n```\n# not a heading\n```\n## Garden\nsun\n")
    assert [(s.heading, s.text.splitlines()[0]) for s in parse_file(md)] == [
        (None, "intro"), ("Taxes", "refund"), ("Garden", "sun")]
    rst = tmp_path / "n.rst"
    rst.write_text("Title\n=====\n\nbody text\n\nPart\n----\nmore\n")
    assert [(s.heading, s.text) for s in parse_file(rst)] == [("Title", "body text"),
                                                              ("Part", "more")]
    page = tmp_path / "p.html"
    page.write_text("<html><head><title>t</title><script>var x=1</script></head><body>"
                    "<p>lead</p><h2>Rates &amp; fees</h2><p>5% a year</p></body></html>")
    assert parse_file(page) == [Section("lead"), Section("5% a year", heading="Rates & fees")]


def test_encodings_detected_or_refused() -> None:
    assert decode_text("héllo".encode()) == "héllo"
    assert decode_text("héllo".encode("utf-8-sig")) == "héllo"
    assert decode_text("héllo wörld".encode("utf-16")) == "héllo wörld"
    assert decode_text("hello world".encode("utf-16-le")) == "hello world"
    with pytest.raises(DocumentError, match="unreadable text encoding"):
        decode_text("caf\xe9 cr\xe8me".encode("latin-1"))
    with pytest.raises(DocumentError, match="binary"):
        decode_text(b"\x7fELF\x02\x01\x01\x00\x00\x00" * 10)
    with pytest.raises(DocumentError, match="binary"):  # zeros every other byte
        decode_text(b"\x00\x01" * 20)


def test_binary_source_file_and_size_limit(tmp_path: Path) -> None:
    binary = tmp_path / "x.py"
    binary.write_bytes(os.urandom(4096))
    with pytest.raises(DocumentError, match=r"binary|unreadable"):
        parse_file(binary)
    big = tmp_path / "huge.log"
    with open(big, "wb") as fh:
        fh.truncate(3 * 1024 * 1024)  # sparse: no disk used
    with pytest.raises(DocumentError, match=r"too large .* up to 1 MiB"):
        parse_file(big, max_bytes=1024 * 1024)


def test_file_gone_is_a_reason(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="the file is gone"):
        parse_file(tmp_path / "gone.txt")


def test_walk_ends_symlink_loops_and_names_reasons(tmp_path: Path) -> None:
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "a.txt").write_text("a")
    (tmp_path / "docs" / "sub" / "b.md").write_text("b")
    (tmp_path / "docs" / "sub" / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "docs" / "sub" / "back").symlink_to(tmp_path / "docs")
    (tmp_path / "self").symlink_to(tmp_path / "self")
    found = list(walk([tmp_path / "docs", tmp_path / "self", tmp_path / "none.txt",
                       tmp_path / "docs" / "sub" / "image.png"]))
    assert found == [
        (tmp_path / "docs" / "a.txt", None),
        (tmp_path / "docs" / "sub" / "b.md", None),
        (tmp_path / "self", "a symlink loop"),
        (tmp_path / "none.txt", "no such file or folder"),
        (tmp_path / "docs" / "sub" / "image.png", "unsupported format (.png)"),
    ]
