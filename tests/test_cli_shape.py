"""The shape of the command line package (app/llamadesk/cli): its modules import each
other without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

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


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle in ``graph`` as a path that returns to its start, or []."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str]:
        if name in path:
            return [*path[path.index(name):], name]
        if name in done:
            return []
        for target in sorted(graph.get(name, ())):
            if found := visit(target, [*path, name]):
                return found
        done.add(name)
        return []

    for name in sorted(graph):
        if found := visit(name, []):
            return found
    return []


def test_the_cli_modules_import_each_other_without_a_cycle() -> None:
    graph = _cli_imports()
    # The walk sees both spellings: `from llamadesk.cli import models as …` in main and
    # `from llamadesk.cli.models_run import …` in models.
    assert {"models", "chats", "serve"} <= graph["main"]
    assert graph["models"] == {"models_run"}
    assert _cycle(graph) == [], " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []
