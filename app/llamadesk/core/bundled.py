"""The model that ships with the app: its manifest and where its file is."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamadesk.core.paths import bundled_models_dir, file_identity, resources_dir

GGUF_MAGIC = b"GGUF"
FIX_HINT = ("Run the set-up again (`make run`, or `python3 tools/dev.py setup`), which "
            "fetches and verifies it; an installed app should be reinstalled.")


class BundledModelError(Exception):
    """The bundled model is missing or is not the file we ship."""


@dataclass(frozen=True)
class BundledModel:
    """The manifest of the bundled model (resources/bundled-model.json)."""

    id: str
    name: str
    file: str
    size: int
    sha256: str
    licence_id: str
    chat_format: str
    context_length: int

    @property
    def path(self) -> Path:
        """Where the file is expected."""
        return bundled_models_dir() / self.file


#: The manifest last read, keyed by its file's path and identity (``file_identity``).
_read: tuple[tuple[object, ...], BundledModel] | None = None


def manifest() -> BundledModel:
    """The bundled model's manifest. Read again only when its file changed (each send
    asks for it several times; a ``stat`` is cheaper than reading and parsing it)."""
    global _read
    path = resources_dir() / "bundled-model.json"
    key = (str(path), file_identity(path))
    if _read is not None and _read[0] == key:
        return _read[1]
    model = _parse(json.loads(path.read_text(encoding="utf-8")))
    _read = (key, model)
    return model


def _parse(data: dict[str, Any]) -> BundledModel:
    return BundledModel(
        id=data["id"], name=data["name"], file=data["file"], size=int(data["size"]),
        sha256=data["sha256"], licence_id=data["licence"]["id"],
        chat_format=data.get("chat_format", "chatml"),
        context_length=int(data.get("context_length", 2048)),
    )


def locate(verify_hash: bool = False) -> BundledModel:
    """Return the bundled model if its file is in place, else raise BundledModelError
    with a message that says how to fix it. The quick check (size and GGUF magic) runs
    at every start; ``verify_hash`` also compares the sha256 (about a second)."""
    model = manifest()
    path = model.path
    if not path.is_file():
        raise BundledModelError(f"The bundled model is missing ({path}). {FIX_HINT}")
    size = path.stat().st_size
    with path.open("rb") as fh:
        magic = fh.read(4)
    if size != model.size or magic != GGUF_MAGIC:
        raise BundledModelError(
            f"The bundled model at {path} is damaged (size {size:,} bytes, expected "
            f"{model.size:,}). {FIX_HINT}")
    if verify_hash:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != model.sha256:
            raise BundledModelError(f"The bundled model at {path} failed its checksum. {FIX_HINT}")
    return model
