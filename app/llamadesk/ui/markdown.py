"""Markdown to the HTML subset QTextDocument renders well.

Qt's own Markdown importer ignores style sheets, so code blocks and tables came out
bare; markdown-it renders CommonMark (+ tables, strikethrough) to HTML that a default
style sheet can shape. Raw HTML in a message is shown as text, never interpreted.
"""

from __future__ import annotations

from markdown_it import MarkdownIt

_MD = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

STYLE_SHEET = (
    "pre, code { background-color: rgba(127, 127, 127, 40); font-family: monospace; }"
    "th { text-align: left; }"
    "p, ul, ol, pre, table, blockquote { margin-top: 4px; margin-bottom: 4px; }"
    "blockquote { color: palette(placeholder-text); }"
)


def to_html(text: str) -> str:
    """HTML for a message's Markdown."""
    html = _MD.render(text)
    return (html.replace("\n</code></pre>", "</code></pre>")
            .replace("<table>", '<table cellspacing="0" cellpadding="5" border="1" '
                     'style="border-color: #999; border-style: solid">'))
