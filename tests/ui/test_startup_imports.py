"""Start-up stays light: the Hub client loads only when the Models window opens or a
``models`` command runs, and the local API's server only when it is switched on or
``serve`` runs. The command line is parsed on every launch, so parsing it counts too."""

from __future__ import annotations

import subprocess
import sys


def test_the_window_modules_do_not_import_the_hub_client() -> None:
    code = ("import sys, llamadesk.ui.app, llamadesk.cli; llamadesk.cli._parser(); "
            "print(sorted(m for m in ('huggingface_hub', 'httpx2', 'llamadesk.core.downloads',"
            " 'fastapi', 'uvicorn', 'openai') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"
