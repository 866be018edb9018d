"""Markdown to the HTML subset QTextDocument renders well.

Qt's own Markdown importer ignores style sheets, so code blocks and tables came out
bare; markdown-it renders CommonMark (+ tables, strikethrough) to HTML that a default
style sheet can shape. Raw HTML in a message is shown as text, never interpreted, and
images become links (a QTextDocument would read an image path from disk while painting:
a reply could name /dev/zero).

Code blocks are highlighted with Pygments into inline styles (QTextDocument has no
class selectors for spans) inside a one-cell-wide table: a header row with the language
and a ``copy:N`` link, then the code in a monospace font that wraps instead of widening
the bubble. ``code_block(text, n)`` gives the exact code of block ``n`` for that link.
Pygments is imported with the first code block, so replies without code cost what they
did before.
"""

from __future__ import annotations

import functools
import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import unescapeAll

if TYPE_CHECKING:
    from collections.abc import Sequence

    from markdown_it.token import Token

#: The scheme of the links under a reply to the passages it was given: ``source:N``.
SOURCE_SCHEME = "source"
#: The scheme of the links in code block headers: ``copy:N`` copies block N.
COPY_SCHEME = "copy"
#: Longer blocks are shown unhighlighted: Pygments reads about 10 lines per ms here.
MAX_HIGHLIGHT_CHARS = 20_000

STYLE_SHEET = (
    "code { background-color: rgba(127, 127, 127, 40); font-family: monospace; }"
    "th { text-align: left; }"
    "p, ul, ol, pre, table, blockquote { margin-top: 4px; margin-bottom: 4px; }"
    "blockquote { color: palette(placeholder-text); }"
)


@dataclass(frozen=True)
class CodeTheme:
    """Colours of code blocks for one palette: a Pygments style for the tokens, and the
    block's own background, header, border, text and link colours."""

    pygments_style: str
    background: str
    header: str
    border: str
    text: str
    muted: str
    link: str


LIGHT = CodeTheme("default", background="#f6f8fa", header="#e8ecf0", border="#d0d7de",
                  text="#1f2328", muted="#59636e", link="#0969da")
DARK = CodeTheme("github-dark", background="#0d1117", header="#1f252d", border="#3d444d",
                 text="#e6edf3", muted="#9198a1", link="#4493f8")


@dataclass(frozen=True)
class CodeBlock:
    """A code block of a message: ``language`` is "" when the fence names none; ``code``
    is the text between the fences, without the last line's newline."""

    index: int
    language: str
    code: str


class _Markdown(MarkdownIt):
    def validateLink(self, url: str) -> bool:
        # Only our own code block headers may carry copy links.
        return super().validateLink(url) and not url.strip().lower().startswith(
            (COPY_SCHEME + ":", SOURCE_SCHEME + ":"))


_MD = _Markdown("commonmark", {"html": False}).enable(["table", "strikethrough"])


def to_html(text: str, dark: bool = False) -> str:
    """HTML for a message's Markdown; ``dark``: colours for a dark palette."""
    html_text = _MD.render(text, {"dark": dark})
    if "<table>" not in html_text:
        return html_text
    border = (DARK if dark else LIGHT).border
    return html_text.replace("<table>", '<table cellspacing="0" cellpadding="5" border="1" '
                             f'style="border-color: {border}; border-style: solid; '
                             'border-collapse: collapse">')


def code_blocks(text: str) -> list[CodeBlock]:
    """Every code block of a message's Markdown (fenced or indented), in order: the
    numbers the ``copy:N`` links use."""
    tokens = [t for t in _MD.parse(text) if t.type in ("fence", "code_block")]
    return [CodeBlock(n, _language(t), _code(t)) for n, t in enumerate(tokens)]


def code_block(text: str, index: int) -> str:
    """The exact code of block ``index`` (0-based) of a message's Markdown. Raises
    IndexError if there is no such block."""
    return code_blocks(text)[index].code


def sources_html(labels: list[str], dark: bool = False) -> str:
    """A reply's sources as a line of links under it, ``source:N`` for the N-th."""
    theme = DARK if dark else LIGHT
    links = " · ".join(f'<a href="{SOURCE_SCHEME}:{n}" style="color: {theme.link}">'
                       f"[{n}] {html.escape(label)}</a>" for n, label in enumerate(labels, 1))
    return f'<p style="color: {theme.muted}; font-size: small">Sources: {links}</p>'


def source_index(href: str) -> int | None:
    """The source a ``source:N`` link stands for (0-based), or None."""
    scheme, _, rest = href.partition(":")
    if scheme.lower() != SOURCE_SCHEME or not rest.isdigit() or int(rest) < 1:
        return None
    return int(rest) - 1


