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
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text().strip() != want:
        run([PY, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--upgrade",
             "pip", "wheel"])
        print("installing LlamaDesk and its dependencies (the first time builds "
              "llama.cpp from source: several minutes)", flush=True)
        run([PY, "-m", "pip", "install", "--disable-pip-version-check", "-e", ".[dev]"])
        STAMP.write_text(want)
    run([PY, ROOT / "tools" / "fetch_bundled_model.py"])


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
        result = subprocess.run([str(PY), "-m", "pytest", *rest], cwd=ROOT, env=env,
                                check=False)
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
