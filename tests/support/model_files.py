"""Model files for tests that need a second installed model."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llamadesk.services.engine import LlamaEngine


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


def loaded_engine(model: Path, n_threads: int, n_ctx: int = 512) -> Iterator[LlamaEngine]:
    """A module fixture's body: the engine with ``model`` loaded, unloaded after."""
    from llamadesk.services.engine import LlamaEngine, LoadOptions

    engine = LlamaEngine(32 * 1024 * 1024)
    engine.load(model, LoadOptions(n_ctx=n_ctx, n_threads=n_threads), model_id="b")
    yield engine
    engine.unload()
