"""Start-up stays light: the Hub client loads only when the Models window opens."""

from __future__ import annotations

import subprocess
import sys


def test_the_window_modules_do_not_import_the_hub_client() -> None:
    code = ("import sys, llamadesk.ui.app, llamadesk.cli; "
            "print(sorted(m for m in ('huggingface_hub', 'httpx2', 'llamadesk.core.downloads')"
            " if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"
