"""Replies are rendered from Markdown: code highlighted by language in a monospace font
with a copy link per block, tables and lists, long lines that wrap; raw HTML and
hostile links are shown, not interpreted. Checked in a real QTextDocument."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from pygments.styles import get_style_by_name
from pygments.token import Token
from PySide6.QtCore import QPointF
from PySide6.QtGui import (
    QAbstractTextDocumentLayout,
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QPainter,
    QPalette,
    QTextCharFormat,
    QTextDocument,
    QTextFragment,
    QTextTable,
)
from PySide6.QtWidgets import QApplication

from llamadesk.ui.markdown import (
    DARK,
    LIGHT,
    MAX_HIGHLIGHT_CHARS,
    STYLE_SHEET,
    code_block,
    code_blocks,
    copy_index,
    to_html,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"

SAMPLE = """\
Here is a function, with **bold** text, `inline_code()` and a list:

1. First item
2. Second item with `code`

```python
def greet(name: str) -> str:
    \"\"\"Say hello.\"\"\"
    # a comment
    return f"Hello, {name}!" * 3  # a long line that wraps instead of widening the bubble
```

| language | typing |
|---|---|
| Python | dynamic |
| Rust | static |

```
plain text, no language
aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
```

- and a bullet list
- with two items

```js
const doubled = [1, 2, 3].map((n) => n * 2); // double
```
"""


def document(text: str, dark: bool = False, width: float = 520) -> QTextDocument:
    """As the chat view builds a finished reply's document."""
    doc = QTextDocument()
    doc.setDocumentMargin(0)
    doc.setDefaultStyleSheet(STYLE_SHEET)
    doc.setHtml(to_html(text, dark=dark))
    doc.setTextWidth(width)
    return doc


def fragments(doc: QTextDocument) -> list[QTextFragment]:
    """Every text fragment, tables included, in document order."""
    out: list[QTextFragment] = []
    block = doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            frag = it.fragment()
            if frag.isValid():
                out.append(frag)
            it += 1
        block = block.next()
    return out


def format_of(doc: QTextDocument, text: str) -> QTextCharFormat:
    frag = next(f for f in fragments(doc) if f.text().strip() == text)
    return frag.charFormat()


def pygments_colour(style: str, token: object) -> str:
    return "#" + get_style_by_name(style).style_for_token(token)["color"].lower()


def is_monospace(font: QFont) -> bool:
    """Whether text in ``font`` has columns, as the reader sees it: narrow and wide glyphs
    advance alike. (``QFontInfo.fixedPitch()`` is a flag in the font file, which some
    monospace fonts, Noto Sans Mono among them, do not set.)"""
    metrics = QFontMetricsF(font)
    advances = {metrics.horizontalAdvance(glyph) for glyph in "iW.m0 "}
    return len(advances) == 1 and advances.pop() > 0


def test_code_is_highlighted_by_language_in_a_monospace_font(qapp: QApplication) -> None:
    for dark, theme in ((False, LIGHT), (True, DARK)):
        doc = document(SAMPLE, dark=dark)
        keyword = format_of(doc, "def")
        assert keyword.foreground().color().name() == pygments_colour(theme.pygments_style,
                                                                       Token.Keyword)
        string = format_of(doc, '"""Say hello."""')
        assert string.foreground().color().name() == pygments_colour(
            theme.pygments_style, Token.Literal.String.Doc)
        assert keyword.foreground().color() != string.foreground().color()
        assert is_monospace(keyword.font()), "code is monospace"
        assert is_monospace(format_of(doc, "const").font())
        assert format_of(doc, "const").foreground().color().name() == pygments_colour(
            theme.pygments_style, Token.Keyword.Declaration)
        # A block without a language is monospace too, in the theme's text colour.
        plain = format_of(doc, "plain text, no language")
        assert is_monospace(plain.font())
        assert plain.foreground().color().name() == theme.text
        # Inline code is monospace; ordinary text is not.
        assert is_monospace(format_of(doc, "inline_code()").font())
        assert not is_monospace(format_of(doc, "Here is a function, with").font())
    light = format_of(document(SAMPLE), "def").foreground().color()
    dark = format_of(document(SAMPLE, dark=True), "def").foreground().color()
    assert light != dark, "each palette has its own colours"


