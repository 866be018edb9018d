"""The words of a question that keyword search matches (``DocumentIndex`` in index.py
runs the queries)."""

from __future__ import annotations

import re

#: Words too common to rank passages by; a question made only of them matches nothing.
_STOPWORD_TEXT = """
    a an and are as at be but by can could did do does for from had has have how i if in
    into is it its me my no not of on or our so than that the their them then there these
    they this to was we were what when where which who whom why will with would you your
    about after any all also been before being both each he her here him his more most
    other over same she should some such through under until very
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def fts_terms(question: str) -> list[str]:
    """The words of a question worth matching: lower-cased, without common words, each
    once, in order."""
    out: list[str] = []
    for word in re.findall(r"\w+", question.lower()):
        if word not in STOPWORDS and word not in out and (len(word) > 1 or word.isdigit()):
            out.append(word)
    return out
