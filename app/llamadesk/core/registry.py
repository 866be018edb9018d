"""The installed models: the bundled one, downloads and imports.

Kept as ``registry.json`` in the models folder, next to the files it describes, so a
models folder moved or backed up whole keeps its registry. Writes are atomic (temp file
and ``os.replace``) and serialised by a lock file, so the app and the ``llamadesk
models`` command can both use it. The bundled model is not stored: it is always listed
first, read-only, from its manifest (a chat format chosen for it is kept in the
registry's ``overrides``).

Importing a file whose own metadata names it a Llama 2 derivative asks for the Llama 2
licence first, as a download does (``LicenceRequiredError``).

Layout of the models folder::

    models/
      registry.json
      <owner>__<repo>/<file>.gguf     downloads, one folder per Hub repo
      imported/<file>.gguf            imported copies
      .partial/                       downloads in progress (see core.downloads)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from filelock import FileLock

from llamadesk.core import bundled
from llamadesk.core.catalog import CatalogEntry, ModelCatalog
from llamadesk.core.chat_formats import FALLBACK_FORMATS
from llamadesk.core.fit import ModelShape
from llamadesk.core.licences import (
    ACCEPTANCES_FILE,
    LicenceAcceptances,
    LicenceNotAcceptedError,
    licence_from_gguf,
)
from llamadesk.core.model_entry import (
    COPY_CHUNK,
    IMPORTED_DIR,
    REGISTRY_FILE,
    CopyProgress,
    LicenceRequiredError,
    ModelEntry,
    ModelSource,
    RegistryError,
    guess_chat_format,
    sha256_file,
    slug,
)
from llamadesk.core.paths import AppPaths, file_identity

if TYPE_CHECKING:  # the GGUF reader is imported when a file is imported
    from llamadesk.core.gguf_validate import GGUFMetadata

log = logging.getLogger(__name__)

__all__ = [  # the record types live in core.model_entry; importable from here too
    "IMPORTED_DIR",
    "REGISTRY_FILE",
    "CopyProgress",
    "LicenceRequiredError",
    "ModelEntry",
    "ModelRegistry",
    "ModelSource",
    "RegistryError",
    "guess_chat_format",
    "sha256_file",
    "slug",
]


class ModelRegistry:
    """The installed models, persisted in ``<models>/registry.json``."""

    def __init__(self, paths: AppPaths, catalog: ModelCatalog | None = None,
                 licences: LicenceAcceptances | None = None) -> None:
        self.paths = paths
        self.catalog = catalog
        self.licences = licences or LicenceAcceptances(paths.config_dir / ACCEPTANCES_FILE)
        self.file = paths.models_dir / REGISTRY_FILE
        self._thread_lock = threading.RLock()
        #: The stored entries and overrides last read, keyed by the file's identity.
        self._last: tuple[tuple[int, int, int, int] | None, list[ModelEntry],
                          dict[str, dict[str, Any]]] | None = None

    # -- storage ---------------------------------------------------------------------
    def _file_lock(self) -> FileLock:
        self.paths.models_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.file) + ".lock", timeout=30)

    def _read_all(self) -> tuple[list[ModelEntry], dict[str, dict[str, Any]]]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return [], {}
        except (OSError, ValueError) as exc:
            raise RegistryError(f"The model registry {self.file} is unreadable ({exc}). Move "
                                "it aside and import your models again.") from exc
        entries = []
        for item in data.get("models", []):
            try:
                entries.append(ModelEntry.from_dict(item))
            except (TypeError, ValueError, KeyError) as exc:
                log.warning("skipping a damaged registry entry (%s)", exc)
        overrides = data.get("overrides")
        return entries, overrides if isinstance(overrides, dict) else {}

    def _read(self) -> list[ModelEntry]:
        return self._read_all()[0]

    def _stored(self) -> tuple[list[ModelEntry], dict[str, dict[str, Any]]]:
        """The stored entries and overrides, read under the lock only when the file
        changed since the last read (a ``stat``, against the lock file's open and lock
        and the parse: ~1 ms at every send). Writers replace the file whole, so a new
        write is a new identity; the lock keeps a read from meeting a half-made one."""
        last, now = self._last, self._identity()
        if last is not None and now is not False and last[0] == now:
            return list(last[1]), last[2]
        with self._thread_lock, self._file_lock():
            key = self._identity()
            stored, overrides = self._read_all()
        self._last = None if key is False else (key, stored, overrides)
        return list(stored), overrides

    def _identity(self) -> tuple[int, int, int, int] | Literal[False] | None:
        """The registry file's identity, or False when it cannot be looked at (no
        permission, a loop of links): then it is read, which says why, and nothing is
        kept."""
        try:
            return file_identity(self.file)
        except OSError:
            return False

    def _write(self, entries: list[ModelEntry],
               overrides: dict[str, dict[str, Any]] | None = None) -> None:
        if overrides is None:
            overrides = self._read_all()[1]
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": 1, "models": [e.to_dict() for e in entries],
                                   "overrides": overrides}, indent=2), encoding="utf-8")
        os.replace(tmp, self.file)
        self._last = None

    # -- queries ---------------------------------------------------------------------
    def bundled_entry(self) -> ModelEntry | None:
        """The model that ships with the app (even if its file is missing), or None
        if its manifest cannot be read."""
        try:
            shipped = bundled.manifest()
        except (OSError, ValueError, KeyError) as exc:
            log.warning("cannot read the bundled model manifest: %s", exc)
            return None
        hint = self.catalog.get(shipped.id) if self.catalog else None
        shape = ModelShape.from_hint(hint.architecture) if hint else None
        return ModelEntry(
            id=shipped.id, name=shipped.name, path=str(shipped.path), size=shipped.size,
            quantisation=hint.default_quant if hint else None, sha256=shipped.sha256,
            source=ModelSource.BUNDLED, chat_format=shipped.chat_format,
            context_length=shipped.context_length, architecture="llama",
            parameter_count=hint.parameters if hint else None, has_chat_template=True,
            repo=hint.repo if hint else None, filename=shipped.file,
            catalog_id=shipped.id if hint else None, licence_id=shipped.licence_id,
            licence_url=hint.licence.url if hint else None,
            block_count=shape.block_count if shape else None,
            head_count_kv=shape.head_count_kv if shape else None,
            head_dim=shape.head_dim if shape else None,
        )

    def models(self) -> list[ModelEntry]:
        """The bundled model first, then the others in the order they were added."""
        stored, overrides = self._stored()
        shipped = self.bundled_entry()
        if shipped is not None:
            chosen = overrides.get(shipped.id, {}).get("chat_format")
            if chosen in FALLBACK_FORMATS:
                shipped = replace(shipped, chat_format=chosen)
        return ([shipped] if shipped else []) + stored

    def set_chat_format(self, model_id: str, chat_format: str) -> ModelEntry:
        """Use ``chat_format`` for this model's prompts when it has no usable template of
        its own (or its own broke): the choice in the model's settings. Returns the
        updated entry; the model's next load uses it."""
        if chat_format not in FALLBACK_FORMATS:
            raise RegistryError(f"unknown chat format {chat_format!r} (known: "
                                f"{', '.join(sorted(FALLBACK_FORMATS))})")
        shipped = self.bundled_entry()
        with self._thread_lock, self._file_lock():
            entries, overrides = self._read_all()
            if shipped is not None and model_id == shipped.id:
                overrides[model_id] = {**overrides.get(model_id, {}), "chat_format": chat_format}
                self._write(entries, overrides)
                updated = replace(shipped, chat_format=chat_format)
            else:
                index = next((i for i, e in enumerate(entries) if e.id == model_id), None)
                if index is None:
                    raise RegistryError(f"No installed model {model_id!r}.")
                updated = entries[index] = replace(entries[index], chat_format=chat_format)
                self._write(entries, overrides)
        log.info("model %s uses the %s chat format", model_id, chat_format)
        return updated

    def get(self, model_id: str) -> ModelEntry | None:
        """The installed model with this id, or None."""
        return next((e for e in self.models() if e.id == model_id), None)

    def find_by_sha256(self, sha256: str) -> ModelEntry | None:
        """An installed model with exactly these bytes, or None."""
        return next((e for e in self.models() if e.sha256 == sha256), None)

    # -- changes ---------------------------------------------------------------------
    def _unique_id(self, wanted: str, taken: set[str]) -> str:
        candidate, n = wanted, 2
        while candidate in taken:
            candidate, n = f"{wanted}-{n}", n + 1
        return candidate

    def add(self, entry: ModelEntry) -> ModelEntry:
        """Register ``entry`` (its id made unique). A model already registered at the same
        path is replaced, so downloading a file again does not list it twice."""
        if entry.source == ModelSource.BUNDLED:
            raise RegistryError("the bundled model is always listed; it cannot be added")
        with self._thread_lock, self._file_lock():
            entries = self._read()
            same_path = next((e for e in entries if e.path == entry.path), None)
            if same_path is not None:
                entries.remove(same_path)
                entry = replace(entry, id=same_path.id)
            else:
                shipped = self.bundled_entry()
                taken = {e.id for e in entries} | ({shipped.id} if shipped else set())
                entry = replace(entry, id=self._unique_id(slug(entry.id), taken))
            entry = replace(entry, added_at=entry.added_at or time.time())
            entries.append(entry)
            self._write(entries)
        log.info("registered model %s (%s)", entry.id, entry.source)
        return entry

    def remove(self, model_id: str, delete_file: bool = True) -> ModelEntry:
        """Forget a model and, for a download or an imported copy, delete its file.

        A linked file is never deleted (it is the user's, outside our folder); nor is any
        file outside the models folder, whatever the registry says.
        """
        shipped = self.bundled_entry()
        if shipped and model_id == shipped.id:
            raise RegistryError("The bundled model ships with LlamaDesk and cannot be removed.")
        with self._thread_lock, self._file_lock():
            entries = self._read()
            entry = next((e for e in entries if e.id == model_id), None)
            if entry is None:
                raise RegistryError(f"No installed model {model_id!r}.")
            entries.remove(entry)
            self._write(entries)
        if delete_file and entry.source != ModelSource.LINKED:
            self._delete_owned_file(entry.file)
        log.info("removed model %s", entry.id)
        return entry

    def _delete_owned_file(self, path: Path) -> None:
        models = self.paths.models_dir.resolve()
        try:
            resolved = path.resolve()
        except OSError:
            return
        if not resolved.is_relative_to(models):
            log.warning("not deleting %s: it is outside the models folder", path)
            return
        try:
            resolved.unlink(missing_ok=True)
        except OSError as exc:
            raise RegistryError(f"The model was removed from the list, but its file "
                                f"{path} could not be deleted: {exc.strerror}") from exc
        folder = resolved.parent
        if folder != models and not any(folder.iterdir()):
            folder.rmdir()

    # -- registering files -----------------------------------------------------------
    def entry_for_file(
        self,
        path: Path,
        meta: GGUFMetadata,
        sha256: str,
        source: ModelSource,
        *,
        name: str | None = None,
        chat_format: str | None = None,
        catalog_entry: CatalogEntry | None = None,
        repo: str | None = None,
        filename: str | None = None,
        commit: str | None = None,
    ) -> ModelEntry:
        """A registry entry for a validated file (not yet added)."""
        if catalog_entry is None and self.catalog is not None and repo:
            catalog_entry = self.catalog.for_repo(repo)
        fmt = chat_format or (catalog_entry.chat_format if catalog_entry else None) \
            or guess_chat_format(path.name)
        if fmt not in FALLBACK_FORMATS:
            raise RegistryError(f"unknown chat format {fmt!r} (known: "
                                f"{', '.join(sorted(FALLBACK_FORMATS))})")
        shape = ModelShape.from_metadata(meta)
        derived = licence_from_gguf(meta)
        stem = path.name.removesuffix(".gguf")
        display = name or (f"{catalog_entry.name} ({meta.quantisation})"
                           if catalog_entry and meta.quantisation else stem)
        wanted_id = (f"{catalog_entry.id}-{meta.quantisation}"
                     if catalog_entry and meta.quantisation else stem)
        return ModelEntry(
            id=slug(wanted_id), name=display, path=str(path), size=path.stat().st_size,
            quantisation=meta.quantisation, sha256=sha256, source=source, chat_format=fmt,
            context_length=meta.context_length or (catalog_entry.context_length
                                                   if catalog_entry else None),
            architecture=meta.architecture, parameter_count=meta.parameter_count,
            has_chat_template=bool(meta.chat_template), repo=repo, filename=filename,
            commit=commit, catalog_id=catalog_entry.id if catalog_entry else None,
            licence_id=catalog_entry.licence.id if catalog_entry else (
                derived.id if derived else meta.licence),
            licence_url=catalog_entry.licence.url if catalog_entry else (
                derived.url if derived else None),
            block_count=shape.block_count if shape else None,
            head_count_kv=shape.head_count_kv if shape else None,
            head_dim=shape.head_dim if shape else None,
        )

    def import_file(
        self,
        source: Path,
        *,
        link: bool = False,
        name: str | None = None,
        chat_format: str | None = None,
        progress: CopyProgress | None = None,
    ) -> ModelEntry:
        """Validate a local GGUF file and register it: copied into the models folder, or
        (``link``) used where it is.

        Raises RegistryError with the reason for a missing, invalid, split or duplicate
        file; nothing is copied or registered then.
        """
        # Here, not at import: the window lists models at start-up without reading GGUFs.
        from llamadesk.core.gguf_validate import GGUFValidationError, read_metadata

        source = Path(source).expanduser()
        if not source.is_file():
            raise RegistryError(f"No file at {source}.")
        try:
            meta = read_metadata(source)
        except GGUFValidationError as exc:
            raise RegistryError(f"Cannot import: {exc}") from exc
        try:
            self.licences.require(licence_from_gguf(meta))
        except LicenceNotAcceptedError as exc:
            raise LicenceRequiredError(exc) from exc
        if meta.split_count and meta.split_count > 1:
            raise RegistryError(f"Cannot import {source.name}: it is one part of a model split "
                                f"into {meta.split_count} files; LlamaDesk uses single-file "
                                "models.")
        source = source.resolve()
        if link:
            digest = sha256_file(source, progress)
            self._refuse_duplicate(digest)
            entry = self.entry_for_file(source, meta, digest, ModelSource.LINKED, name=name,
                                        chat_format=chat_format)
            return self.add(entry)
        dest = self._free_name(self.paths.models_dir / IMPORTED_DIR, source.name)
        digest = self._copy(source, dest, progress)
        try:
            self._refuse_duplicate(digest)
            copied = read_metadata(dest)  # the copy, not only the source, must be whole
            entry = self.entry_for_file(dest, copied, digest, ModelSource.IMPORTED, name=name,
                                        chat_format=chat_format)
            return self.add(entry)
        except (RegistryError, GGUFValidationError) as exc:
            dest.unlink(missing_ok=True)
            raise RegistryError(str(exc)) from exc

    def _refuse_duplicate(self, digest: str) -> None:
        existing = self.find_by_sha256(digest)
        if existing is not None:
            raise RegistryError(f"This file is already installed as {existing.name} "
                                f"(id {existing.id}).")

    @staticmethod
    def _free_name(folder: Path, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).lstrip(".") or "model.gguf"
        if not safe.lower().endswith(".gguf"):
            safe += ".gguf"
        candidate, n = folder / safe, 2
        while candidate.exists():
            candidate, n = folder / f"{safe.removesuffix('.gguf')}-{n}.gguf", n + 1
        return candidate

    def _copy(self, source: Path, dest: Path, progress: CopyProgress | None) -> str:
        dest.parent.mkdir(parents=True, exist_ok=True)
        total = source.stat().st_size
        free = shutil.disk_usage(dest.parent).free
        if free < total:
            raise RegistryError(f"Not enough disk space to copy {source.name}: it needs "
                                f"{total:,} bytes and {free:,} are free.")
        tmp = dest.with_name(dest.name + ".importing")
        digest = hashlib.sha256()
        done = 0
        try:
            with source.open("rb") as src, tmp.open("wb") as out:
                while chunk := src.read(COPY_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise RegistryError(f"Cannot copy {source.name}: {exc.strerror or exc}") from exc
        return digest.hexdigest()
