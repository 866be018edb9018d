"""The shape of the code: no module in app/ past the 500-line mark."""

from __future__ import annotations

import ast
from pathlib import Path

from import_cycle import find_cycle

APP = Path(__file__).resolve().parents[1] / "app" / "llamadesk"
MAX_LINES = 500
#: Modules still over the mark, each with the reason it waits. An entry here must still be
#: over the mark (see the second test), so the list can only shrink.
WAITING: dict[str, str] = {}


def _line_counts() -> dict[str, int]:
    return {path.relative_to(APP).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
            for path in sorted(APP.rglob("*.py"))}


def test_no_module_in_app_is_over_500_lines() -> None:
    counts = _line_counts()
    assert len(counts) > 50, "the walk found the package's modules"
    over = {name: n for name, n in counts.items() if n > MAX_LINES and name not in WAITING}
    listed = ", ".join(f"{name} ({n})" for name, n in sorted(over.items()))
    assert not over, f"split these modules (over {MAX_LINES} lines): {listed}"


def test_every_waiting_module_is_still_over_the_mark() -> None:
    counts = _line_counts()
    stale = [name for name in WAITING if counts.get(name, 0) <= MAX_LINES]
    assert not stale, f"no longer over {MAX_LINES} lines, drop from WAITING: {stale}"


BENCH = Path(__file__).resolve().parents[1] / "bench"


def _bench_imports() -> dict[str, set[str]]:
    """Each bench module and the bench modules it imports (at any depth of its code)."""
    local = {path.stem for path in BENCH.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in BENCH.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
        graph[path.stem] = (found & local) - {path.stem}
    return graph


_cycle = find_cycle


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_bench_modules_import_each_other_without_a_cycle() -> None:
    graph = _bench_imports()
    assert "model_reference" in graph["longchat_metrics"]  # the walk sees bench imports
    assert _cycle(graph) == [], " -> ".join(_cycle(graph))


TESTS = Path(__file__).resolve().parent


def test_the_store_fixture_is_defined_once() -> None:
    """tests/conftest.py's ``store`` serves every test; a module that needs its database
    elsewhere overrides ``db_path`` instead."""
    defining = sorted(path.relative_to(TESTS).as_posix() for path in TESTS.rglob("*.py")
                      if "\ndef store(" in path.read_text(encoding="utf-8"))
    assert defining == ["conftest.py"], defining
