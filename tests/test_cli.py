"""The command's parser, in process (the command as a process: tests/e2e/test_cli.py)."""

from __future__ import annotations

import sys

import pytest

from llamadesk import cli


def test_the_models_command_is_always_there() -> None:
    parser = cli._parser()
    args = parser.parse_args(["models", "list"])
    assert args.command == "models"


def test_a_broken_models_module_is_reported_not_silently_dropped(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # None in sys.modules makes `from llamadesk import cli_models` raise ImportError.
    monkeypatch.setitem(sys.modules, "llamadesk.cli_models", None)
    monkeypatch.delattr("llamadesk.cli_models", raising=False)
    with pytest.raises(ImportError):
        cli._parser()
    assert cli.main(["models", "list"]) == 1
    error = capsys.readouterr().err
    assert "installation is incomplete" in error and "Traceback" not in error
    assert len(error.strip().splitlines()) == 1
