"""The curated model catalog (resources/catalog.json): what the Models page offers first,
and the embedding models that index document collections (``embedding_models``: each
with its vector dimension and the prefixes it was trained with).

Loading checks the file against resources/catalog.schema.json and then the rules a
schema cannot say: unique ids, a known fallback chat format, quantisations that match
the file names, the bundled entry matching the bundled model's manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llamadesk.core import bundled
from llamadesk.core.chat_formats import FALLBACK_FORMATS
from llamadesk.core.paths import resources_dir
from llamadesk.core.quant import parse_quantisation
from llamadesk.core.schema import check

CATALOG_FILE = "catalog.json"
SCHEMA_FILE = "catalog.schema.json"


class CatalogError(Exception):
    """The catalog file is unreadable or breaks its schema or rules; or a lookup failed."""


@dataclass(frozen=True)
class Licence:
    """A model's licence, and whether the user must accept it before the first download."""

    id: str
    name: str
    url: str
    requires_acceptance: bool
    acceptable_use_url: str | None = None


@dataclass(frozen=True)
class ArchitectureHint:
    """The shape numbers the fit estimate needs when no GGUF header is at hand yet."""

    block_count: int
    head_count: int
    head_count_kv: int
    embedding_length: int


@dataclass(frozen=True)
class CatalogFile:
    """One quantisation of a catalog model: a file in its Hub repo."""

    quant: str
    file: str
    size: int  # a hint; the Hub's metadata is the truth


@dataclass(frozen=True)
class CatalogEntry:
    """One curated model."""

    id: str
    name: str
    family: str
    base_model: str
    repo: str
    revision: str
    parameters: int
    context_length: int
    chat_format: str
    architecture: ArchitectureHint
    licence: Licence
    default_quant: str
    files: tuple[CatalogFile, ...]
    description: str
    bundled: bool = False

    @property
    def quants(self) -> tuple[str, ...]:
        """The quantisations offered, in catalog order."""
        return tuple(f.quant for f in self.files)

    def file(self, quant: str | None = None) -> CatalogFile:
        """The file for ``quant`` (case-insensitive; None: the default quantisation)."""
        wanted = (quant or self.default_quant).upper()
        for item in self.files:
            if item.quant == wanted:
                return item
        raise CatalogError(f"{self.name} has no {wanted} file; choose one of "
                           f"{', '.join(self.quants)}")


@dataclass(frozen=True)
class EmbeddingEntry:
    """One curated embedding model: its files, vector dimension, the prefixes put before
    passages and questions (the model was trained with them; without, retrieval gets
    worse), and the page its repo and licence were confirmed on."""

    id: str
    name: str
    base_model: str
    repo: str
    revision: str
    parameters: int
    context_length: int
    dimension: int
    document_prefix: str
    query_prefix: str
    licence: Licence
    default_quant: str
    files: tuple[CatalogFile, ...]
    source: str
    description: str

    def matches(self, model_id: str) -> bool:
        """Whether an installed model's id or file name is this entry's (by its id or
        the name of its repo)."""
        lowered = model_id.lower()
        return self.id in lowered or self.repo.split("/")[1].lower() in lowered


