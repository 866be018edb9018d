"""The shape of the command line package (app/llamadesk/cli): its modules import each
other without a cycle, and exit statuses and failures have one owner each
(core/exit_codes.py, cli/errors.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from import_cycle import find_cycle

APP = Path(__file__).resolve().parents[1] / "app" / "llamadesk"
CLI = APP / "cli"


def _cli_imports() -> dict[str, set[str]]:
    """Each module of cli/ and the cli/ modules it imports, at any depth of its code
    (an import inside a function counts: it closes a cycle when it runs)."""
    local = {path.stem for path in CLI.glob("*.py")} - {"__init__"}
    graph: dict[str, set[str]] = {}
    for path in CLI.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[2] for alias in node.names
                             if alias.name.startswith("llamadesk.cli."))
            elif isinstance(node, ast.ImportFrom) and node.module == "llamadesk.cli":
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module \
                    and node.module.startswith("llamadesk.cli."):
                found.add(node.module.split(".")[2])
        graph[path.stem] = (found & local) - {path.stem}
    return graph


_cycle = find_cycle


def test_the_cli_modules_import_each_other_without_a_cycle() -> None:
    graph = _cli_imports()
    # The walk sees both spellings: `from llamadesk.cli import models as …` in main and
    # `from llamadesk.cli.models_run import …` in models.
    assert {"chat", "models", "chats", "serve", "self_test"} <= graph["main"]
    assert graph["models"] == {"models_run"}
    assert _cycle(graph) == [], " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def _modules(folder: Path) -> dict[str, str]:
    return {path.relative_to(APP).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(folder.rglob("*.py"))}


def test_only_core_exit_codes_defines_an_exit_status() -> None:
    defines = re.compile(r"^\s*EXIT_\w+\s*(:[^=\n]*)?=[^=]", re.MULTILINE)
    found = sorted(name for name, text in _modules(APP).items() if defines.search(text))
    assert found == ["core/exit_codes.py"], found


#: The exit statuses by number: a literal one where a status is returned is a second
#: definition of it.
STATUSES = {0, 1, 2, 3, 130}


def _literal_statuses(tree: ast.AST) -> list[int]:
    """Line numbers where a status is returned, or given to an ``exit()`` call, as a
    number instead of a name from core/exit_codes.py."""
    def literal(node: ast.expr | None) -> bool:
        if isinstance(node, ast.IfExp):
            return literal(node.body) or literal(node.orelse)
        return (isinstance(node, ast.Constant) and type(node.value) is int
                and node.value in STATUSES)

    lines = []
    for node in ast.walk(tree):
        returned = isinstance(node, ast.Return) and literal(node.value)
        exited = isinstance(node, ast.Call) and any(literal(a) for a in node.args) and (
            getattr(node.func, "attr", None) == "exit" or getattr(node.func, "id", None) == "exit")
        if returned or exited:
            lines.append(node.lineno)
    return lines


def test_the_finder_sees_a_literal_status() -> None:
    code = "def f(x):\n    if x:\n        return 130 if x else 0\n    sys.exit(1)\n"
    assert _literal_statuses(ast.parse(code)) == [3, 4]
    assert _literal_statuses(ast.parse("def f():\n    return EXIT_OK\n")) == []


def test_the_command_line_and_the_window_name_their_exit_statuses() -> None:
    texts = _modules(CLI) | {"ui/app.py": (APP / "ui" / "app.py").read_text(encoding="utf-8")}
    found = {name: lines for name, text in texts.items()
             if (lines := _literal_statuses(ast.parse(text)))}
    assert not found, f"use core/exit_codes.py's names: {found}"


def test_failures_are_said_by_cli_errors_only() -> None:
    """One error class and one ``llamadesk: …`` line, both in cli/errors.py."""
    error_class = re.compile(r"^class \w+\((\w*Exception|\w*Error)\)", re.MULTILINE)
    classes = sorted(name for name, text in _modules(CLI).items() if error_class.search(text))
    assert classes == ["cli/errors.py"], classes
    prefix = sorted(name for name, text in _modules(CLI).items()
                    if re.search(r"[\"']\\?n?llamadesk: ", text))
    assert prefix == ["cli/errors.py"], prefix
