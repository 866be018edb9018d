"""Only the tested llama-cpp-python is used: pyproject pins it, and the command line
refuses another with a clear message and its own exit status, without importing
llama_cpp to find out."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from llamadesk.cli import main as cli
from llamadesk.core.exit_codes import EXIT_CANNOT_START
from llamadesk.services import llama_version

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_pins_the_tested_version_and_it_is_installed() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = [d for d in project["dependencies"] if d.startswith("llama-cpp-python")]
    assert pins == [f"llama-cpp-python=={llama_version.TESTED_VERSION}"]
    assert llama_version.installed_version() == llama_version.TESTED_VERSION
    assert llama_version.version_problem() is None


def test_another_version_is_refused_with_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(llama_version.ALLOW_UNTESTED_ENV, raising=False)
    problem = llama_version.version_problem("0.3.40")
    assert problem is not None
    assert "0.3.40" in problem and f"=={llama_version.TESTED_VERSION}" in problem
    assert llama_version.ALLOW_UNTESTED_ENV in problem
    monkeypatch.setattr(llama_version, "installed_version", lambda: None)
    assert "not installed" in (llama_version.version_problem() or "")
    monkeypatch.setenv(llama_version.ALLOW_UNTESTED_ENV, "1")
    assert llama_version.version_problem("0.3.40") is None


def test_the_command_line_refuses_an_untested_version(
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(llama_version.ALLOW_UNTESTED_ENV, raising=False)
    monkeypatch.setattr(llama_version, "installed_version", lambda: "0.3.99")
    assert cli.main(["--self-test"]) == EXIT_CANNOT_START
    err = capfd.readouterr().err
    assert "llamadesk:" in err and "0.3.99" in err and llama_version.TESTED_VERSION in err
    # Stored chats stay reachable with any version.
    assert cli.main(["chats", "list"]) == 0


def test_checking_the_version_does_not_load_llama_cpp() -> None:
    code = ("import sys\nfrom llamadesk.services.llama_version import version_problem\n"
            "assert version_problem() is None\nassert 'llama_cpp' not in sys.modules\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "app")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