@dataclass(frozen=True)
class ModelCatalog:
    """All catalog entries, in display order, and the embedding models."""

    entries: tuple[CatalogEntry, ...]
    embedding_models: tuple[EmbeddingEntry, ...] = ()

    @classmethod
    def load(cls, path: Path | None = None, schema_path: Path | None = None) -> ModelCatalog:
        """Read and check the catalog (default: the one in the resources folder)."""
        path = path or resources_dir() / CATALOG_FILE
        schema_path = schema_path or resources_dir() / SCHEMA_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            schema = json.loads(schema_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CatalogError(f"cannot read the model catalog {path.name}: {exc}") from exc
        problems = validate_catalog(data, schema)
        if problems:
            raise CatalogError(f"the model catalog {path.name} is invalid:\n  "
                               + "\n  ".join(problems))
        return cls(tuple(_entry(m) for m in data["models"]),
                   tuple(_embedding(m) for m in data.get("embedding_models", [])))

    def embedding_for(self, model_id: str) -> EmbeddingEntry | None:
        """The embedding entry an installed model's id names, or None."""
        return next((e for e in self.embedding_models if e.matches(model_id)), None)

    def get(self, entry_id: str) -> CatalogEntry | None:
        """The entry with this id, or None."""
        return next((e for e in self.entries if e.id == entry_id), None)

    def for_repo(self, repo: str) -> CatalogEntry | None:
        """The entry whose Hub repo is ``repo`` (case-insensitive, as the Hub is), or None."""
        lower = repo.lower()
        return next((e for e in self.entries if e.repo.lower() == lower), None)

    def resolve(self, spec: str) -> tuple[CatalogEntry, CatalogFile]:
        """Turn ``ID`` or ``ID:QUANT`` into an entry and one of its files."""
        entry_id, _, quant = spec.partition(":")
        entry = self.get(entry_id)
        if entry is None:
            raise CatalogError(f"no catalog model {entry_id!r}; known: "
                               f"{', '.join(e.id for e in self.entries)}")
        return entry, entry.file(quant or None)


def embedding_entry_for(model_id: str) -> EmbeddingEntry | None:
    """The shipped catalog's embedding entry for an installed model (None: not in the
    catalog, or the catalog is unreadable; the model's name then decides its prefixes)."""
    try:
        return ModelCatalog.load().embedding_for(model_id)
    except CatalogError:
        return None


def _licence(lic: dict[str, Any]) -> Licence:
    return Licence(id=lic["id"], name=lic["name"], url=lic["url"],
                   requires_acceptance=bool(lic["requires_acceptance"]),
                   acceptable_use_url=lic.get("acceptable_use_url"))


def _files(data: dict[str, Any]) -> tuple[CatalogFile, ...]:
    return tuple(CatalogFile(f["quant"], f["file"], int(f["size"])) for f in data["files"])


def _embedding(data: dict[str, Any]) -> EmbeddingEntry:
    return EmbeddingEntry(
        id=data["id"], name=data["name"], base_model=data["base_model"], repo=data["repo"],
        revision=data.get("revision", "main"), parameters=int(data["parameters"]),
        context_length=int(data["context_length"]), dimension=int(data["dimension"]),
        document_prefix=data["document_prefix"], query_prefix=data["query_prefix"],
        licence=_licence(data["licence"]), default_quant=data["default_quant"],
        files=_files(data), source=data["source"], description=data["description"])


def _entry(data: dict[str, Any]) -> CatalogEntry:
    return CatalogEntry(
        id=data["id"], name=data["name"], family=data["family"],
        base_model=data["base_model"], repo=data["repo"],
        revision=data.get("revision", "main"), parameters=int(data["parameters"]),
        context_length=int(data["context_length"]), chat_format=data["chat_format"],
        architecture=ArchitectureHint(**data["architecture"]),
        licence=_licence(data["licence"]), default_quant=data["default_quant"],
        files=_files(data),
        description=data["description"], bundled=bool(data.get("bundled", False)),
    )


def validate_catalog(data: Any, schema: dict[str, Any]) -> list[str]:
    """Every problem with the catalog ``data``: schema first, then the cross-field rules."""
    problems = check(data, schema)
    if problems:
        return problems
    seen: set[str] = set()
    bundled_entries = 0
    for model in [*data["models"], *data.get("embedding_models", [])]:
        where = f"model {model['id']!r}"
        if model["id"] in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(model["id"])
        if "chat_format" in model and model["chat_format"] not in FALLBACK_FORMATS:
            problems.append(f"{where}: unknown chat format {model['chat_format']!r}")
        problems += _check_files(model, where)
        if model.get("bundled"):
            bundled_entries += 1
            problems += _check_bundled(model)
    if bundled_entries != 1:
        problems.append(f"exactly one entry must be marked bundled (found {bundled_entries})")
    return problems


def _check_files(model: dict[str, Any], where: str) -> list[str]:
    problems = []
    quants = [f["quant"] for f in model["files"]]
    if len(set(quants)) != len(quants):
        problems.append(f"{where}: a quantisation is listed twice")
    if model["default_quant"] not in quants:
        problems.append(f"{where}: default_quant {model['default_quant']} has no file")
    for item in model["files"]:
        named = parse_quantisation(item["file"])
        if named != item["quant"]:
            problems.append(f"{where}: file {item['file']} looks like {named}, "
                            f"not {item['quant']}")
    return problems


def _check_bundled(model: dict[str, Any]) -> list[str]:
    try:
        shipped = bundled.manifest()
    except (OSError, ValueError, KeyError) as exc:
        return [f"cannot read the bundled model manifest: {exc}"]
    files = {f["file"]: f for f in model["files"]}
    problems = []
    if model["id"] != shipped.id:
        problems.append(f"bundled entry id {model['id']!r} differs from the manifest's "
                        f"{shipped.id!r}")
    if shipped.file not in files:
        problems.append(f"bundled entry lists no file {shipped.file}")
    elif files[shipped.file]["size"] != shipped.size:
        problems.append(f"bundled entry size differs from the manifest's {shipped.size}")
    return problems
