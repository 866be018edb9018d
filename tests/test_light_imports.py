"""Naming a type loads nothing heavy: the data types live in light modules
(services/engine_types.py, jobs.py, engine_errors.py), so the backend interface, the
local API and every window module import without llama.cpp (and numpy), and the API and
the light types without Qt too. Each check runs in a fresh interpreter, so what another
test imported cannot hide an import."""

from __future__ import annotations

import json
import os
import subprocess
import sys

#: The light modules and what may import them: the local API (beside the window, never
#: under it), the backend interface, the data types themselves.
LIGHT = ["llamadesk.services.backend", "llamadesk.services.engine_types",
         "llamadesk.services.jobs", "llamadesk.services.engine_errors",
         "llamadesk.services.json_grammar", "llamadesk.services.job_runner",
         "llamadesk.api.convert"]


def _loaded_after(code: str, watched: tuple[str, ...]) -> dict[str, object]:
    """Run ``code`` (which fills ``imported``, a list of module names) in a fresh
    interpreter; which of ``watched`` it loaded, and what it imported."""
    probe = ("import importlib, json, pkgutil, sys\nimported = []\n" + code +
             f"\nprint(json.dumps({{'loaded': sorted(m for m in {watched!r} "
             "if m in sys.modules), 'imported': imported}))")
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120, check=True, env=env)
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_the_backend_and_the_apis_conversion_do_not_import_llama_cpp() -> None:
    code = f"for name in {LIGHT!r}:\n    importlib.import_module(name); imported.append(name)"
    answer = _loaded_after(code, ("llama_cpp", "numpy", "PySide6",
                                  "llamadesk.services.engine"))
    assert answer["imported"] == LIGHT
    assert answer["loaded"] == []


def test_every_api_module_imports_neither_qt_nor_llama_cpp() -> None:
    code = ("import llamadesk.api\n"
            "for m in pkgutil.iter_modules(llamadesk.api.__path__):\n"
            "    importlib.import_module('llamadesk.api.' + m.name)\n"
            "    imported.append(m.name)")
    answer = _loaded_after(code, ("llama_cpp", "numpy", "PySide6"))
    assert {"convert", "jobs", "routes", "server", "errors"} <= set(answer["imported"])
    assert answer["loaded"] == []


def test_every_window_module_imports_without_llama_cpp() -> None:
    """The window names ModelInfo, GenerationRequest, ModelState and the rest without
    the engine; llama.cpp loads on the inference thread when a model is needed."""
    code = ("import llamadesk.ui\n"
            "for m in pkgutil.iter_modules(llamadesk.ui.__path__):\n"
            "    importlib.import_module('llamadesk.ui.' + m.name)\n"
            "    imported.append(m.name)")
    answer = _loaded_after(code, ("llama_cpp", "numpy", "llamadesk.services.engine"))
    assert {"app", "main_window", "chat_pane", "status_bar", "local_api"} \
        <= set(answer["imported"])
    assert answer["loaded"] == []


def test_the_probe_sees_llama_cpp_when_it_is_imported() -> None:
    """The check above can fail: the engine's own module does bring llama.cpp."""
    code = "importlib.import_module('llamadesk.services.engine')"
    assert _loaded_after(code, ("llama_cpp", "numpy"))["loaded"] == ["llama_cpp", "numpy"]
