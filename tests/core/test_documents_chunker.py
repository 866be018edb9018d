"""Chunking: no chunk over the limit, places kept, boundaries at paragraphs first."""

from __future__ import annotations

import itertools

import pytest

from llamadesk.core.documents.chunker import chunk_sections, estimate_tokens
from llamadesk.core.documents.parsers import Section


def test_short_sections_are_one_chunk_each_with_their_place() -> None:
    chunks = chunk_sections([Section("alpha beta", page=2), Section("gamma", heading="H")])
    assert [(c.text, c.page, c.heading, c.ordinal) for c in chunks] == [
        ("alpha beta", 2, None, 0), ("gamma", None, "H", 1)]


def test_long_text_is_cut_within_the_limit_at_paragraphs() -> None:
    paragraphs = [" ".join(f"p{i}w{j}" for j in range(30)) for i in range(20)]
    chunks = chunk_sections([Section("\n\n".join(paragraphs))], max_tokens=100, overlap=0)
    assert all(estimate_tokens(c.text) <= 100 for c in chunks)
    assert len(chunks) == 7  # three 30-word paragraphs per chunk
    # Every paragraph is whole in one chunk: the cut fell between paragraphs.
    assert all(any(p in c.text for c in chunks) for p in paragraphs)


def test_overlap_repeats_the_end_of_the_previous_chunk() -> None:
    sentences = [f"Sentence number {i} ends here." for i in range(40)]
    chunks = chunk_sections([Section(" ".join(sentences))], max_tokens=40, overlap=12)
    assert len(chunks) > 3
    for before, after in itertools.pairwise(chunks):
        assert after.text.splitlines()[0] in before.text
        assert estimate_tokens(after.text) <= 40


def test_one_huge_word_is_cut_by_characters() -> None:
    chunks = chunk_sections([Section("x" * 5000)], max_tokens=16, overlap=0,
                            count_tokens=lambda t: len(t) // 50 + 1)
    assert "".join(c.text for c in chunks) == "x" * 5000
    assert all(len(c.text) // 50 + 1 <= 16 for c in chunks)


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        chunk_sections([Section("x")], max_tokens=4)
