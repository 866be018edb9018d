"""No import cycle in app/: pyproject's "no import cycles" contract (import-linter's
``acyclic_siblings`` over the whole package) is run with the others by test_layers.py.
These tests show that the contract catches the cycles it is meant to, and that its
exceptions are only the one named below."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: ALLOWED CYCLE EDGES: none. The command line's one cycle went with the `cli/` package.
ALLOWED_CYCLE_EDGES: set[str] = set()


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _cycle_contract() -> dict[str, Any]:
    (contract,) = [c for c in _contracts() if c["type"] == "acyclic_siblings"]
    return contract


def test_the_cycle_contract_covers_the_package_with_only_the_named_exception() -> None:
    contract = _cycle_contract()
    assert contract["ancestors"] == ["llamadesk"]
    assert "skip_descendants" not in contract
    assert set(contract.get("ignore_imports", [])) == ALLOWED_CYCLE_EDGES


def test_no_contract_allows_indirect_imports() -> None:
    assert [c["name"] for c in _contracts() if c.get("allow_indirect_imports")] == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _lint(tmp_path: Path, files: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The contract, with pyproject's options, over a made-up package ``pkg``."""
    src = tmp_path / "src"
    _write(src, {"pkg/__init__.py": "", **files})
    contract = {k: v for k, v in _cycle_contract().items() if k != "ignore_imports"}
    lines = ["[importlinter]", "root_package = pkg", "", "[importlinter:contract:cycles]"]
    for key, value in contract.items():
        shown = "pkg" if key == "ancestors" else value
        lines.append(f"{key} = {shown}")
    config = tmp_path / "contracts.ini"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports, "import-linter is a dev dependency"
    return subprocess.run([lint_imports, "--config", str(config), "--no-cache"],
                          cwd=src, capture_output=True, text=True, timeout=120, check=False,
                          env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(src)})


def test_the_contract_passes_a_package_without_cycles(tmp_path: Path) -> None:
    result = _lint(tmp_path, {"pkg/a.py": "import pkg.b\n", "pkg/b.py": "",
                              "pkg/sub/__init__.py": "", "pkg/sub/c.py": "import pkg.a\n"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_contract_finds_a_cycle_deep_inside_hidden_in_functions(tmp_path: Path) -> None:
    """A cycle two packages down, one side under TYPE_CHECKING, the other inside a
    function (the shapes the app's cycles had)."""
    result = _lint(tmp_path, {
        "pkg/sub/__init__.py": "", "pkg/sub/deep/__init__.py": "",
        "pkg/sub/deep/x.py": "from typing import TYPE_CHECKING\n"
                             "if TYPE_CHECKING:\n    import pkg.sub.deep.y\n",
        "pkg/sub/deep/y.py": "def f():\n    import pkg.sub.deep.x\n"})
    assert result.returncode != 0
    assert "No cycles are allowed in pkg.sub.deep" in result.stdout


def test_the_contract_finds_a_cycle_across_packages(tmp_path: Path) -> None:
    result = _lint(tmp_path, {
        "pkg/one/__init__.py": "", "pkg/one/a.py": "import pkg.two.b\n",
        "pkg/two/__init__.py": "", "pkg/two/b.py": "import pkg.one.c\n",
        "pkg/one/c.py": "import pkg.one.a\n"})
    assert result.returncode != 0
    assert "No cycles are allowed in pkg." in result.stdout