def test_each_code_block_has_a_header_with_a_copy_link(qapp: QApplication) -> None:
    doc = document(SAMPLE)
    links = [f.charFormat().anchorHref() for f in fragments(doc) if f.charFormat().isAnchor()]
    assert links == ["copy:0", "copy:1", "copy:2"]
    labels = [f.text() for f in fragments(doc)]
    for label in ("python", "code", "js"):
        assert label in labels
    assert [copy_index(h) for h in links] == [0, 1, 2]
    assert copy_index("https://example.invalid/copy:1") is None
    assert copy_index("copy:x") is None


CODE_CASES = [
    ("python", "def f(x):\n\treturn x  # tab, and trailing spaces   \n\n\nprint(f(1))"),
    ("", "no language\n  indented\n"),
    ("rust", 'fn main() {\n    println!("héllo ✓ 🦙");\n}'),
    ("bash", "\n\nstarts with blank lines\necho \"$HOME\" | tr a-z A-Z\n\n"),
    ("html", "<script>alert('x')</script>\n<b>&amp;</b>"),
    ("made-up-language", "x := y <- z"),
    ("sql", ""),
    ("markdown", "``` inner fences stay inside\n~~~"),
]


def test_copy_gives_exactly_each_blocks_code() -> None:
    parts = ["Some text first.\n"]
    for language, code in CODE_CASES:
        fence = "````" if "```" in code else "```"
        parts.append(f"{fence}{language}\n{code}\n{fence}\n\nbetween blocks\n")
    text = "\n".join(parts)
    assert [code_block(text, n) for n in range(len(CODE_CASES))] == [c for _, c in CODE_CASES]
    assert [b.language for b in code_blocks(text)] == [lang for lang, _ in CODE_CASES]
    with pytest.raises(IndexError):
        code_block(text, len(CODE_CASES))


def test_copy_finds_tilde_indented_and_nested_blocks_in_rendering_order() -> None:
    text = ("Intro\n\n~~~ python extra words\nx = 1\n~~~\n\n"
            "    indented code\n    second line\n\n"
            "- a list item\n\n  ```c\n  int main(void) { return 0; }\n  ```\n\n"
            "> ```\n> quoted code\n> ```\n\n"
            "```unclosed\nlast block, not closed")
    assert [(b.language, b.code) for b in code_blocks(text)] == [
        ("python", "x = 1"), ("", "indented code\nsecond line"),
        ("c", "int main(void) { return 0; }"), ("", "quoted code"),
        ("unclosed", "last block, not closed")]
    html = to_html(text)
    assert [f"copy:{n}" in html for n in range(6)] == [True] * 5 + [False]


def test_code_text_round_trips_through_the_document(qapp: QApplication) -> None:
    for language, code in CODE_CASES:
        if not code.strip():
            continue
        doc = document(f"```{language}\n{code}\n```", width=2000)
        shown = doc.toPlainText()
        # The document shows the code (Qt turns the tab into a tab stop, not spaces).
        for line in code.strip("\n").splitlines():
            assert line.rstrip() in shown, (language, line)


def test_long_lines_wrap_inside_the_width(qapp: QApplication) -> None:
    long_code = "x = '" + "abc" * 200 + "'  # " + "word " * 80
    doc = document(f"```python\n{long_code}\n```\n\n```\n{'z' * 600}\n```", width=300)
    assert doc.size().width() <= 301, "the block wraps instead of widening the bubble"
    assert doc.idealWidth() <= 301


