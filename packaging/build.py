#!/usr/bin/env python3
"""Build LlamaDesk for this OS: the PyInstaller bundle, then the OS's installer.

    python packaging/build.py                 bundle + installer into artifacts/packaging/
    python packaging/build.py --no-installer  the bundle only
    python packaging/build.py --reuse-bundle  installer from the bundle already built

Linux gives a .deb (dpkg-deb), Windows an NSIS setup.exe (makensis), macOS a .dmg
(dmgbuild), signed and notarised when the secrets are in the environment (see
docs/packaging.md). It prints each artefact with its size and writes them to
``<out>/sizes.json``. Run it with the project's virtual environment, after set-up
(``python3 tools/dev.py setup``) and ``pip install -e .[packaging]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
sys.path.insert(0, str(PACKAGING))
import windows_sign  # noqa: E402  (a sibling script, standard library only)

SPEC = PACKAGING / "llamadesk.spec"
ICONS = ROOT / "resources" / "icons"
APP_NAME = "LlamaDesk"
PACKAGE = "llamadesk"
DEFAULT_OUT = ROOT / "artifacts" / "packaging"
SIZE_GOAL = 250 * 1000 * 1000  # an installer with the bundled model, in bytes

# What Qt's xcb platform plugin loads from the system (PyInstaller leaves graphics and
# X11 libraries to the system on purpose). Without them a bare Debian or Ubuntu machine
# fails with "Could not load the Qt platform plugin "xcb"".
DEB_DEPENDS = (
    "libc6 (>= 2.34)",
    "libegl1",
    "libgl1",
    "libopengl0",
    "libfontconfig1",
    "libfreetype6",
    "libdbus-1-3",
    "libx11-6",
    "libx11-xcb1",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
    "libxcb1",
    "libxcb-cursor0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render-util0",
    "libxcb-render0",
    "libxcb-shape0",
    "libxcb-shm0",
    "libxcb-sync1",
    "libxcb-xfixes0",
    "libxcb-xinerama0",
    "libxcb-xkb1",
)
DEB_RECOMMENDS = ("libwayland-client0", "libwayland-cursor0", "libwayland-egl1",
                  "gnome-keyring | kwalletmanager")

DESKTOP_ENTRY = """\
[Desktop Entry]
Type=Application
Version=1.0
Name={name}
GenericName=Offline AI chat
Comment=Private, offline chat with local language models
Exec={package}
Icon={package}
Terminal=false
Categories=Utility;
Keywords=AI;LLM;chat;llama;offline;
StartupNotify=true
"""


def log(message: str) -> None:
    print(message, flush=True)


def run(cmd: list[str | os.PathLike[str]], **kwargs: object) -> None:
    log("+ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)  # type: ignore[call-overload]


def project_version() -> str:
    """The version in pyproject.toml: the one source for every artefact's version."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


