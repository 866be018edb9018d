"""PySide6's support package is compiled once: a later launch takes its code from the
cache (the same signatures and error messages), and a damaged cache is compiled again
and rewritten. Each start is a fresh process, as a launch is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from llamadesk.cli.qt_support_cache import cache_file

START = """
import builtins, json, sys
from pathlib import Path
real = builtins.compile
support = []
def counting(source, filename, *args, **kwargs):
    if isinstance(filename, str) and filename.startswith("shibokensupport/"):
        support.append(filename)
    return real(source, filename, *args, **kwargs)
builtins.compile = counting
from llamadesk.cli.qt_support_cache import import_qt_core
reported = import_qt_core(Path(sys.argv[1]))
builtins.compile = real
from PySide6.QtCore import QObject
from PySide6.support import signature
try:
    QObject().setObjectName(1)
except TypeError as exc:
    message = str(exc)
print(json.dumps({"compiled": len(support), "reported": len(reported),
                  "signature": str(signature.get_signature(QObject.setObjectName)),
                  "message": message}))
"""


def _start(folder: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", START, str(folder)], capture_output=True,
                         text=True, timeout=120, check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_a_second_start_compiles_none_of_the_support_package(tmp_path: Path) -> None:
    first = _start(tmp_path)
    assert isinstance(first["compiled"], int) and first["compiled"] >= 10
    assert first["reported"] == first["compiled"]
    assert cache_file(tmp_path).is_file()
    second = _start(tmp_path)
    assert second["compiled"] == 0 and second["reported"] == 0
    # The signature support works from the cached code as from the compiled one.
    assert second["signature"] == first["signature"] == "(self, name: str, /) -> None"
    assert second["message"] == first["message"]
    assert "Supported signatures" in str(second["message"])


def test_a_damaged_cache_is_compiled_again_and_rewritten(tmp_path: Path) -> None:
    first = _start(tmp_path)
    kept = cache_file(tmp_path)
    data = bytearray(kept.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed in the middle of the code
    kept.write_bytes(bytes(data))
    again = _start(tmp_path)
    assert again["compiled"] == first["compiled"]
    assert again["signature"] == first["signature"]
    assert _start(tmp_path)["compiled"] == 0  # rewritten whole by the start before


def test_an_unwritable_folder_only_costs_the_compile(tmp_path: Path) -> None:
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the folder would be", encoding="utf-8")
    for _ in range(2):
        started = _start(blocked)
        assert isinstance(started["compiled"], int) and started["compiled"] >= 10
        assert started["signature"] == "(self, name: str, /) -> None"
