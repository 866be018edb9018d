"""The command line with the app's resources, its bundled model, LLAMADESK_HOME and the
model files all under a folder named ``Željko Дмитрий 田中 folder``: self-test, import,
download, load, chat, search (tools/smoke_non_ascii.py, which the release workflow runs
against the installed app on Windows and macOS)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from non_ascii import FOLDER, ROOT, odd_folder, resources_under

SMOKE = ROOT / "tools" / "smoke_non_ascii.py"


@pytest.mark.slow
def test_the_cli_works_under_a_non_ascii_folder(tmp_path: Path,
                                                bundled_model_path: Path) -> None:
    folder = odd_folder(tmp_path)
    env = dict(os.environ, LLAMADESK_RESOURCES=str(resources_under(folder)),
               QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([sys.executable, str(SMOKE), "--model", str(bundled_model_path),
                           "--base", str(tmp_path), "--threads", "1"],
                          env=env, capture_output=True, timeout=900, check=False)
    out = done.stdout.decode("utf-8")
    assert done.returncode == 0, out + done.stderr.decode("utf-8", "replace")
    steps = [line for line in out.splitlines() if line.startswith("ok: ")]
    assert len(steps) == 7, out
    assert "self-test ok" in steps[0] and "found both questions" in steps[-1]
    assert FOLDER in steps[1], "the bundled model itself is under the folder"
    home = tmp_path / FOLDER / "home"
    assert any((home / "models").rglob("downloaded.Q4_1.gguf"))
    assert (home / "data" / "llamadesk.sqlite3").is_file()
