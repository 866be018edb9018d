"""Start-up stays light: the Hub client loads only when the Models window opens or a
``models`` command runs, and the local API's server only when it is switched on or
``serve`` runs. The command line is parsed on every launch, so parsing it counts too.
The window's first paint needs neither llama.cpp (imported on the inference thread)
nor the Markdown renderer (imported with the first reply shown)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def test_the_window_modules_do_not_import_the_hub_client() -> None:
    code = ("import sys, llamadesk.ui.app, llamadesk.cli.main; llamadesk.cli.main._parser(); "
            "print(sorted(m for m in ('huggingface_hub', 'httpx2', 'llamadesk.core.downloads',"
            " 'fastapi', 'uvicorn', 'openai') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"


#: Third-party packages the window may import before its first paint: Qt, and what the
#: store, the settings, the model registry and the keychain need at once.
ALLOWED_BEFORE_FIRST_PAINT = {
    "PySide6", "shiboken6", "llamadesk", "platformdirs", "filelock",
    # the keychain (core.secrets) and what keyring itself imports
    "keyring", "jaraco", "backports", "importlib_metadata", "lazy_importer", "more_itertools",
    "zipp", "secretstorage", "jeepney", "cryptography", "cffi", "_cffi_backend",
    # the chat database, opened (encrypted) before the window shows the last chat
    "sqlcipher3",
}
#: Large libraries that only a later step needs: the model (llama.cpp, numpy, gguf's
#: reader), rendering a reply (Markdown, highlighting), the local API, the Hub, remote
#: servers, chat templates (Jinja: the names of the formats are in core.chat_formats),
#: the machine's cores and memory (psutil, asked when a model loads). The engine and the
#: Markdown renderer of the app itself too, the GGUF header check (the engine's, when a
#: model loads) and the dialogs opened from the menus (Preferences with its pages, About).
#: urllib.request with http.client and ssl: keyring's jaraco.context imports them for a
#: helper keyring never calls (core/secrets.py imports keyring without them).
NEVER_BEFORE_FIRST_PAINT = {
    "urllib.request", "http.client", "ssl",
    "numpy", "gguf", "yaml", "llama_cpp", "diskcache", "markdown_it", "mdurl", "pygments",
    "jinja2", "markupsafe", "psutil", "llamadesk.core.chat_format",
    "llamadesk.core.template_sandbox",
    "fastapi", "starlette", "uvicorn", "pydantic", "huggingface_hub", "httpx", "httpcore",
    "openai", "llamadesk.services.engine", "llamadesk.services.llama_runtime",
    "llamadesk.ui.markdown", "llamadesk.api.server", "llamadesk.core.downloads",
    "llamadesk.core.gguf_validate", "llamadesk.core.gguf_reader", "llamadesk.core.gguf_checked",
    "llamadesk.ui.preferences", "llamadesk.ui.privacy_page", "llamadesk.ui.connections_page",
    "llamadesk.ui.local_api_page", "llamadesk.ui.dialogs",
}


def _probe(tmp_path: Path, **env_vars: str) -> dict[str, Any]:
    """Run the real start-up (``llamadesk`` with no arguments, a fresh home) to the
    window's first paint (tests/support/startup_probe.py); what the probe wrote."""
    out = tmp_path / "modules.json"
    env = {**os.environ, "LLAMADESK_HOME": str(tmp_path / "home"),
           "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"), **env_vars}
    subprocess.run([sys.executable, str(Path(__file__).parents[1] / "support" /
                                        "startup_probe.py"), str(out)],
                   env=env, capture_output=True, text=True, timeout=120, check=True)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def test_the_window_imports_only_what_its_first_paint_needs(tmp_path: Path,
                                                           store_passphrase: str) -> None:
    """The real start-up (the chat database under a passphrase since this machine may
    have no keychain): every module the GUI thread imported before the window's first
    paint is from the standard library or an allowed package. The engine's own early
    import is off here (it would put modules in ``sys.modules`` that the GUI thread
    then imports without a trace), so this lists what the GUI thread itself needs."""
    probed = _probe(tmp_path, LLAMADESK_ENGINE_EARLY="0")
    assert probed["engine_import_before_paint"] is False
    modules = set(probed["modules"])
    assert "llamadesk.ui.main_window" in modules  # the probe saw the window's imports
    packages = {m.split(".")[0] for m in modules}
    unexpected = sorted(packages - ALLOWED_BEFORE_FIRST_PAINT - set(sys.stdlib_module_names))
    assert unexpected == [], "imported before the first paint; allow them or defer them"
    assert sorted(m for m in NEVER_BEFORE_FIRST_PAINT if m in modules | packages) == []


def test_the_engine_import_starts_once_the_window_is_shown(tmp_path: Path,
                                                          store_passphrase: str) -> None:
    """On the real start-up the engine's import (services/engine_import.py) starts on
    its own thread once the window is shown (side by side with the window's modules or
    its construction, each waits for the other's Python), before the window's first
    paint; none of the engine's modules is imported by the GUI thread itself."""
    probed = _probe(tmp_path)
    assert probed["engine_import_started"] is False
    assert probed["engine_import_before_show"] is False
    assert probed["engine_import_before_paint"] is True
    assert "llamadesk.ui.main_window" in probed["modules"]
    assert not {"llamadesk.services.engine", "llama_cpp", "numpy"} & set(probed["modules"])
