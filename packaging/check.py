#!/usr/bin/env python3
"""CI step for the installers: set up, build once, then run tests/packaging against it.

    python3 packaging/check.py [PYTEST ARGS...]

1. the project's set-up (tools/dev.py setup: .venv, dependencies, the bundled model);
2. the ``packaging`` extra from pyproject.toml into .venv (PyInstaller, Pillow, actionlint);
3. on Debian/Ubuntu as root: the system tools the tests use (nsis for makensis,
   shellcheck for actionlint's script checks, desktop-file-utils, xvfb for the window
   on a real X server, dbus and gnome-keyring for the keyring) and the libraries the
   .deb depends on, so that ``dpkg -i`` can install it;
4. ``packaging/build.py`` once (bundle + .deb, gzip to keep it quick), into
   artifacts/packaging/ (sizes.json, and the GUI screenshot once the tests ran);
5. ``pytest tests/packaging -m packaging`` with LLAMADESK_PACKAGING_OUT pointing at that
   build, so every test reuses it.

Standard library only: it runs before the virtual environment exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / ("Scripts" if os.name == "nt" else "bin")
PY = VENV_BIN / ("python.exe" if os.name == "nt" else "python")
OUT = ROOT / "artifacts" / "packaging"
APT_TOOLS = {"makensis": "nsis", "shellcheck": "shellcheck",
             "desktop-file-validate": "desktop-file-utils", "dpkg-deb": "dpkg",
             "xvfb-run": "xvfb", "xauth": "xauth", "dbus-run-session": "dbus",
             "gnome-keyring-daemon": "gnome-keyring"}


def run(cmd: list[str | os.PathLike[str]], **kwargs: object) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)  # type: ignore[call-overload]


def packaging_requirements() -> list[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return list(data["project"]["optional-dependencies"]["packaging"])


def deb_depends() -> list[str]:
    sys.path.insert(0, str(ROOT / "packaging"))
    import build  # packaging/build.py: standard library only at import time

    names = []
    for dep in build.DEB_DEPENDS:
        names.append(dep.split("|")[0].split("(")[0].strip())
    return names


def missing_debian_packages(names: list[str]) -> list[str]:
    missing = []
    for name in names:
        result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name],
                                capture_output=True, text=True, check=False)
        if "install ok installed" not in result.stdout:
            missing.append(name)
    return missing


def install_system_packages() -> None:
    if not sys.platform.startswith("linux") or not shutil.which("apt-get"):
        print("not a Debian-like system: the .deb and makensis tests will be skipped "
              "or fail with an install hint", flush=True)
        return
    wanted = [pkg for tool, pkg in APT_TOOLS.items() if not shutil.which(tool)]
    wanted += missing_debian_packages(deb_depends())
    if not wanted:
        return
    if os.geteuid() != 0:
        sys.exit("these Debian packages are needed and this is not root: "
                 f"sudo apt-get install {' '.join(wanted)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *wanted], env=env)


def main() -> int:
    started = time.monotonic()
    run([sys.executable, ROOT / "tools" / "dev.py", "setup"])
    run([PY, "-m", "pip", "install", "--disable-pip-version-check", "-q",
         *packaging_requirements()])
    install_system_packages()
    run([PY, ROOT / "packaging" / "build.py", "--out", OUT, "--deb-compression", "gzip"])
    env = dict(os.environ, LLAMADESK_PACKAGING_OUT=str(OUT))
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    result = subprocess.run([str(PY), "-m", "pytest", "tests/packaging", "-m", "packaging",
                             *sys.argv[1:]], cwd=ROOT, env=env, check=False)
    print(f"packaging check: {time.monotonic() - started:.0f} s in all; artefacts in {OUT}",
          flush=True)
    return result.returncode


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode or 1)