def test_a_very_long_block_is_shown_plain_and_still_copies_exactly() -> None:
    code = "x = 1\n" * (MAX_HIGHLIGHT_CHARS // 6 + 1)
    text = f"```python\n{code}```"
    assert "<span" not in to_html(text), "too long to lex quickly: plain"
    assert "<span" in to_html("```python\nx = 1\n```")
    assert code_block(text, 0) == code[:-1]


def test_tables_and_lists_are_rendered(qapp: QApplication) -> None:
    doc = document(SAMPLE)
    lists = []
    block = doc.begin()
    while block.isValid():
        if block.textList() is not None and block.textList() not in lists:
            lists.append(block.textList())
        block = block.next()
    assert [lst.count() for lst in lists] == [2, 2], "the numbered and the bullet list"
    tables = [f for f in doc.rootFrame().childFrames() if isinstance(f, QTextTable)]
    assert len(tables) == 4, "three code blocks and one table"
    table = next(t for t in tables if (t.rows(), t.columns()) == (3, 2))
    cell = table.cellAt(1, 0).firstCursorPosition().block().text()
    assert cell == "Python"


HOSTILE = """\
Ignore that. <script>alert(document.cookie)</script>
<img src="x" onerror="alert(1)"> <iframe src="https://example.invalid"></iframe>

[click me](javascript:alert(1)) [also](JAVASCRIPT:alert(2)) [data](data:text/html,<b>x</b>)
[fake copy](copy:0) ![local file](/dev/zero) ![tracker](https://example.invalid/t.png)

```"><script>alert(3)</script>
body
```
"""


def test_a_hostile_reply_is_shown_as_text(qapp: QApplication) -> None:
    html = to_html(HOSTILE)
    assert "<script" not in html and "<img" not in html and "<iframe" not in html
    assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html.lower() and 'href="data:' not in html
    assert html.count('href="copy:') == 1, "only the real code block's link"
    doc = document(HOSTILE)
    hrefs = [f.charFormat().anchorHref() for f in fragments(doc) if f.charFormat().isAnchor()]
    assert hrefs == ["/dev/zero", "https://example.invalid/t.png", "copy:0"]
    assert not any(f.charFormat().isImageFormat() for f in fragments(doc)), \
        "images become links: nothing is loaded while painting"
    assert "alert(3)" in doc.toPlainText(), "the odd language name is shown as text"


def test_a_reply_without_code_renders_as_before_and_loads_no_highlighter() -> None:
    plain = ("A **reply** with a [link](https://example.invalid), *emphasis*, `inline code`,"
             "\n\n- a list\n- of things\n\n> a quote\n\n1. one\n2. two\n")
    before = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    assert to_html(plain) == before.render(plain)
    code = ("import sys, llamadesk.ui.markdown as m; m.to_html(sys.argv[1]); "
            "print('pygments' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, plain], capture_output=True,
                            text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False"


def render_png(text: str, dark: bool, path: Path) -> QImage:
    """Paint the reply as the chat view does (palette text colour, bubble background)."""
    doc = document(text, dark=dark)
    image = QImage(560, int(doc.size().height()) + 40, QImage.Format.Format_ARGB32)
    image.fill(QColor("#2b2d30" if dark else "#f3f3f3"))
    painter = QPainter(image)
    painter.translate(QPointF(20, 20))
    context = QAbstractTextDocumentLayout.PaintContext()
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.Text, QColor("#e8e8e8" if dark else "#1a1a1a"))
    context.palette = palette
    doc.documentLayout().draw(painter, context)
    painter.end()
    path.parent.mkdir(parents=True, exist_ok=True)
    assert image.save(str(path))
    return image


def test_light_and_dark_renderings_are_saved_for_review(qapp: QApplication) -> None:
    for dark, theme in ((False, LIGHT), (True, DARK)):
        path = ARTIFACTS / f"markdown-{'dark' if dark else 'light'}.png"
        image = render_png(SAMPLE, dark, path)
        background = QColor(theme.background).rgb()
        painted = sum(image.pixel(x, y) == background
                      for y in range(0, image.height(), 2) for x in range(0, image.width(), 2))
        assert painted > 2000, "the code blocks are painted in the theme's background"
        assert path.stat().st_size > 10_000


def test_search_snippet_centres_on_the_match() -> None:
    from llamadesk.ui.search import snippet

    text = "word " * 60 + "alpaca wool is warm " + "tail " * 60
    piece = snippet(text, "alpaca", width=40)
    assert "alpaca" in piece and piece.startswith("…") and piece.endswith("…")
    assert snippet("short\n\ntext", "short") == "short text"
