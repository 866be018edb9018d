"""PySide6 checks each imported module's source for its ``__feature__`` switch; with the
window's package imported, the check still tells the modules that use PySide6 from the
others, and no module's source stays in memory afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, linecache, sys
sys.path.insert(0, sys.argv[1])
import PySide6.QtCore
if sys.argv[2] == "app":
    import llamadesk.ui
from PySide6.support import feature
import names_qt, plain
print(json.dumps({"flags": [feature.pyside_feature_dict.get(m) for m in ("names_qt", "plain")],
                  "cached": sorted(f for f in linecache.cache if f.startswith(sys.argv[1]))}))
"""


def _import_two_modules(folder: Path, mode: str) -> dict[str, list[object]]:
    (folder / "names_qt.py").write_text("from PySide6.QtCore import QObject\n", encoding="utf-8")
    (folder / "plain.py").write_text("VALUE = 1\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", PROBE, str(folder), mode],
                            capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_pyside_still_tells_which_modules_use_it_but_keeps_no_source(tmp_path: Path) -> None:
    found = _import_two_modules(tmp_path, "app")
    assert found["flags"] == [0, -1]  # 0: switched with the features; -1: ignored
    assert found["cached"] == []


def test_without_the_window_package_pyside_keeps_every_source(tmp_path: Path) -> None:
    """The reference: PySide6 alone gives the same answer and keeps both files' lines
    (were this to change upstream, the replacement could go)."""
    found = _import_two_modules(tmp_path, "bare")
    assert found["flags"] == [0, -1]
    assert found["cached"] == sorted(str(tmp_path / n) for n in ("names_qt.py", "plain.py"))


def test_the_replacement_applies_to_the_installed_pyside() -> None:
    from PySide6.support import feature

    from llamadesk.ui.pyside_sources import keep_no_import_sources, uses_pyside

    assert keep_no_import_sources() is True
    assert feature._mod_uses_pyside is uses_pyside


def test_standard_library_modules_are_not_read(tmp_path: Path) -> None:
    """The standard library never names PySide6: answered without reading its files,
    as PySide6's own check answers after reading them."""
    import json as stdlib_json
    import types

    from llamadesk.ui.pyside_sources import uses_pyside

    assert uses_pyside(stdlib_json) is False
    # A file that names PySide6 under a standard library's name is not read either...
    fake = tmp_path / "names_qt.py"
    fake.write_text("import PySide6\n", encoding="utf-8")
    shadow = types.ModuleType("email.names_qt")
    shadow.__file__ = str(fake)
    assert uses_pyside(shadow) is False
    # ...while the same file under the app's or a third party's name is.
    other = types.ModuleType("names_qt")
    other.__file__ = str(fake)
    assert uses_pyside(other) is True
