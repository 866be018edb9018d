"""What can be checked here of the other OSes' packaging: the NSIS script compiles with
Debian's makensis against a stand-in bundle, the release workflow passes actionlint, and
the macOS files parse. None of these needs the real build."""

from __future__ import annotations

import plistlib
import py_compile
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging_helpers import PACKAGING, ROOT

pytestmark = pytest.mark.packaging

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def require_tool(name: str, package: str) -> str:
    """The tool's path; on Linux its absence fails the test (CI installs it), elsewhere
    it skips."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found:
        return found
    message = f"{name} not found (Debian: apt-get install {package}; packaging/check.py does)"
    if sys.platform.startswith("linux"):
        pytest.fail(message)
    pytest.skip(message)


def fake_windows_bundle(root: Path, with_vcomp: bool = True) -> Path:
    """A stand-in for PyInstaller's Windows output: the files the script names."""
    bundle = root / "llamadesk"
    lib = bundle / "_internal" / "llama_cpp" / "lib"
    lib.mkdir(parents=True)
    icons = bundle / "_internal" / "resources" / "icons"
    icons.mkdir(parents=True)
    shutil.copy2(ROOT / "resources" / "icons" / "llamadesk.ico", icons / "llamadesk.ico")
    for name in ("LlamaDesk.exe", "llamadesk-cli.exe"):
        (bundle / name).write_bytes(b"MZ stand-in")
    for name in ("llama.dll", "ggml.dll", "ggml-base.dll", "ggml-cpu.dll"):
        (lib / name).write_bytes(b"MZ stand-in")
    if with_vcomp:
        (lib / "vcomp140.dll").write_bytes(b"MZ stand-in")
    models = bundle / "_internal" / "resources" / "models"
    models.mkdir(parents=True)
    (models / "stand-in.gguf").write_bytes(b"GGUF" + bytes(64))
    return bundle


