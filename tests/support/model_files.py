"""Model files for tests that need a second installed model."""

from __future__ import annotations

import shutil
from pathlib import Path


def variant_of(model: object, dest: Path) -> Path:
    """A second, different model file: the given one with one weight nibble changed
    (the registry refuses a file it already has)."""
    shutil.copyfile(str(model), dest)
    with dest.open("r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)[0]
        fh.seek(-1, 2)
        fh.write(bytes([last ^ 0x01]))
    return dest