def copy_index(href: str) -> int | None:
    """The block number of a ``copy:N`` link, or None for any other link."""
    scheme, _, rest = href.partition(":")
    if scheme.lower() != COPY_SCHEME or not rest.isdigit():
        return None
    return int(rest)


# -- rendering rules --------------------------------------------------------------------
def _language(token: Token) -> str:
    info = unescapeAll(token.info).strip() if token.info else ""
    return info.split(maxsplit=1)[0] if info else ""


def _code(token: Token) -> str:
    content = token.content
    return content[:-1] if content.endswith("\n") else content


def _render_code(_renderer: Any, tokens: Sequence[Token], idx: int, _options: Any,
                 env: dict[str, Any]) -> str:
    index = env.get("code_blocks", 0)
    env["code_blocks"] = index + 1
    theme = DARK if env.get("dark") else LIGHT
    token = tokens[idx]
    language = _language(token)
    body = _highlight(_code(token), language, theme)
    label = html.escape(language or "code")
    small = "font-size: small;"
    return (
        f'<table width="100%" cellspacing="0" cellpadding="0" style="border: 1px solid '
        f'{theme.border}; border-collapse: collapse; margin-top: 6px; margin-bottom: 6px;">'
        # The header is a table of its own, so no line divides the language from Copy.
        f'<tr><td style="background-color: {theme.header}; padding: 3px 8px;">'
        f'<table width="100%" cellspacing="0" cellpadding="0" style="margin: 0;"><tr>'
        f'<td style="{small} color: {theme.muted};">{label}</td>'
        f'<td align="right" style="{small}"><a href="{COPY_SCHEME}:{index}" '
        f'style="color: {theme.link}; text-decoration: none;">Copy</a></td>'
        f'</tr></table></td></tr>'
        f'<tr><td style="background-color: {theme.background}; padding: 6px 8px;">'
        f'<pre style="white-space: pre-wrap; margin: 0; font-family: monospace; '
        f'color: {theme.text};">{body}</pre></td></tr></table>\n'
    )


def _render_image(renderer: Any, tokens: Sequence[Token], idx: int, options: Any,
                  env: dict[str, Any]) -> str:
    token = tokens[idx]
    alt = renderer.renderInlineAsText(token.children or [], options, env) or "image"
    src = html.escape(str(token.attrGet("src") or ""))
    return f'<a href="{src}">[{html.escape(alt)}]</a>'


_MD.add_render_rule("fence", _render_code)
_MD.add_render_rule("code_block", _render_code)
_MD.add_render_rule("image", _render_image)


@functools.lru_cache(maxsize=256)
def _highlight(code: str, language: str, theme: CodeTheme) -> str:
    """The code as HTML with inline colours; plain (escaped) for an unknown language or
    a block too long to lex quickly. Cached: a resize or a reopened chat renders the
    same blocks again."""
    lexer = _lexer(language.lower()) if language else None
    if lexer is None or len(code) > MAX_HIGHLIGHT_CHARS:
        return html.escape(code, quote=False)
    from pygments import lex

    out: list[str] = []
    run_css, run_text = "", ""
    for ttype, value in lex(code, lexer):
        css = _token_css(theme.pygments_style, ttype)
        # Spaces look the same in any colour: they join the run, so there are fewer
        # spans for Qt to parse.
        if css != run_css and not (value.isspace() and "underline" not in run_css):
            if run_text:
                out.append(_span(run_css, run_text))
            run_css, run_text = css, ""
        run_text += value
    if run_text:
        out.append(_span(run_css, run_text))
    return "".join(out)


def _span(css: str, text: str) -> str:
    escaped = html.escape(text, quote=False)
    return f'<span style="{css}">{escaped}</span>' if css else escaped


@functools.lru_cache(maxsize=64)
def _lexer(language: str) -> Any:
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        # Exact text: no stripping of leading or trailing blank lines, no added newline.
        return get_lexer_by_name(language, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


@functools.lru_cache(maxsize=1024)
def _token_css(style_name: str, ttype: Any) -> str:
    from pygments.styles import get_style_by_name

    style = get_style_by_name(style_name).style_for_token(ttype)
    parts = []
    if style["color"]:
        parts.append(f"color: #{style['color']};")
    if style["bold"]:
        parts.append("font-weight: bold;")
    if style["italic"]:
        parts.append("font-style: italic;")
    if style["underline"]:
        parts.append("text-decoration: underline;")
    return " ".join(parts)
