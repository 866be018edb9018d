"""Files into text sections, one parser per format, each refusal with a reason in words.

A ``Section`` is a run of text with where it came from: the PDF page (1-based) or the
heading above it. Parsers never raise anything but ``DocumentError`` for a bad file, so
one bad file in a folder is reported and the rest are indexed.
"""

from __future__ import annotations

import codecs
import errno
import html.parser
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

#: Files above this size are refused (a 2 GB log is not a document to quote from).
MAX_FILE_BYTES = 64 * 1024 * 1024
#: A DOCX whose parts unpack to more than this, or compress more than ``MAX_ZIP_RATIO``
#: times, is refused before anything is unpacked (zip bombs).
MAX_DOCX_UNPACKED = 256 * 1024 * 1024
MAX_ZIP_RATIO = 100
#: Text files whose first bytes hold this share of control bytes are binary.
_BINARY_SNIFF = 8192

TEXT_SUFFIXES = {".txt", ".text", ".log", ".csv", ".tsv", ".json", ".yaml", ".yml",
                 ".toml", ".ini", ".cfg"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
RST_SUFFIXES = {".rst"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
CODE_SUFFIXES = {".py", ".c", ".h", ".cpp", ".hpp", ".cc", ".rs", ".go", ".java", ".js",
                 ".ts", ".tsx", ".jsx", ".rb", ".php", ".cs", ".swift", ".kt", ".sh",
                 ".sql", ".lua", ".pl", ".r", ".m", ".scala", ".css", ".xml"}
SUPPORTED_SUFFIXES = (TEXT_SUFFIXES | MARKDOWN_SUFFIXES | RST_SUFFIXES | HTML_SUFFIXES
                      | CODE_SUFFIXES | {".pdf", ".docx"})


class DocumentError(Exception):
    """This file cannot be read as a document; ``str()`` says why, for the user."""


@dataclass(frozen=True)
class Section:
    """Text from one place of a document: a PDF page, or the part under one heading."""

    text: str
    page: int | None = None
    heading: str | None = None


def is_supported(path: Path) -> bool:
    """Whether ``path``'s suffix names a format the parsers read."""
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def parse_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> list[Section]:
    """The sections of ``path``; ``DocumentError`` with a reason for a file that cannot
    be read (gone, too large, binary, encrypted, corrupt, no text)."""
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise DocumentError("the file is gone (deleted or moved while indexing)") from exc
    except OSError as exc:
        raise DocumentError(f"cannot read the file: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise DocumentError("not a regular file")
    if info.st_size > max_bytes:
        raise DocumentError(f"too large ({info.st_size / 2**20:.0f} MiB; documents are "
                            f"read up to {max_bytes / 2**20:.0f} MiB)")
    suffix = path.suffix.lower()
    try:
        if suffix == ".pdf":
            sections = _pdf(path)
        elif suffix == ".docx":
            sections = _docx(path)
        elif suffix in HTML_SUFFIXES:
            sections = _html(read_text(path))
        elif suffix in MARKDOWN_SUFFIXES:
            sections = _markdown(read_text(path))
        elif suffix in RST_SUFFIXES:
            sections = _rst(read_text(path))
        elif suffix in TEXT_SUFFIXES | CODE_SUFFIXES:
            sections = [Section(read_text(path))]
        else:
            raise DocumentError(f"unsupported format ({suffix or 'no suffix'})")
    except FileNotFoundError as exc:
        raise DocumentError("the file is gone (deleted or moved while indexing)") from exc
    except OSError as exc:
        raise DocumentError(f"cannot read the file: {exc.strerror or exc}") from exc
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise DocumentError("no text — scanned?" if suffix == ".pdf" else "no text")
    return sections


# -- plain text ---------------------------------------------------------------------------
def decode_text(data: bytes) -> str:
    """Bytes as text: a BOM's encoding, else UTF-8, else UTF-16 without BOM recognised by
    its zero bytes; anything else is refused rather than guessed into mojibake. Binary
    data (NUL bytes or many control bytes) is refused too."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return _printable(data.decode(encoding))
            except UnicodeDecodeError as exc:
                raise DocumentError(f"not valid {encoding.upper()} text") from exc
    head = data[:_BINARY_SNIFF]
    if head and head.count(0) > len(head) // 3 and len(head) % 2 == 0:
        # UTF-16 without a BOM: every other byte of ASCII text is zero.
        le = head[1::2].count(0) > len(head) // 3
        try:
            return _printable(data.decode("utf-16-le" if le else "utf-16-be"))
        except UnicodeDecodeError:
            pass
    if b"\x00" in head:
        raise DocumentError("binary file, not text")
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    if head and controls > len(head) // 20:
        raise DocumentError("binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"unreadable text encoding (not UTF-8 or UTF-16; byte {exc.start}); save it "
            "as UTF-8") from exc


def _printable(text: str) -> str:
    """``text``, unless control characters show it was binary data decoded as text."""
    head = text[:_BINARY_SNIFF]
    controls = sum(1 for ch in head if ord(ch) < 32 and ch not in "\t\n\f\r\x1b")
    if controls > len(head) // 20:
        raise DocumentError("binary file, not text")
    return text


def read_text(path: Path) -> str:
    """A text file's content, decoded by ``decode_text``."""
    return decode_text(path.read_bytes())


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _by_headings(lines: list[str],
                 heading_at: Callable[[list[str], int], tuple[str, int] | None]
                 ) -> list[Section]:
    """Lines into sections, a new one at each heading ``heading_at`` finds (it returns
    the title and how many lines the heading takes)."""
    sections: list[Section] = []
    heading: str | None = None
    buffer: list[str] = []
    i = 0
    while i < len(lines):
        found = heading_at(lines, i)
        if found is None:
            buffer.append(lines[i])
            i += 1
            continue
        title, used = found
        if "".join(buffer).strip():
            sections.append(Section("\n".join(buffer).strip(), heading=heading))
        heading, buffer = title, []
        i += used
    if "".join(buffer).strip():
        sections.append(Section("\n".join(buffer).strip(), heading=heading))
    return sections


def _markdown(text: str) -> list[Section]:
    in_fence = False

    def heading_at(lines: list[str], i: int) -> tuple[str, int] | None:
        nonlocal in_fence
        if lines[i].lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else _MD_HEADING.match(lines[i])
        return (match.group(2), 1) if match else None

    return _by_headings(text.splitlines(), heading_at)


_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")


def _rst(text: str) -> list[Section]:
    def heading_at(lines: list[str], i: int) -> tuple[str, int] | None:
        if (i + 1 < len(lines) and lines[i].strip() and not _RST_UNDERLINE.match(lines[i])
                and _RST_UNDERLINE.match(lines[i + 1])
                and len(lines[i + 1].rstrip()) >= len(lines[i].rstrip())):
            return lines[i].strip(), 2
        return None

    return _by_headings(text.splitlines(), heading_at)


# -- HTML -----------------------------------------------------------------------------------
class _HtmlText(html.parser.HTMLParser):
    """Visible text of an HTML page, split at h1-h6 headings."""

    _SKIP: ClassVar[set[str]] = {"script", "style", "noscript", "template", "head"}
    _BLOCK: ClassVar[set[str]] = {"p", "div", "br", "li", "tr", "section", "article",
                                  "pre", "blockquote", "table", "ul", "ol", "dd", "dt"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self._heading: str | None = None
        self._text: list[str] = []
        self._title: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._title = []
        elif tag in self._BLOCK:
            self._text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(self._skip - 1, 0)
        elif re.fullmatch(r"h[1-6]", tag) and self._title is not None:
            self._heading = " ".join("".join(self._title).split()) or None
            self._title = None
        elif tag in self._BLOCK:
            self._text.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        (self._title if self._title is not None else self._text).append(data)

    def _flush(self) -> None:
        text = re.sub(r"[ \t]+", " ", "".join(self._text))
        text = re.sub(r"\n\s*\n+", "\n\n", text).strip()
        if text:
            self.sections.append(Section(text, heading=self._heading))
        self._text = []

    def close(self) -> None:
        super().close()
        self._flush()


def _html(text: str) -> list[Section]:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    return parser.sections


# -- PDF and DOCX ------------------------------------------------------------------------
def _pdf(path: Path) -> list[Section]:
    import pypdf
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        reader = pypdf.PdfReader(path, strict=False)
        if reader.is_encrypted:
            # Many PDFs are "encrypted" with an empty user password (copy protection).
            # AES needs the optional ``cryptography`` package (DependencyError): a
            # PDF that needs it is reported as encrypted.
            try:
                if not reader.decrypt(""):
                    raise DocumentError("password-protected PDF")
            except (NotImplementedError, DependencyError) as exc:
                raise DocumentError("password-protected PDF") from exc
        sections = []
        for number, page in enumerate(reader.pages, 1):
            text = page.extract_text() or ""
            if text.strip():
                sections.append(Section(text.strip(), page=number))
        return sections
    except FileNotDecryptedError as exc:
        raise DocumentError("password-protected PDF") from exc
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError,
            RecursionError, AssertionError, IndexError, ZeroDivisionError) as exc:
        # pypdf raises a range of errors for damaged files; none is the user's bug.
        raise DocumentError(f"corrupt or unreadable PDF ({type(exc).__name__})") from exc


def check_zip(path: Path, *, max_unpacked: int = MAX_DOCX_UNPACKED,
              max_ratio: int = MAX_ZIP_RATIO) -> None:
    """Refuse a zip whose declared sizes unpack too large, or compress suspiciously well,
    before any part is unpacked."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise DocumentError("corrupt DOCX (not a zip file)") from exc
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if total > max_unpacked:
        raise DocumentError(f"DOCX unpacks to {total / 2**20:.0f} MiB (limit "
                            f"{max_unpacked / 2**20:.0f} MiB): refused as a possible zip bomb")
    if packed and total / packed > max_ratio and total > 1024 * 1024:
        raise DocumentError(f"DOCX compresses {total // packed}:1: refused as a possible "
                            "zip bomb")


def _docx(path: Path) -> list[Section]:
    check_zip(path)
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise DocumentError(f"corrupt DOCX ({type(exc).__name__})") from exc
    except Exception as exc:  # lxml's XMLSyntaxError and kin: a damaged part
        if type(exc).__module__.startswith("lxml"):
            raise DocumentError("corrupt DOCX (damaged XML)") from exc
        raise
    lines: list[tuple[str, bool]] = []
    for paragraph in document.paragraphs:
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        lines.append((paragraph.text, style.lower().startswith(("heading", "title"))))
    for table in document.tables:
        for row in table.rows:
            lines.append((" | ".join(cell.text for cell in row.cells), False))

    def heading_at(items: list[str], i: int) -> tuple[str, int] | None:
        return (items[i], 1) if lines[i][1] and items[i].strip() else None

    return _by_headings([text for text, _ in lines], heading_at)


# -- folders ---------------------------------------------------------------------------------
def walk(paths: list[Path]) -> Iterator[tuple[Path, str | None]]:
    """Every supported file under ``paths`` (files and folders), each once, with None; or
    a path with the reason it is skipped (missing, a symlink loop, an unsupported file
    named directly). Symlinks are followed, but a folder already visited is not
    entered again, so a loop ends."""
    seen: set[tuple[int, int]] = set()
    for root in paths:
        try:
            info = root.stat()
        except OSError as exc:
            yield root, _stat_reason(root, exc)
            continue
        if stat.S_ISDIR(info.st_mode):
            yield from _walk_dir(root, seen)
        elif is_supported(root):
            yield root, None
        else:
            yield root, f"unsupported format ({root.suffix or 'no suffix'})"


def _stat_reason(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symlink loop"
    if isinstance(exc, FileNotFoundError):
        return "a broken symlink" if path.is_symlink() else "no such file or folder"
    return f"cannot read: {exc.strerror or exc}"


def _walk_dir(folder: Path, seen: set[tuple[int, int]]) -> Iterator[tuple[Path, str | None]]:
    try:
        info = folder.stat()
    except OSError as exc:
        yield folder, f"cannot read: {exc.strerror or exc}"
        return
    key = (info.st_dev, info.st_ino)
    if key in seen:
        return  # a symlink back to a folder already walked
    seen.add(key)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        yield folder, f"cannot read the folder: {exc.strerror or exc}"
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith("."):
            continue  # hidden files and folders (.git) are not documents
        try:
            is_dir = entry.is_dir()
        except OSError:
            yield path, "a symlink loop"
            continue
        if is_dir:
            yield from _walk_dir(path, seen)
        elif is_supported(path):
            try:
                path.stat()
            except OSError as exc:
                yield path, _stat_reason(path, exc)
                continue
            yield path, None
