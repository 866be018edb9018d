"""The frozen bundle: what it carries, that it answers with no Python around, and that
its window opens (offscreen) and can be photographed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging_helpers import ROOT, bare_env

pytestmark = [pytest.mark.packaging, pytest.mark.slow]

LINUX = sys.platform.startswith("linux")


def executable(bundle: Path) -> Path:
    if sys.platform == "win32":
        return bundle / "llamadesk-cli.exe"
    if sys.platform == "darwin":
        return bundle / "Contents" / "MacOS" / "LlamaDesk"
    return bundle / "llamadesk"


def internal(bundle: Path) -> Path:
    if sys.platform == "darwin":
        return bundle / "Contents" / "Frameworks"
    return bundle / "_internal"


def test_bundle_carries_the_model_and_llama_cpp_libraries(bundle: Path) -> None:
    inside = internal(bundle)
    manifest = json.loads((ROOT / "resources" / "bundled-model.json").read_text("utf-8"))
    model = inside / "resources" / "models" / manifest["file"]
    assert model.stat().st_size == manifest["size"]
    assert (inside / "resources" / "bundled-model.json").is_file()
    assert (inside / "resources" / "icons" / "llamadesk.svg").is_file()
    libs = {p.name for p in (inside / "llama_cpp" / "lib").iterdir()}
    loaded_by_ctypes = {"linux": "libllama.so", "darwin": "libllama.dylib", "win32": "llama.dll"}
    assert loaded_by_ctypes[sys.platform if not LINUX else "linux"] in libs
    if LINUX:
        # the sonames libllama.so links against, and no second copy of any library:
        # the names ctypes loads are symlinks to the soname copies
        lib = inside / "llama_cpp" / "lib"
        assert {"libggml.so.0", "libggml-base.so.0", "libggml-cpu.so.0"} <= libs
        assert not [name for name in libs if name.count(".") >= 4], libs
        assert "libggml.so" not in libs
        assert (lib / "libllama.so").is_symlink()
        assert (lib / "libllama.so").resolve() == (lib / "libllama.so.0").resolve()


def test_bundle_records_the_cpu_features_its_llama_cpp_needs(bundle: Path) -> None:
    """core/platform_support.py checks these at start-up, before llama.cpp loads."""
    import llama_cpp

    data = json.loads((internal(bundle) / "resources" / "cpu-baseline.json").read_text("utf-8"))
    info = llama_cpp.llama_print_system_info().decode()
    assert data["system_info"] == info.strip()
    if LINUX and "AVX2 = 1" in info:
        assert "AVX2" in data["x86"]


def test_bundle_leaves_out_what_the_app_does_not_use(bundle: Path) -> None:
    inside = internal(bundle)
    qt = inside / "PySide6" / "Qt"
    assert not list((qt / "translations").glob("*.qm")) if (qt / "translations").exists() else True
    names = {p.name for p in inside.rglob("*")}
    for unused in ("libQt6Qml.so.6", "libQt6Quick.so.6", "libQt6Pdf.so.6",
                   "libQt6Multimedia.so.6", "QtQml.abi3.so", "QtQuick.abi3.so",
                   "libqeglfs.so", "libqvnc.so", "libqlinuxfb.so"):
        assert unused not in names, f"{unused} should have been excluded"
    assert not (inside / "PIL").exists(), "Pillow came in through huggingface_hub.inference"
    assert not (inside / "tkinter").exists()
    # What the window needs on Linux desktops: xcb and wayland, plus offscreen for tests.
    if LINUX:
        platforms = {p.name for p in (qt / "plugins" / "platforms").iterdir()}
        assert {"libqxcb.so", "libqoffscreen.so", "libqwayland.so"} <= platforms


def test_bundle_carries_keyring_backend_entry_points(bundle: Path) -> None:
    """keyring discovers its backends through entry points: no metadata, no backend."""
    found = list(internal(bundle).glob("keyring-*.dist-info/entry_points.txt"))
    assert found, "keyring's metadata is missing from the bundle"
    text = found[0].read_text("utf-8")
    assert "[keyring.backends]" in text
    # The entry for this platform's own keychain (the file lists every platform's).
    own = ("Windows" if sys.platform == "win32" else "macOS" if sys.platform == "darwin"
           else "SecretService")
    assert f"{own} = keyring.backends.{own}" in text


def test_frozen_bundle_answers_the_self_test_with_no_python_around(
        bundle: Path, tmp_path: Path) -> None:
    env = bare_env(tmp_path)
    assert shutil.which("python3", path=env["PATH"]) != sys.executable
    result = subprocess.run([str(executable(bundle)), "--self-test"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "self-test ok" in result.stdout
    # The window's document reader: the frozen program started as its own child.
    assert "document reader ok: 1 passage read in a child process" in result.stdout
    answer = [line for line in result.stdout.splitlines() if line.startswith("A: ")]
    assert answer and answer[0][3:].strip(), result.stdout
    assert "tokens/s" in result.stdout


def test_frozen_window_opens_offscreen_and_is_saved_as_a_screenshot(
        bundle: Path, packaging_out: Path, tmp_path: Path) -> None:
    shot = tmp_path / "main-window.png"
    result = subprocess.run([str(executable(bundle)), "--screenshot", str(shot)],
                            env=bare_env(tmp_path), cwd=tmp_path, capture_output=True,
                            text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert shot.is_file(), result.stdout + result.stderr
    from PIL import Image

    with Image.open(shot) as image:
        width, height = image.size
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert width >= 400 and height >= 300, (width, height)
    assert colours is None or len(colours) > 16, "the screenshot is blank"
    shutil.copy2(shot, packaging_out / "main-window-offscreen.png")


def test_sizes_are_recorded_and_the_installer_is_within_the_goal(sizes: dict[str, Any]) -> None:
    assert sizes["bundle"]["bytes"] > sizes["bundled_model_bytes"]
    assert sizes["installers"], "build.py made no installer"
    for installer in sizes["installers"]:
        assert Path(installer["path"]).stat().st_size == installer["bytes"]
        assert installer["bytes"] <= sizes["goal_bytes"], installer


@pytest.mark.skipif(not LINUX, reason="X11 (xcb) is the Linux desktop's platform plugin")
def test_frozen_window_opens_on_an_x_server(bundle: Path, packaging_out: Path,
                                            tmp_path: Path) -> None:
    """The real xcb platform plugin, under Xvfb: catches the system libraries it needs
    (the .deb's Depends) and the ones the spec must not drop."""
    xvfb_run = shutil.which("xvfb-run")
    if not xvfb_run:
        pytest.fail("xvfb-run not found (Debian: apt-get install xvfb xauth; "
                    "packaging/check.py does)")
    shot = tmp_path / "main-window-xcb.png"
    env = {**bare_env(tmp_path), "QT_QPA_PLATFORM": "xcb"}
    result = subprocess.run([xvfb_run, "-a", "-s", "-screen 0 1280x800x24",
                             str(executable(bundle)), "--screenshot", str(shot)],
                            env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=240, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Could not load the Qt platform plugin" not in output
    assert shot.is_file(), output
    shutil.copy2(shot, packaging_out / "main-window-xcb.png")


@pytest.mark.skipif(not LINUX, reason="the Secret Service keyring is Linux's")
def test_frozen_app_keeps_a_token_in_the_system_keyring(bundle: Path, tmp_path: Path) -> None:
    """keyring finds its backends through entry-point metadata: if the bundle lost it,
    the token would stay in memory only. Here a real Secret Service (gnome-keyring, on
    a private D-Bus session) keeps it between two runs of the frozen app."""
    for tool, package in (("dbus-run-session", "dbus"),
                          ("gnome-keyring-daemon", "gnome-keyring")):
        if not shutil.which(tool):
            pytest.fail(f"{tool} not found (Debian: apt-get install {package}; "
                        "packaging/check.py does)")
    home = tmp_path / "home"
    (home / ".cache").mkdir(parents=True)
    (home / ".local" / "share" / "keyrings").mkdir(parents=True)
    script = tmp_path / "keyring.sh"
    exe = executable(bundle)
    script.write_text(
        "set -e\n"
        # an unlocked login keyring, so nothing prompts for a password
        'eval "$(printf \'test\\n\' | gnome-keyring-daemon --unlock --components=secrets)"\n'
        "export GNOME_KEYRING_CONTROL\n"
        f"echo hf_packagingtest0123456789abcdefghij | '{exe}' models token set\n"
        f"'{exe}' models token status\n"
        f"'{exe}' models token clear\n", encoding="utf-8")
    env = {**bare_env(home), "HOME": str(home)}
    result = subprocess.run(["dbus-run-session", "--", "bash", str(script)], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Token saved in the system keyring." in result.stdout, result.stdout
    assert "set, from the system keyring" in result.stdout, result.stdout


def test_frozen_bundle_encrypts_and_opens_the_chat_database(bundle: Path, tmp_path: Path) -> None:
    """SQLCipher (sqlcipher3's extension module) and the key wrapping (cryptography) are
    in the bundle: the frozen CLI encrypts a plaintext database of an earlier version on
    its first start, then reads it back with the passphrase, and says it is encrypted."""
    from crypt_fixtures import build_plaintext

    from llamadesk.core.db import is_plaintext

    env = bare_env(tmp_path)
    database = Path(env["LLAMADESK_HOME"]) / "data" / "llamadesk.sqlite3"
    database.parent.mkdir(parents=True)
    build_plaintext(database, messages=300, chats=3, marker="frozenmarker")
    exe = str(executable(bundle))
    listed = subprocess.run([exe, "chats", "list"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "Chat 0" in listed.stdout
    assert not is_plaintext(database)
    assert b"frozenmarker" not in database.read_bytes()
    shown = subprocess.run([exe, "chats", "show", "1"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120, check=False)
    assert shown.returncode == 0 and "frozenmarker" in shown.stdout, shown.stderr
    status = subprocess.run([exe, "store", "status"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, check=False)
    assert "encrypted (SQLCipher" in status.stdout, status.stdout + status.stderr


def test_frozen_bundle_reads_documents(bundle: Path, tmp_path: Path) -> None:
    """The document readers (pypdf, python-docx and its XML parser) are in the bundle:
    the frozen CLI indexes a PDF, a DOCX and a Markdown file and finds a passage."""
    from doc_files import write_docx, write_pdf

    folder = tmp_path / "docs"
    folder.mkdir()
    write_pdf(folder / "tax.pdf", ["Cover", "The tax refund for 2025 was 1,234 euros."])
    write_docx(folder / "garden.docx", [("Tomatoes", "Tomatoes need six hours of sun.")])
    (folder / "notes.md").write_text("# Cat\nThe cat is called Miso.\n", encoding="utf-8")
    env = bare_env(tmp_path)
    exe = str(executable(bundle))
    added = subprocess.run([exe, "docs", "add", "Home", str(folder)], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120, check=False)
    assert added.returncode == 0, added.stdout + added.stderr
    assert "3 added" in added.stdout and "0 skipped" in added.stdout, added.stdout
    for question, answer in (("tax refund", "1,234 euros"), ("tomatoes sun", "six hours")):
        found = subprocess.run([exe, "docs", "search", "Home", question], env=env,
                               cwd=tmp_path, capture_output=True, text=True, timeout=120,
                               check=False)
        assert found.returncode == 0 and answer in found.stdout, found.stdout + found.stderr
