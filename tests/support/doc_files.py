"""Real document files for tests and the bench: PDFs written byte by byte (one text
page each, Helvetica, so pypdf extracts the text back), DOCX through python-docx."""

from __future__ import annotations

from pathlib import Path


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def write_pdf(path: Path, pages: list[str]) -> Path:
    """A PDF with one page per string (lines split on newlines); an empty string gives
    a page with no text layer, like a scan."""
    objects: list[bytes] = []
    n = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    font_id = 3 + 2 * n
    for i, text in enumerate(pages):
        content_id = 4 + 2 * i
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} "
            f"0 R /Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode())
        lines = [f"({_pdf_escape(line)}) Tj T*" for line in text.splitlines()]
        stream = ("BT /F1 11 Tf 14 TL 50 750 Td " + " ".join(lines) + " ET").encode("latin-1")
        if not text:
            stream = b"0 0 m 10 10 l S"
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream
                       + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


def write_docx(path: Path, parts: list[tuple[str | None, str]]) -> Path:
    """A DOCX of (heading or None, paragraph) parts."""
    import docx

    document = docx.Document()
    for heading, text in parts:
        if heading:
            document.add_heading(heading, level=1)
        document.add_paragraph(text)
    document.save(str(path))
    return path


def write_mixed_folder(folder: Path, notes_tail: str = "") -> Path:
    """The documents tests' folder: a PDF, a DOCX, a Markdown note (``notes_tail``
    appended) and a binary file that is no document."""
    folder.mkdir()
    write_pdf(folder / "tax.pdf", ["Cover page", "The tax refund for 2025 was 1,234 euros."])
    write_docx(folder / "garden.docx", [("Tomatoes", "Tomatoes need six hours of sun.")])
    (folder / "notes.md").write_text("# Cats\nThe cat is called Miso.\n" + notes_tail)
    (folder / "locked.txt").write_bytes(b"\x00\x01binary\x00")
    return folder