def tree_size(path: Path) -> int:
    """Bytes in the files under ``path``, symlinks counted as links (as installed)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for entry in path.rglob("*"):
        if entry.is_file() and not entry.is_symlink():
            total += entry.stat().st_size
    return total


def human(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB"


def build_bundle(dist: Path, work: Path) -> Path:
    """Run PyInstaller on the spec; return the one-folder bundle (or the .app on macOS)."""
    run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
         "--distpath", dist, "--workpath", work, SPEC], cwd=ROOT)
    return bundle_path(dist)


def bundle_path(dist: Path) -> Path:
    if sys.platform == "darwin":
        return dist / f"{APP_NAME}.app"
    return dist / PACKAGE


# --- Linux ------------------------------------------------------------------------------
def deb_architecture() -> str:
    try:
        out = subprocess.run(["dpkg", "--print-architecture"], check=True, text=True,
                             capture_output=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return out


def stage_deb(bundle: Path, stage: Path, version: str) -> None:
    """Lay out the .deb's file tree under ``stage``: /opt, /usr/bin, menu entry, icons."""
    if stage.exists():
        shutil.rmtree(stage)
    opt = stage / "opt" / PACKAGE
    # symlinks=True: PyInstaller 6 links top-level library names to the copies inside
    # packages; following them would double the size.
    shutil.copytree(bundle, opt, symlinks=True)
    bin_dir = stage / "usr" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / PACKAGE).symlink_to(f"/opt/{PACKAGE}/{PACKAGE}")
    share = stage / "usr" / "share"
    (share / "applications").mkdir(parents=True)
    (share / "applications" / f"{PACKAGE}.desktop").write_text(
        DESKTOP_ENTRY.format(name=APP_NAME, package=PACKAGE), encoding="utf-8")
    for png in sorted(ICONS.glob(f"{PACKAGE}-*.png")):
        size = png.stem.rsplit("-", 1)[1]
        target = share / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(png, target / f"{PACKAGE}.png")
    scalable = share / "icons" / "hicolor" / "scalable" / "apps"
    scalable.mkdir(parents=True)
    shutil.copy2(ICONS / f"{PACKAGE}.svg", scalable / f"{PACKAGE}.svg")
    doc = share / "doc" / PACKAGE
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        f"Upstream-Name: {APP_NAME}\n\n"
        "Files: *\nLicense: Apache-2.0\n\n"
        "Files: opt/llamadesk/_internal/resources/models/*\n"
        "Comment: SmolLM2-135M-Instruct, see resources/bundled-model.json\n"
        "License: Apache-2.0\n\n"
        "License: Apache-2.0\n On Debian systems the full text is in\n"
        " /usr/share/common-licenses/Apache-2.0.\n", encoding="utf-8")
    for path in [stage, *stage.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            executable = path.stat().st_mode & 0o111
            path.chmod(0o755 if executable else 0o644)
    installed_kb = (tree_size(stage) + 1023) // 1024
    control = stage / "DEBIAN" / "control"
    control.parent.mkdir()
    control.write_text(
        f"Package: {PACKAGE}\n"
        f"Version: {version}\n"
        f"Architecture: {deb_architecture()}\n"
        f"Maintainer: {APP_NAME} developers <noreply@llamadesk.invalid>\n"
        f"Installed-Size: {installed_kb}\n"
        f"Depends: {', '.join(DEB_DEPENDS)}\n"
        f"Recommends: {', '.join(DEB_RECOMMENDS)}\n"
        "Section: utils\n"
        "Priority: optional\n"
        f"Description: private, offline chat with local language models\n"
        f" {APP_NAME} runs Llama 2 and its community fine-tunes on this computer through\n"
        " llama.cpp. It ships with a small model, so the first chat works with no\n"
        " network at all; a model manager downloads and verifies GGUF files.\n",
        encoding="utf-8")
    control.parent.chmod(0o755)
    control.chmod(0o644)


# Measured on the 0.1.0 bundle (360 MB, 2 cores): xz -6 gives 165 MB in 330 s, gzip -6
# 197 MB in 19 s. Releases use xz; the packaging tests use gzip to stay quick. Not zstd:
# dpkg before 1.21.18 (Debian 11) cannot read it.
DEB_COMPRESSION = {"xz": ["-Zxz", "-z6"], "gzip": ["-Zgzip", "-z6"]}


def build_deb(bundle: Path, out: Path, version: str, compression: str = "xz") -> Path:
    """Build ``llamadesk_<version>_<arch>.deb`` from the bundle with dpkg-deb."""
    stage = out / "deb-root"
    stage_deb(bundle, stage, version)
    deb = out / f"{PACKAGE}_{version}_{deb_architecture()}.deb"
    run(["dpkg-deb", "--root-owner-group", *DEB_COMPRESSION[compression], "--build",
         stage, deb])
    shutil.rmtree(stage)
    return deb


# --- Windows ----------------------------------------------------------------------------
def find_makensis() -> str:
    for candidate in (shutil.which("makensis"),
                      r"C:\Program Files (x86)\NSIS\makensis.exe",
                      r"C:\Program Files\NSIS\makensis.exe"):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("makensis not found: install NSIS (Debian: apt-get install nsis; "
                     "Windows: choco install nsis)")


def build_nsis(bundle: Path, out: Path, version: str, extra: tuple[str, ...] = ()) -> Path:
    """Compile packaging/windows/installer.nsi against ``bundle``; return the setup.exe."""
    setup = out / f"{APP_NAME}-{version}-windows-x64-setup.exe"
    run([find_makensis(), "-V2", "-WX", f"-DVERSION={version}", f"-DBUNDLE_DIR={bundle}",
         f"-DOUTFILE={setup}", *extra, PACKAGING / "windows" / "installer.nsi"])
    return setup


def windows_binaries(bundle: Path) -> list[Path]:
    """What build.py signs before makensis: the two exes and llama.cpp's DLLs (not
    vcomp140.dll, which Microsoft signed)."""
    lib = bundle / "_internal" / "llama_cpp" / "lib"
    dlls = sorted(p for p in lib.glob("*.dll") if p.name.lower() != "vcomp140.dll")
    return [bundle / f"{APP_NAME}.exe", bundle / "llamadesk-cli.exe", *dlls]


def nsis_signing(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """makensis defines that sign the uninstaller and the setup as they are written
    (installer.nsi: !uninstfinalize, !finalize), when a signing method is set."""
    if environ.get("WINDOWS_SIGNING", "none") in ("", "none"):
        return ()
    return (f'-DSIGN_COMMAND="{sys.executable}" "{PACKAGING / "windows_sign.py"}"',)


# --- macOS ------------------------------------------------------------------------------
def macos_package(app: Path, out: Path, version: str) -> Path:
    """Sign the .app (if an identity is set), make the .dmg, notarise and staple it."""
    script = PACKAGING / "macos" / "package.sh"
    dmg = out / f"{APP_NAME}-{version}-macos-{platform.machine()}.dmg"
    # The Python that runs build.py (dmgbuild, release_checks.py), not whichever
    # `python` comes first on PATH.
    run(["bash", script, app, dmg, version], env={**os.environ, "PYTHON": sys.executable})
    return dmg


# --- driver -----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="where the artefacts and sizes.json go (default: %(default)s)")
    parser.add_argument("--build-dir", type=Path, default=ROOT / "build" / "pyinstaller",
                        help="PyInstaller's dist/ and work/ folders (default: %(default)s)")
    parser.add_argument("--no-installer", action="store_true", help="build the bundle only")
    parser.add_argument("--reuse-bundle", action="store_true",
                        help="skip PyInstaller and package the bundle already built")
    parser.add_argument("--deb-compression", choices=sorted(DEB_COMPRESSION), default="xz",
                        help="xz for releases (smaller), gzip for quick local checks")
    args = parser.parse_args(argv)

    version = project_version()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    dist = args.build_dir.resolve() / "dist"
    started = time.monotonic()
    bundle = bundle_path(dist)
    if args.reuse_bundle and bundle.exists():
        log(f"reusing {bundle}")
    else:
        bundle = build_bundle(dist, args.build_dir.resolve() / "work")
    timings = {"bundle_s": round(time.monotonic() - started, 1)}

    installers: list[dict[str, object]] = []
    if not args.no_installer:
        started = time.monotonic()
        if sys.platform.startswith("linux"):
            artefact, kind = build_deb(bundle, out, version, args.deb_compression), "deb"
        elif sys.platform == "win32":
            windows_sign.sign(windows_binaries(bundle))
            artefact, kind = build_nsis(bundle, out, version, nsis_signing()), "nsis"
        elif sys.platform == "darwin":
            artefact, kind = macos_package(bundle, out, version), "dmg"
        else:
            raise SystemExit(f"no installer for {sys.platform}")
        timings["installer_s"] = round(time.monotonic() - started, 1)
        size = artefact.stat().st_size
        installers.append({"kind": kind, "path": str(artefact), "bytes": size,
                           "within_goal": size <= SIZE_GOAL})

    manifest = json.loads((ROOT / "resources" / "bundled-model.json").read_text("utf-8"))
    sizes = {
        "version": version,
        "platform": f"{sys.platform}-{platform.machine()}",
        "python": platform.python_version(),
        "bundle": {"path": str(bundle), "bytes": tree_size(bundle)},
        "bundled_model_bytes": manifest["size"],
        "installers": installers,
        "goal_bytes": SIZE_GOAL,
        "timings": timings,
    }
    (out / "sizes.json").write_text(json.dumps(sizes, indent=2) + "\n", encoding="utf-8")

    log("")
    log(f"{APP_NAME} {version} for {sizes['platform']}")
    log(f"  bundle     {human(sizes['bundle']['bytes']):>10}  {bundle}")
    for item in installers:
        flag = "" if item["within_goal"] else f"  (over the {human(SIZE_GOAL)} goal)"
        log(f"  {item['kind']:<10} {human(int(item['bytes'])):>10}  {item['path']}{flag}")
    log(f"  sizes      {out / 'sizes.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
