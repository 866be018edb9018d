"""The .deb: its metadata, then a real install into this machine, the installed command's
self-test, and a clean removal."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging_helpers import bare_env

pytestmark = [
    pytest.mark.packaging,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("dpkg-deb"),
                       reason="the .deb is built and installed on Debian-like Linux only"),
]

PACKAGE = "llamadesk"


@pytest.fixture(scope="module")
def deb(sizes: dict[str, Any]) -> Path:
    debs = [Path(item["path"]) for item in sizes["installers"] if item["kind"] == "deb"]
    assert debs, "build.py made no .deb"
    return debs[0]


def dpkg_field(deb: Path, field: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), field], check=True, text=True,
                          capture_output=True).stdout.strip()


def installed_status() -> str:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", PACKAGE],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else "not-installed"


def test_deb_metadata_declares_what_qt_needs_from_the_system(deb: Path,
                                                            build_script: Any) -> None:
    assert dpkg_field(deb, "Package") == PACKAGE
    assert dpkg_field(deb, "Version") == build_script.project_version()
    depends = dpkg_field(deb, "Depends")
    for lib in ("libxcb-cursor0", "libxkbcommon-x11-0", "libxcb-icccm4", "libxcb-keysyms1",
                "libxcb-render-util0", "libxcb-image0", "libxcb-shape0", "libxcb-xinerama0",
                "libxcb-randr0", "libegl1", "libgl1", "libfontconfig1", "libdbus-1-3"):
        assert lib in depends, f"{lib} missing from Depends: {depends}"


def test_deb_lays_out_opt_usr_bin_menu_entry_and_icons(deb: Path) -> None:
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], check=True, text=True,
                             capture_output=True).stdout
    assert "./opt/llamadesk/llamadesk\n" in listing
    assert "./usr/bin/llamadesk -> /opt/llamadesk/llamadesk" in listing
    assert "./usr/share/applications/llamadesk.desktop" in listing
    assert "./usr/share/icons/hicolor/256x256/apps/llamadesk.png" in listing
    assert "./usr/share/icons/hicolor/scalable/apps/llamadesk.svg" in listing
    # root-owned files, whoever built it
    assert "root/root" in listing.splitlines()[0]


def test_desktop_entry_is_valid(tmp_path: Path, build_script: Any) -> None:
    validator = shutil.which("desktop-file-validate")
    if not validator:
        pytest.skip("desktop-file-validate not installed (Debian: desktop-file-utils)")
    entry = tmp_path / "llamadesk.desktop"
    entry.write_text(build_script.DESKTOP_ENTRY.format(name="LlamaDesk", package=PACKAGE),
                     encoding="utf-8")
    result = subprocess.run([validator, str(entry)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() != 0,
                    reason="installing a .deb needs root")
def test_deb_installs_answers_the_self_test_and_removes_cleanly(deb: Path,
                                                                tmp_path: Path) -> None:
    if installed_status().startswith("install ok"):
        pytest.fail(f"{PACKAGE} is already installed on this machine; remove it first "
                    "(dpkg -r llamadesk) so the test does not clobber it")
    install = subprocess.run(["dpkg", "-i", str(deb)], capture_output=True, text=True,
                             check=False)
    try:
        assert install.returncode == 0, (
            "dpkg -i failed (missing system libraries? packaging/check.py installs the "
            f"Depends list):\n{install.stdout}{install.stderr}")
        assert installed_status() == "install ok installed"
        assert Path("/usr/bin/llamadesk").resolve() == Path("/opt/llamadesk/llamadesk")

        result = subprocess.run(["/usr/bin/llamadesk", "--self-test"], env=bare_env(tmp_path),
                                cwd=tmp_path, capture_output=True, text=True, timeout=240,
                                check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "self-test ok" in result.stdout
        assert any(line.startswith("A: ") and line[3:].strip()
                   for line in result.stdout.splitlines()), result.stdout
    finally:
        remove = subprocess.run(["dpkg", "-r", PACKAGE], capture_output=True, text=True,
                                check=False)
    assert remove.returncode == 0, remove.stdout + remove.stderr
    # Clean: no files left behind (the app writes nothing inside /opt), no package state.
    assert installed_status() in ("not-installed", "unknown ok not-installed"), installed_status()
    assert not Path("/opt/llamadesk").exists(), list(Path("/opt/llamadesk").rglob("*"))[:10]
    assert not Path("/usr/bin/llamadesk").exists()
    assert not Path("/usr/share/applications/llamadesk.desktop").exists()