def test_nsis_installer_compiles(tmp_path: Path, build_script: Any) -> None:
    require_tool("makensis", "nsis")
    bundle = fake_windows_bundle(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    setup = build_script.build_nsis(bundle, out, build_script.project_version())
    assert setup.read_bytes()[:2] == b"MZ", "makensis did not write a Windows executable"
    assert setup.name == f"LlamaDesk-{build_script.project_version()}-windows-x64-setup.exe"


def test_nsis_refuses_a_bundle_without_the_openmp_runtime(tmp_path: Path,
                                                          build_script: Any) -> None:
    require_tool("makensis", "nsis")
    bundle = fake_windows_bundle(tmp_path, with_vcomp=False)
    with pytest.raises(subprocess.CalledProcessError):
        build_script.build_nsis(bundle, tmp_path, "0.0.0")
    # ...unless the build names where vcomp140.dll is, which then goes next to llama.dll
    vcomp = tmp_path / "vcomp140.dll"
    vcomp.write_bytes(b"MZ stand-in")
    setup = build_script.build_nsis(bundle, tmp_path, "0.0.0", (f"-DVCOMP140={vcomp}",))
    assert setup.is_file()


def test_nsis_signs_the_uninstaller_and_the_setup_as_it_writes_them(
        tmp_path: Path, build_script: Any) -> None:
    """!uninstfinalize and !finalize call the signing command with each file: an
    unsigned Uninstall.exe inside a signed setup is what a bare signtool call missed."""
    require_tool("makensis", "nsis")
    bundle = fake_windows_bundle(tmp_path)
    log = tmp_path / "signed.txt"
    signer = tmp_path / "fake_signer.py"  # a stand-in for windows_sign.py: records
    signer.write_text(
        "import pathlib, sys\n"
        "path = pathlib.Path(sys.argv[1])\n"
        "assert path.read_bytes()[:2] == b'MZ', path\n"
        f"with open({str(log)!r}, 'a') as fh: fh.write(f'{{path.stat().st_size}}\\n')\n",
        "utf-8")
    define = f'-DSIGN_COMMAND="{sys.executable}" "{signer}"'
    setup = build_script.build_nsis(bundle, tmp_path, "0.0.0", (define,))
    sizes = [int(n) for n in log.read_text("utf-8").split()]
    assert len(sizes) == 2, "the uninstaller, then the setup"
    assert sizes[1] == setup.stat().st_size and sizes[0] < sizes[1]
    # and a signing command that fails stops the build
    failing = tmp_path / "failing_signer.py"
    failing.write_text("import sys\nsys.exit(3)\n", "utf-8")
    with pytest.raises(subprocess.CalledProcessError):
        build_script.build_nsis(bundle, tmp_path, "0.0.1",
                                (f'-DSIGN_COMMAND="{sys.executable}" "{failing}"',))


def test_nsis_script_installs_per_user_and_keeps_user_data_by_default() -> None:
    script = (PACKAGING / "windows" / "installer.nsi").read_text("utf-8")
    assert "RequestExecutionLevel user" in script
    assert 'InstallDir "$LOCALAPPDATA\\Programs\\${APP_NAME}"' in script
    assert 'WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString"' in script
    assert "HKLM" not in script
    # the user-data section is optional (/o) and unticked by default
    assert 'Section /o "un.Also delete my conversations' in script
    assert 'Section /o "Desktop shortcut"' in script
    # 64-bit Windows only; a running copy is never overwritten or removed
    assert "${IfNot} ${RunningX64}" in script
    assert "Call CheckNotRunning" in script and "Call un.CheckNotRunning" in script


def test_release_workflow_passes_actionlint() -> None:
    actionlint = require_tool("actionlint", "(PyPI) the packaging extra")
    result = subprocess.run([actionlint, "-no-color", str(WORKFLOW)], capture_output=True,
                            text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_would_catch_a_broken_workflow(tmp_path: Path) -> None:
    """Guards the check above against an actionlint that accepts anything."""
    actionlint = require_tool("actionlint", "(PyPI) the packaging extra")
    broken = tmp_path / "release.yml"
    broken.write_text(WORKFLOW.read_text("utf-8").replace("${{ matrix.name }}",
                                                          "${{ matrix.nmae }}"), "utf-8")
    result = subprocess.run([actionlint, "-no-color", str(broken)], capture_output=True,
                            text=True, check=False)
    assert result.returncode != 0
    assert "nmae" in result.stdout


def test_release_workflow_covers_every_os_and_runs_the_installed_self_test() -> None:
    text = WORKFLOW.read_text("utf-8")
    for runner in ("windows-2022", "macos-15", "macos-15-intel", "ubuntu-22.04"):
        assert f"os: {runner}" in text
    assert text.count("--self-test") >= 3
    assert "release_checks.py build-env" in text
    assert "gh release create" in text


def test_macos_entitlements_allow_what_llama_cpp_needs() -> None:
    with (PACKAGING / "macos" / "entitlements.plist").open("rb") as fh:
        entitlements = plistlib.load(fh)
    for key in ("com.apple.security.cs.allow-jit",
                "com.apple.security.cs.allow-unsigned-executable-memory",
                "com.apple.security.cs.disable-library-validation"):
        assert entitlements.get(key) is True, key
    assert "com.apple.security.app-sandbox" not in entitlements


def test_macos_scripts_parse_and_never_copy_with_cp_r() -> None:
    py_compile.compile(str(PACKAGING / "macos" / "dmg_settings.py"), doraise=True)
    script = PACKAGING / "macos" / "package.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    shellcheck = shutil.which("shellcheck")
    if shellcheck:
        subprocess.run([shellcheck, str(script)], check=True)
    for path in (script, WORKFLOW, PACKAGING / "build.py"):
        assert "cp -r " not in path.read_text("utf-8"), f"{path}: symlinks need cp -R / ditto"
