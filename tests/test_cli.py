"""The command's parser, in process (the command as a process: tests/e2e/test_cli.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llamadesk.cli import main as cli
from llamadesk.core.exit_codes import EXIT_CANNOT_START, EXIT_FAILED


def test_the_models_command_is_always_there() -> None:
    parser = cli._parser()
    args = parser.parse_args(["models", "list"])
    assert args.command == "models"


def test_a_broken_models_module_is_reported_not_silently_dropped(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # None in sys.modules makes `from llamadesk.cli import models` raise ImportError.
    monkeypatch.setitem(sys.modules, "llamadesk.cli.models", None)
    monkeypatch.delattr("llamadesk.cli.models", raising=False)
    with pytest.raises(ImportError):
        cli._parser()
    assert cli.main(["models", "list"]) == 1
    error = capsys.readouterr().err
    assert "installation is incomplete" in error and "Traceback" not in error
    assert len(error.strip().splitlines()) == 1


def test_the_window_is_given_the_last_crash_and_a_command_prints_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from llamadesk.core.paths import app_paths
    from llamadesk.ui import app

    crash_dir = app_paths().crash_dir
    crash_dir.mkdir(parents=True)
    (crash_dir / "running-999999999.log").write_text("Fatal Python error: Aborted\n")
    given: list[str | None] = []

    def run_gui_here(screenshot: str | None = None, crash: str | None = None,
                     on_shown: object = None) -> int:
        given.append(crash)
        return 0

    monkeypatch.setattr(app, "run_gui", run_gui_here)
    monkeypatch.setattr(cli, "setup_logging", lambda _file: None)  # leave pytest's logging
    # the window's path sets OpenBLAS's threads for the process: undone after the test
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    assert cli.main([]) == 0
    assert cli.main([]) == 0
    [claimed] = crash_dir.glob("crash-*.log")
    assert given == [cli.crash_notice([claimed]), None], "the window says it, once"
    assert "stopped unexpectedly" not in capsys.readouterr().err

    (crash_dir / "running-999999998.log").write_text("Fatal Python error: Aborted\n")
    assert cli.main(["chats", "list"]) == 0
    err = capsys.readouterr().err
    assert err.count("stopped unexpectedly") == 1 and err.count("\n") == 1


@pytest.mark.parametrize("argv", [["--self-test"], ["chat", "--new", "hello"], ["serve"]])
def test_a_cpu_that_cannot_run_llama_cpp_is_one_line_and_status_3(
        argv: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # A stand-in for an old CPU (no machine here lacks the instructions checked).
    monkeypatch.setattr(cli, "check_this_cpu", lambda _resources: "this CPU lacks AVX2")
    monkeypatch.setattr(cli, "setup_logging", lambda _file: None)  # leave pytest's logging
    assert cli.main(argv) == EXIT_CANNOT_START == 3
    assert capsys.readouterr().err == "llamadesk: this CPU lacks AVX2\n"


def test_a_failed_command_is_one_line_and_status_1(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli, "setup_logging", lambda _file: None)  # leave pytest's logging
    assert cli.main(["chats", "show", "404"]) == EXIT_FAILED == 1
    err = capsys.readouterr().err
    assert err.startswith("llamadesk: there is no conversation 404") and err.count("\n") == 1


def test_main_returns_even_after_a_thread_was_abandoned(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the process's entry (``run``) leaves at once when a model load was given up
    on; ``main``, which tests and probes call inside their own process, returns."""
    from llamadesk.services import worker

    monkeypatch.setattr(worker, "_abandoned", [worker.QThread()])
    monkeypatch.setattr(cli, "setup_logging", lambda _file: None)  # leave pytest's logging
    assert cli.main(["chats", "list"]) == 0
