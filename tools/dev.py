#!/usr/bin/env python3
"""Developer entry point: set up the environment, then run the app, tests or benchmarks.

    python3 tools/dev.py run [ARGS...]   set up and launch the app (bundled model)
    python3 tools/dev.py test [PYTEST ARGS...]   set up, lint, type-check and run all tests
    python3 tools/dev.py bench [ARGS...] set up and run the benchmark suite
    python3 tools/dev.py setup           only set up

Set-up is idempotent: a virtual environment in .venv, the project installed in it
(editable, with its dev extras), and the bundled model fetched and verified. It is
redone only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import llama_build  # a sibling module, standard library only

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
STAMP = VENV / ".llamadesk-setup"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def run(cmd: list[str | os.PathLike[str]], **kwargs: object) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)  # type: ignore[call-overload]


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - runs on whatever python3 the user has
        sys.exit("LlamaDesk needs Python 3.11 or newer")
    if not PY.exists():
        print("creating virtual environment in .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    cmake_args = llama_build.cmake_args()
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()
                          + cmake_args.encode()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != want:
        run([PY, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--upgrade",
             "pip", "wheel"])
        print("installing LlamaDesk and its dependencies (the first time builds "
              "llama.cpp from source: several minutes)", flush=True)
        if cmake_args:
            install_llama_cpp(cmake_args)
        run([PY, "-m", "pip", "install", "--disable-pip-version-check", "-e", ".[dev]"])
        check_llama_version()
        STAMP.write_text(want)
    run([PY, ROOT / "tools" / "fetch_bundled_model.py"])


def llama_requirement() -> str:
    """The llama-cpp-python requirement from pyproject.toml."""
    import tomllib  # here: the version check in setup() must run first on an old Python

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return next(d for d in project["dependencies"] if d.startswith("llama-cpp-python"))


def check_llama_version() -> None:
    """Stop when the installed llama-cpp-python is not the exact version pyproject.toml
    pins (a wheel built earlier for another pin, say): the app would refuse to start."""
    pinned = llama_requirement().partition("==")[2].strip()
    found = subprocess.run(
        [str(PY), "-c", "from importlib.metadata import version; "
         "print(version('llama-cpp-python'))"],
        capture_output=True, text=True, check=False).stdout.strip()
    if not pinned or found != pinned:
        sys.exit(f"llama-cpp-python {found or '(missing)'} is installed, but pyproject.toml "
                 f"pins {llama_requirement()!r}: pin the exact tested version, and remove "
                 f"{VENV} to set up again")


def install_llama_cpp(cmake_args: str) -> None:
    """Build llama-cpp-python with ``cmake_args`` (once per requirement and options, kept
    in a cache of our own) and install it. pip's own wheel cache would hand back a build
    made with other options, since it does not key wheels by CMAKE_ARGS."""
    requirement = llama_requirement()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    wheels = cache / "llamadesk-dev" / f"llama-{llama_build.build_key(requirement, cmake_args)}"
    built = sorted(wheels.glob("llama_cpp_python-*.whl"))
    if not built:
        print(f"building llama.cpp with CMAKE_ARGS={cmake_args!r}", flush=True)
        run([PY, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-deps",
             "--no-cache-dir", "--no-binary", "llama-cpp-python", "-w", wheels, requirement],
            env={**os.environ, "CMAKE_ARGS": cmake_args})
        built = sorted(wheels.glob("llama_cpp_python-*.whl"))
    run([PY, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps",
         "--force-reinstall", built[-1]])


#: How ``test`` runs pytest (``-n 0`` after ``test`` runs it in one process).
PYTEST_WORKERS = ["-n", "2", "--dist", "loadfile"]


def main() -> None:
    args = sys.argv[1:] or ["run"]
    command, rest = args[0], args[1:]
    setup()
    env = dict(os.environ)
    if command == "setup":
        return
    if command == "run":
        os.execve(str(PY), [str(PY), "-m", "llamadesk", *rest], env)
    if command == "test":
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        run([PY, "-m", "ruff", "check", "app", "tests", "tools", "bench"], env=env)
        run([PY, "-m", "mypy"], env=env)
        run([BIN / "lint-imports"], env=env)
        # Two pytest-xdist workers, one test file each at a time (a module's model and
        # servers are set up once): the suite alone keeps one of two cores busy.
        result = subprocess.run([str(PY), "-m", "pytest", *PYTEST_WORKERS, *rest], cwd=ROOT,
                                env=env, check=False)
        sys.exit(result.returncode)
    if command == "bench":
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
        os.execve(str(PY), [str(PY), str(ROOT / "bench" / "run.py"), *rest], env)
    sys.exit(f"unknown command {command!r}: use run, test, bench or setup")


if __name__ == "__main__":
    try:
        main()
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode or 1)
