"""One installed model as the registry records it, and the small helpers that name it.

Kept apart from ``core.registry`` (which reads and writes ``registry.json``) so the
types can be named without the file handling; ``core.registry`` re-exports them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from llamadesk.core.chat_formats import DEFAULT_FORMAT
from llamadesk.core.fit import ModelShape
from llamadesk.core.licences import (
    LicenceNotAcceptedError,
)

REGISTRY_FILE = "registry.json"
IMPORTED_DIR = "imported"
COPY_CHUNK = 4 << 20

#: Progress of a long file operation: bytes done, bytes in all.
CopyProgress = Callable[[int, int], None]


class RegistryError(Exception):
    """A registry operation was refused or failed; ``str()`` says why."""


class LicenceRequiredError(RegistryError):
    """An import needs a licence the user has not accepted yet (``licence``): ask, call
    ``LicenceAcceptances.accept(licence)``, and import again."""

    def __init__(self, cause: LicenceNotAcceptedError) -> None:
        super().__init__(str(cause))
        self.licence = cause.licence


class ModelSource(StrEnum):
    """How a model came to be installed."""

    BUNDLED = "bundled"
    DOWNLOADED = "downloaded"
    IMPORTED = "imported"  # copied into the models folder
    LINKED = "linked"  # used where it is; removing it only forgets it


@dataclass(frozen=True)
class ModelEntry:
    """One installed model."""

    id: str
    name: str
    path: str
    size: int
    quantisation: str | None
    sha256: str | None
    source: ModelSource
    chat_format: str  # fallback for files without their own template
    context_length: int | None
    architecture: str | None = None
    parameter_count: int | None = None
    has_chat_template: bool = False
    repo: str | None = None
    filename: str | None = None
    commit: str | None = None
    catalog_id: str | None = None
    licence_id: str | None = None
    licence_url: str | None = None
    block_count: int | None = None
    head_count_kv: int | None = None
    head_dim: int | None = None
    added_at: float = field(default=0.0, compare=False)

    @property
    def read_only(self) -> bool:
        """The bundled model cannot be removed."""
        return self.source == ModelSource.BUNDLED

    @property
    def file(self) -> Path:
        """The model file."""
        return Path(self.path)

    @property
    def folder(self) -> Path:
        """The folder to show for "show in folder"."""
        return Path(self.path).parent

    @property
    def available(self) -> bool:
        """Whether the file is still there."""
        return Path(self.path).is_file()

    @property
    def shape(self) -> ModelShape | None:
        """The numbers for the fit estimate, if known."""
        if self.block_count and self.head_count_kv and self.head_dim:
            return ModelShape(self.block_count, self.head_count_kv, self.head_dim)
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["source"] = str(self.source)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelEntry:
        """From ``to_dict`` output; unknown keys (from a newer app) are ignored."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["source"] = ModelSource(values["source"])
        return cls(**values)


def slug(text: str) -> str:
    """A lower-case id made of letters, digits, dots, dashes and underscores."""
    return re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-._") or "model"


def guess_chat_format(name: str) -> str:
    """A fallback chat format from a file or model name, for files without a template."""
    lower = name.lower()
    for needles, fmt in (
        (("llama-2", "llama2", "codellama"), "llama-2"),
        (("vicuna", "wizardlm"), "vicuna"),
        (("zephyr", "tinyllama"), "zephyr"),
        (("mistral", "mixtral"), "mistral-instruct"),
        (("alpaca", "nous-hermes-llama"), "alpaca"),
    ):
        if any(n in lower for n in needles):
            return fmt
    return DEFAULT_FORMAT


def sha256_file(path: Path, progress: CopyProgress | None = None) -> str:
    """The sha256 of a file, read in large chunks."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(COPY_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return digest.hexdigest()
