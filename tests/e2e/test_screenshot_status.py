"""``llamadesk --screenshot`` as the release workflow runs it: its exit status says
whether the model loaded, not only whether a picture was saved."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def damaged_resources(folder: Path) -> Path:
    """A copy of resources/ whose bundled model starts like a GGUF file and then is
    garbage: it passes the start-up size check and fails inside the load."""
    shutil.copytree(ROOT / "resources", folder,
                    ignore=shutil.ignore_patterns("*.gguf", "*.part"))
    manifest = json.loads((folder / "bundled-model.json").read_text("utf-8"))
    data = b"GGUF" + (3).to_bytes(4, "little") + bytes(range(256)) * 16
    (folder / "models").mkdir(exist_ok=True)
    (folder / "models" / manifest["file"]).write_bytes(data)
    manifest["size"] = len(data)
    (folder / "bundled-model.json").write_text(json.dumps(manifest), "utf-8")
    return folder


def screenshot(shot: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llamadesk", "--screenshot", str(shot)],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**env, "QT_QPA_PLATFORM": "offscreen"})


def test_screenshot_fails_when_the_model_cannot_load(tmp_path: Path) -> None:
    env = {**os.environ, "LLAMADESK_HOME": str(tmp_path / "home"),
           "LLAMADESK_RESOURCES": str(damaged_resources(tmp_path / "resources"))}
    shot = tmp_path / "window.png"
    result = screenshot(shot, env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the model failed to load" in result.stderr
    assert shot.is_file(), "the picture of the failure is still saved, for the release log"


def test_screenshot_succeeds_once_the_bundled_model_loaded(
        bundled_model_path: Path, tmp_path: Path) -> None:
    env = {**os.environ, "LLAMADESK_HOME": str(tmp_path / "home")}
    result = screenshot(tmp_path / "window.png", env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the model failed to load" not in result.stderr


@pytest.mark.skipif(not (sys.platform.startswith("linux") and platform.machine() == "x86_64"),
                    reason="reads /proc/cpuinfo: the CPU check's Linux x86-64 reader")
@pytest.mark.parametrize("argv", [["--self-test"], ["--screenshot", "never.png"]])
def test_a_cpu_without_the_builds_instructions_is_told_so(tmp_path: Path,
                                                          argv: list[str]) -> None:
    """A build that needs an instruction set this CPU lacks (here one no CPU has) stops
    before llama.cpp loads, with a message naming it, instead of crashing."""
    resources = tmp_path / "resources"
    shutil.copytree(ROOT / "resources", resources,
                    ignore=shutil.ignore_patterns("*.gguf", "*.part"))
    (resources / "cpu-baseline.json").write_text(
        json.dumps({"x86": ["SSE3", "NO_SUCH_ISA"]}), "utf-8")
    env = {**os.environ, "LLAMADESK_HOME": str(tmp_path / "home"),
           "LLAMADESK_RESOURCES": str(resources), "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-m", "llamadesk", *argv], capture_output=True,
                            text=True, timeout=120, check=False, env=env, cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "lacks instructions" in result.stderr and "NO_SUCH_ISA" in result.stderr
    assert "SSE3" not in result.stderr.split("needs:")[1], "only what is missing"
    assert not (tmp_path / "never.png").exists()
