"""Replies are rendered from Markdown; raw HTML in them is shown, not interpreted."""

from __future__ import annotations

from llamadesk.ui.markdown import to_html


def test_formatting_code_and_tables() -> None:
    html = to_html("**bold**, `code`\n\n```python\nx = 1\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    assert "<strong>bold</strong>" in html
    assert "<code>code</code>" in html
    assert "x = 1</code></pre>" in html, "no blank line at the end of code blocks"
    assert '<table cellspacing="0"' in html and "<td>2</td>" in html


def test_raw_html_is_escaped() -> None:
    html = to_html('<img src="http://example.invalid/x.png"> <script>alert(1)</script>')
    assert "<img" not in html and "<script>" not in html
    assert "&lt;script&gt;" in html


def test_search_snippet_centres_on_the_match() -> None:
    from llamadesk.ui.search import snippet

    text = "word " * 60 + "alpaca wool is warm " + "tail " * 60
    piece = snippet(text, "alpaca", width=40)
    assert "alpaca" in piece and piece.startswith("…") and piece.endswith("…")
    assert snippet("short\n\ntext", "short") == "short text"
