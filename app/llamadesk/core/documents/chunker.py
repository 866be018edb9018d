"""Sections into chunks of at most a given number of tokens, each keeping its page or
heading.

Our own splitter rather than ``semantic-text-splitter``: the token counts that matter are
those of the GGUF embedding model (llama.cpp's tokenizer, passed in as ``count_tokens``),
which that package cannot use without a Hugging Face ``tokenizers`` file, and it would add
a compiled Rust wheel to every installer for forty lines of work. Text is cut at the
largest boundary that fits: paragraphs, then lines, then sentences, then words; a single
word longer than a chunk is cut by characters. Consecutive chunks of a section overlap
by a few sentences' worth of tokens so an answer that spans a boundary is found whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the parsers (zipfile, html.parser) load when a file is read
    from llamadesk.core.documents.parsers import Section

#: Tokens per chunk: small enough that five passages and a question fit a 4,096-token
#: context beside a chat, large enough to hold a paragraph with its context.
CHUNK_TOKENS = 256
OVERLAP_TOKENS = 32

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_SPLITTERS = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"(?<=[.!?])\s+"),
              re.compile(r"\s+"))


def estimate_tokens(text: str) -> int:
    """A tokenizer-free count: words and punctuation marks. Close to (and mostly above)
    what BPE tokenizers give for prose, so chunks sized by it fit real contexts."""
    return len(_WORD.findall(text))


@dataclass(frozen=True)
class Chunk:
    """A passage to index: its text, its place in the document, its order there."""

    text: str
    ordinal: int
    page: int | None = None
    heading: str | None = None


def chunk_sections(sections: Iterable[Section], *, max_tokens: int = CHUNK_TOKENS,
                   overlap: int = OVERLAP_TOKENS,
                   count_tokens: Callable[[str], int] = estimate_tokens) -> list[Chunk]:
    """The chunks of a document, in order; none longer than ``max_tokens``."""
    if max_tokens < 8 or not 0 <= overlap < max_tokens // 2:
        raise ValueError("max_tokens must be at least 8 and overlap under half of it")
    chunks: list[Chunk] = []
    for section in sections:
        pieces = _pieces(section.text.strip(), max_tokens, count_tokens, 0)
        for text in _pack(pieces, max_tokens, overlap, count_tokens):
            chunks.append(Chunk(text, len(chunks), section.page, section.heading))
    return chunks


def _pieces(text: str, limit: int, count: Callable[[str], int], level: int) -> list[str]:
    """``text`` split at the coarsest boundary that leaves every piece within ``limit``
    (finer boundaries only for the pieces that need them)."""
    if not text or count(text) <= limit:
        return [text] if text.strip() else []
    if level >= len(_SPLITTERS):
        return _by_characters(text, limit, count)
    parts = [p.strip() for p in _SPLITTERS[level].split(text) if p.strip()]
    if len(parts) == 1:
        return _pieces(text, limit, count, level + 1)
    out: list[str] = []
    for part in parts:
        out.extend(_pieces(part, limit, count, level + 1))
    return out


def _by_characters(text: str, limit: int, count: Callable[[str], int]) -> list[str]:
    out: list[str] = []
    step = max(len(text) * limit // max(count(text), 1), 1)
    while text:
        cut = step
        while cut > 1 and count(text[:cut]) > limit:
            cut = cut * 3 // 4
        out.append(text[:cut])
        text = text[cut:]
    return out


def _pack(pieces: list[str], limit: int, overlap: int,
          count: Callable[[str], int]) -> list[str]:
    """Consecutive pieces joined into chunks up to ``limit`` tokens; each new chunk
    starts with the last pieces of the one before, up to ``overlap`` tokens."""
    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    size = 0
    for piece in pieces:
        tokens = count(piece)
        if current and size + tokens + 1 > limit:
            chunks.append("\n".join(p for p, _ in current))
            carry: list[tuple[str, int]] = []
            kept = 0
            for p, n in reversed(current):
                if kept + n > overlap or kept + n + tokens + 1 > limit:
                    break
                carry.insert(0, (p, n))
                kept += n
            current, size = carry, kept
        current.append((piece, tokens))
        size += tokens + (1 if len(current) > 1 else 0)
    if current:
        chunks.append("\n".join(p for p, _ in current))
    return chunks
