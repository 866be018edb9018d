"""Rendering finished replies: Markdown → HTML → a laid-out QTextDocument, as the chat
view does once per message. A reply without code must cost what it did before code
highlighting (markdown-it alone is the reference); one with code blocks must stay well
inside a frame."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from common import Goal, Metric, alternate, side
from harness import qapp

PLAIN_REPLY = ("Lighthouses were built to **warn ships** of rocks, shoals and the entrance "
               "to a harbour; their keepers kept the lamp lit through the night.\n\n"
               "- a list item with `inline code`\n- and [a link](https://example.org)\n\n"
               "> a quoted line\n\n") * 6

_PYTHON = '''```python
def fibonacci(n: int) -> list[int]:
    """The first n Fibonacci numbers."""
    numbers = [0, 1]
    while len(numbers) < n:
        numbers.append(numbers[-1] + numbers[-2])  # the sum of the last two
    return numbers[:n]


if __name__ == "__main__":
    print(fibonacci(10))
```
'''
_SHELL = '''```bash
python3 -m venv .venv && . .venv/bin/activate
pip install --upgrade pip
for f in *.txt; do wc -l "$f"; done | sort -n
```
'''
_JS = '''```js
const squares = [1, 2, 3, 4].map((n) => n * n);
console.log(`squares: ${squares.join(", ")}`);
```
'''
CODE_REPLY = ("Here is how to do it.\n\n" + _PYTHON + "\nRun it with:\n\n" + _SHELL
              + "\nThe same idea in JavaScript:\n\n" + _JS)

WIDTH = 640


def _fresh(text: str, n: int) -> str:
    """The reply with a line that differs on every render, so no cache answers: each
    sample is the cost of a reply rendered for the first time."""
    return (text.replace("```python\n", f"```python\n# {n}\n")
            .replace("```bash\n", f"```bash\n# {n}\n").replace("```js\n", f"```js\n// {n}\n"))


def _timer(to_html: Callable[[str], str], style_sheet: str, text: str) -> Callable[[], float]:
    from PySide6.QtGui import QTextDocument

    count = itertools.count()

    def once() -> float:
        fresh = _fresh(text, next(count))
        started = time.perf_counter()
        doc = QTextDocument()
        doc.setDocumentMargin(0)
        doc.setDefaultStyleSheet(style_sheet)
        doc.setHtml(to_html(fresh))
        doc.setTextWidth(WIDTH)
        doc.size()  # forces the layout
        return (time.perf_counter() - started) * 1000
    return once


def run(quick: bool, runs: int) -> list[Metric]:
    """Both rendering metrics."""
    from markdown_it import MarkdownIt

    from llamadesk.ui.markdown import STYLE_SHEET, to_html

    qapp()
    plain_md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    repeats = 3 if quick else 40  # one sample is the mean of this many renders

    def mean_of(fn: Callable[[], float]) -> Callable[[], float]:
        return lambda: sum(fn() for _ in range(repeats)) / repeats

    app_plain = mean_of(_timer(to_html, STYLE_SHEET, PLAIN_REPLY))
    ref_plain = mean_of(_timer(plain_md.render, STYLE_SHEET, PLAIN_REPLY))
    app_s, ref_s = alternate(runs, 2, app_plain, ref_plain)
    ratios = [a / r for a, r in zip(app_s, ref_s, strict=True)]

    code_app = mean_of(_timer(to_html, STYLE_SHEET, CODE_REPLY))
    code_plain = mean_of(_timer(plain_md.render, STYLE_SHEET, CODE_REPLY))
    code_s, unhighlighted_s = alternate(runs, 2, code_app, code_plain)
    return [
        Metric("render_plain_ratio", "render a finished reply without code, app ÷ markdown-it",
               "×", Goal("<=", 1.1), ratios,
               numerator=side("app: to_html + QTextDocument layout", "ms", app_s),
               reference=side("markdown-it render + QTextDocument layout", "ms", ref_s),
               details={"chars": len(PLAIN_REPLY), "width": WIDTH, "renders": repeats}),
        Metric("render_code_reply", "render a finished reply with 3 highlighted code blocks",
               "ms", Goal("<=", 16), code_s,
               details={"chars": len(CODE_REPLY), "width": WIDTH, "renders": repeats,
                        "unhighlighted_ms": side("markdown-it render + layout", "ms",
                                                 unhighlighted_s)}),
    ]
