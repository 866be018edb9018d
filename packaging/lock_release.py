#!/usr/bin/env python3
"""Regenerate packaging/requirements-release.txt: the release's pins, with hashes.

    .venv/bin/python packaging/lock_release.py     (needs PyPI; uv is in the dev extra)

1. ``uv pip compile --universal --generate-hashes`` of pyproject.toml with the
   ``packaging`` extra, for Python 3.11, with llama-cpp-python pinned by
   packaging/llama-pin.txt;
2. for each Mac (arm64, x86_64), ``pip install --dry-run --report`` of those pins as
   that platform, and the hashes of every wheel pip would pick that was built for a
   newer macOS than release_checks.MACOS_DEPLOYMENT_TARGET are removed, so that pip,
   which only takes wheels whose hash is listed, falls back to one that runs there
   (numpy publishes macosx_14_0 wheels next to macosx_11_0 ones).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import release_checks as rc

HEADER = """\
# What a release is built from: every Python package of the app and of the packaging
# tools, pinned with the hashes PyPI publishes, for Python 3.11 on Windows, macOS and
# Linux. The release workflow installs with --require-hashes against this file.
# llama-cpp-python is the sdist (llama.cpp is compiled from it on each runner).
# Wheels built for a newer macOS than the release supports are left out (their hashes
# are not listed, so pip takes an older build). Do not edit: regenerate with
#   .venv/bin/python packaging/lock_release.py
"""
MACS = ("macosx_15_0_arm64", "macosx_15_0_x86_64")
_OTHER_OS = re.compile(r"sys_platform == '(linux|win32|emscripten)'|python_full_version >= ")


def macos_tag(filename: str) -> tuple[int, int] | None:
    """The macOS version in a wheel's platform tag (the oldest it runs on)."""
    match = re.search(r"macosx_(\d+)_(\d+)_", filename)
    return (int(match[1]), int(match[2])) if match else None


def too_new(report: dict[str, object], target: str) -> set[str]:
    """sha256 of every wheel in a pip ``--report`` built for a macOS newer than target."""
    limit = tuple(int(p) for p in target.split("."))[:2]
    found = set()
    for item in report["install"]:  # type: ignore[attr-defined]
        info = item["download_info"]
        tag = macos_tag(info["url"].rsplit("/", 1)[-1])
        if tag and tag > limit:
            found.add(info["archive_info"]["hashes"]["sha256"])
    return found


def prune(lock: str, hashes: Iterable[str]) -> str:
    """``lock`` without the ``--hash`` lines of ``hashes``, continuations kept valid."""
    drop = set(hashes)
    out: list[str] = []
    for line in lock.splitlines():
        match = re.match(r"\s+--hash=sha256:([0-9a-f]{64})", line)
        if match and match[1] in drop:
            if not line.rstrip().endswith("\\") and out and out[-1].endswith(" \\"):
                out[-1] = out[-1][:-2]  # it ended the requirement: so does the one before
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def mac_only(lock: str) -> str:
    """The requirements a Mac installs (pip evaluates markers for this machine)."""
    blocks = re.split(r"(?m)^(?=[A-Za-z])", lock)
    return "".join(b for b in blocks if not _OTHER_OS.search(b.split("\n")[0]))


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, "-m", "uv", "pip", "compile", "--quiet",
                        "--universal", "--python-version", "3.11", "--generate-hashes",
                        "--no-header", "pyproject.toml",
                        "--extra", "packaging", "-c", "packaging/llama-pin.txt",
                        "-o", str(work / "lock.txt")], check=True, cwd=rc.ROOT)
        lock = (work / "lock.txt").read_text("utf-8")
        llama = rc.llama_requirement(work / "lock.txt")
        (work / "mac.txt").write_text(mac_only(lock.replace(llama, "")), "utf-8")
        drop: set[str] = set()
        for platform in MACS:
            report = work / f"{platform}.json"
            subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "-q",
                            "--ignore-installed", "--only-binary", ":all:", "--no-deps",
                            "--platform", platform, "--python-version", "3.11",
                            "--implementation", "cp", "--target", str(work / "t"),
                            "--report", str(report), "-r", str(work / "mac.txt")],
                           check=True)
            drop |= too_new(json.loads(report.read_text("utf-8")), rc.MACOS_DEPLOYMENT_TARGET)
        print(f"leaving out {len(drop)} wheels built for a macOS newer than "
              f"{rc.MACOS_DEPLOYMENT_TARGET}")
        rc.CONSTRAINTS.write_text(HEADER + prune(lock, drop), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
