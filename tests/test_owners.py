"""Each decision that docs/architecture.md gives one owner is made in that owner only:
the code that makes it (a call, a write) appears in the owner's module and nowhere else
in app/. Each row is the grep the table tells a reader to run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app" / "llamadesk"

#: (what is decided, a regular expression for the code that decides it, the modules
#: allowed to hold it, relative to app/llamadesk).
OWNED: list[tuple[str, str, set[str]]] = [
    ("the settings file is written", r"\bsave_settings\(",
     {"core/settings.py", "services/settings.py"}),
    ("a failed settings save becomes a message", r"except .*SettingsSaveError|USER_ERRORS:",
     {"ui/user_errors.py", "cli/connections.py"}),
    ("whether anything is busy", r"(controller|inference|runner|service)\.(busy|pending)\b",
     {"services/activity.py"}),
    ("the app's shutdown sequence and exit status",
     r"aboutToQuit|setQuitOnLastWindowClosed|closeAllWindows", {"ui/shutdown.py"}),
    ("the views hear what a write changed", r"changed\.emit\(changes", {"ui/operations.py"}),
    ("a refused preset change is put in words", r"The preset was not changed",
     {"ui/user_errors.py"}),
    ("a refused database write is put in words", r"\bwrite_failure\(",
     {"core/store_errors.py", "core/store.py"}),
    ("a worker thread is made, stopped or abandoned", r"\bQThread\(\)",
     {"services/worker.py"}),
    ("the model's thread is shut down (bounded)", r"\"shutdown\", Qt\.ConnectionType",
     {"services/inference.py"}),
    ("SIGINT/SIGTERM in an event loop", r"set_wakeup_fd", {"ui/quit_signals.py"}),
    ("an uncaught exception is reported", r"sys\.excepthook =", {"ui/excepthook.py"}),
    ("the database key is applied", r"PRAGMA key", {"core/db.py"}),
    ("a secret reaches the keychain", r"keyring\.(set|get|delete)_password",
     {"core/secrets.py", "core/store_keys.py"}),
    ("the engine's data types are defined (request, result, load options, model info, "
     "constraints, embeddings)", r"(?m)^class (GenerationRequest|GenerationResult|"
     r"LoadOptions|ModelInfo|ReplyConstraints|TokenLogprob|Embeddings)\b",
     {"services/engine_types.py"}),
    ("a job's types are defined (its model, its sink, the model's state, the queued jobs)",
     r"(?m)^class (ModelSpec|JobSink|ModelState|GenerateJob|EmbedJob)\b",
     {"services/jobs.py"}),
    ("the engine's errors are defined",
     r"(?m)^class (EngineError|ContextFullError|ModelLoadError)\b",
     {"services/engine_errors.py"}),
    ("a reply is run to its one end (window, local API, command line)",
     r"\.generate\([^,()]+, [^,()]+, [^,()]*cancel\)", {"services/job_runner.py"}),
    ("local or remote answers a model", r"RemoteEngine\(", {"services/job_runner.py"}),
    ("a job's final signal is emitted", r"generation_ended\.emit",
     {"services/inference_signals.py"}),
    ("llama.cpp's context is resized as a chat grows", r"\bresize_context\(",
     {"services/kv_context.py", "services/llama_internals.py"}),
    ("how PySide6 tells which imported modules use it (read, not kept)",
     r"_mod_uses_pyside", {"ui/pyside_sources.py"}),
    ("PySide6's support package is compiled (once, then cached)",
     r"builtins\.compile =", {"cli/qt_support_cache.py"}),
    ("a process exit status gets its number", r"EXIT_[A-Z_]+ =", {"core/exit_codes.py"}),
    ("a command line failure is said (`llamadesk: …` on stderr)", r"llamadesk: ",
     {"cli/errors.py"}),
    ("the context length when none is named (the default n_ctx)",
     r"defaults\.n_ctx|n_ctx or |n_ctx: int = \d+,", {"services/resolver.py"}),
    ("what the fit estimate is given", r"\bestimate_fit\(",
     {"core/fit.py", "services/resolver.py"}),
    ("whether the loaded model serves a job (the reuse rule)",
     r"\.model_id == [\w.]+\.model_id", {"services/resolver.py"}),
    ("the model's memory start is stored", r"store\.set_memory_start\(|INTO memory_starts",
     {"core/store.py", "services/chat_session.py"}),
    ("a chat template that broke is replaced by its fallback",
     r"_replace_with\(|\.warning != |info is not info", {"core/chat_format.py"}),
]


def holders(pattern: str) -> set[str]:
    """The modules in app/ whose code matches ``pattern``."""
    regex = re.compile(pattern)
    return {path.relative_to(APP).as_posix() for path in APP.rglob("*.py")
            if regex.search(path.read_text(encoding="utf-8"))}


@pytest.mark.parametrize(("decision", "pattern", "owners"), OWNED, ids=[o[0] for o in OWNED])
def test_a_decision_is_made_by_its_owner_only(decision: str, pattern: str,
                                              owners: set[str]) -> None:
    found = holders(pattern)
    assert found & owners, f"{decision}: the owner no longer matches {pattern!r}"
    assert found <= owners, f"{decision}: also decided in {sorted(found - owners)}"


def test_every_row_is_in_the_architecture_table() -> None:
    doc = (APP.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = [line for line in doc.splitlines() if line.startswith("| ")]
    missing = [decision for decision, _p, _o in OWNED
               if not any(row.startswith(f"| {decision} |") for row in rows)]
    assert not missing, f"docs/architecture.md lacks rows for {missing}"
