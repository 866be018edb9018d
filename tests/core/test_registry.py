"""The installed-models registry: the bundled model, imports (copied or linked), removal."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from llamadesk.core import bundled
from llamadesk.core.catalog import ModelCatalog
from llamadesk.core.licences import LicenceAcceptances, acceptance_text
from llamadesk.core.paths import AppPaths
from llamadesk.core.registry import (
    ModelRegistry,
    ModelSource,
    RegistryError,
    guess_chat_format,
    slug,
)


@pytest.fixture
def registry(paths: AppPaths) -> ModelRegistry:
    return ModelRegistry(paths, ModelCatalog.load())


@pytest.fixture
def model_copy(tmp_path: Path, bundled_model_path: Path) -> Path:
    """The real model under a user's file name, somewhere outside the app's folders, with
    one weight changed so it is not a duplicate of the bundled model."""
    target = tmp_path / "downloads" / "my-llama-2-chat.Q4_1.gguf"
    target.parent.mkdir()
    data = bytearray(bundled_model_path.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def test_bundled_model_is_listed_first_and_read_only(registry: ModelRegistry,
                                                    bundled_model_path: Path) -> None:
    (shipped,) = registry.models()
    assert shipped.id == bundled.manifest().id
    assert shipped.source == ModelSource.BUNDLED and shipped.read_only and shipped.available
    assert shipped.shape is not None and shipped.licence_id == "Apache-2.0"
    with pytest.raises(RegistryError, match="ships with LlamaDesk and cannot be removed"):
        registry.remove(shipped.id)


def test_import_copies_validates_and_registers(registry: ModelRegistry, model_copy: Path,
                                               paths: AppPaths) -> None:
    progress: list[tuple[int, int]] = []
    entry = registry.import_file(model_copy, progress=lambda d, t: progress.append((d, t)))
    assert entry.source == ModelSource.IMPORTED
    assert Path(entry.path) == paths.models_dir / "imported" / model_copy.name
    assert entry.id == "my-llama-2-chat.q4_1"
    assert entry.quantisation == "Q4_1" and entry.context_length == 8192
    assert entry.chat_format == "llama-2"  # guessed from the name, for template-less use
    assert entry.architecture == "llama" and entry.has_chat_template
    assert progress[-1] == (model_copy.stat().st_size, model_copy.stat().st_size)
    assert model_copy.exists()  # a copy, the original untouched
    assert ModelRegistry(paths).get(entry.id) == entry
    assert entry.folder == paths.models_dir / "imported"  # "show in folder"

    with pytest.raises(RegistryError, match="already installed as"):
        registry.import_file(model_copy, link=True)

    registry.remove(entry.id)
    assert not Path(entry.path).exists() and model_copy.exists()
    assert registry.get(entry.id) is None


def test_import_link_uses_the_file_in_place(registry: ModelRegistry, model_copy: Path) -> None:
    entry = registry.import_file(model_copy, link=True, name="My Llama", chat_format="vicuna")
    assert entry.source == ModelSource.LINKED and entry.path == str(model_copy.resolve())
    assert (entry.name, entry.chat_format) == ("My Llama", "vicuna")
    registry.remove(entry.id)
    assert model_copy.exists()  # the user's file is never deleted


@pytest.mark.parametrize("damage", ["truncate", "magic", "string-length", "tensor-extent"])
def test_damaged_files_are_refused_on_import(registry: ModelRegistry, model_copy: Path,
                                             paths: AppPaths, damage: str) -> None:
    data = bytearray(model_copy.read_bytes())
    if damage == "truncate":
        del data[len(data) // 2:]
    elif damage == "magic":
        data[:4] = b"GGML"
    elif damage == "string-length":
        data[24:32] = struct.pack("<Q", 1 << 40)
    else:
        del data[-100:]  # the last tensor now runs past the end
    model_copy.write_bytes(bytes(data))
    with pytest.raises(RegistryError, match=r"Cannot import: my-llama-2-chat\.Q4_1\.gguf is "
                                            r"not a valid GGUF model"):
        registry.import_file(model_copy)
    assert [e.source for e in registry.models()] == [ModelSource.BUNDLED]
    assert not (paths.models_dir / "imported").exists() or \
        not any((paths.models_dir / "imported").iterdir())


def test_missing_file_and_unknown_format(registry: ModelRegistry, model_copy: Path,
                                         tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="No file at"):
        registry.import_file(tmp_path / "nope.gguf")
    with pytest.raises(RegistryError, match="unknown chat format 'klingon'"):
        registry.import_file(model_copy, link=True, chat_format="klingon")
    with pytest.raises(RegistryError, match="No installed model 'ghost'"):
        registry.remove("ghost")


def test_ids_stay_unique(registry: ModelRegistry, model_copy: Path) -> None:
    first = registry.import_file(model_copy)
    second_file = model_copy.with_name("other.gguf")
    data = bytearray(model_copy.read_bytes())
    data[-2] ^= 0xFF  # different bytes, same header: a second model
    second_file.write_bytes(bytes(data))
    second = registry.import_file(second_file, name="Other")
    assert first.id != second.id
    renamed = registry.add(second.__class__(**{**second.__dict__, "id": first.id,
                                                "path": "/elsewhere/x.gguf"}))
    assert renamed.id == f"{first.id}-2"


def test_remove_never_deletes_outside_the_models_folder(registry: ModelRegistry,
                                                        model_copy: Path) -> None:
    entry = registry.import_file(model_copy, link=True)
    forged = entry.__class__(**{**entry.__dict__, "source": ModelSource.DOWNLOADED,
                                "id": "forged"})
    registry.remove(entry.id)
    registry.add(forged)
    registry.remove("forged")
    assert model_copy.exists()


def test_helpers() -> None:
    assert slug("Llama 2 Chat (Q4_K_M)!") == "llama-2-chat-q4_k_m"
    assert guess_chat_format("mistral-7b-instruct-v0.2.Q4_K_M.gguf") == "mistral-instruct"
    assert guess_chat_format("vicuna-13b.gguf") == "vicuna"
    assert guess_chat_format("tinyllama-1.1b-chat.gguf") == "zephyr"
    assert guess_chat_format("something.gguf") == "chatml"


def test_licence_acceptance_is_recorded_once(paths: AppPaths) -> None:
    licence = ModelCatalog.load().get("llama-2-7b-chat").licence  # type: ignore[union-attr]
    store = LicenceAcceptances(paths.config_dir / "licences.json")
    assert store.needs_acceptance(licence)
    assert "Acceptable-use policy: https://ai.meta.com/llama/use-policy/" in \
        acceptance_text(licence)
    store.accept(licence)
    assert not LicenceAcceptances(store.path).needs_acceptance(licence)
    assert not store.needs_acceptance(None)


# -- the chat format chosen in a model's settings -----------------------------------------------


def test_a_chosen_chat_format_is_kept_for_an_imported_model(registry: ModelRegistry,
                                                            model_copy: Path,
                                                            paths: AppPaths) -> None:
    entry = registry.import_file(model_copy)
    assert entry.chat_format == "llama-2"  # guessed from the file name
    updated = registry.set_chat_format(entry.id, "vicuna")
    assert updated.chat_format == "vicuna"
    # Stored: a fresh registry (another process) sees it, and nothing else changed.
    again = ModelRegistry(paths).get(entry.id)
    assert again is not None and again.chat_format == "vicuna"
    assert again == updated


def test_a_chosen_chat_format_is_kept_for_the_bundled_model(registry: ModelRegistry,
                                                            paths: AppPaths) -> None:
    shipped = registry.bundled_entry()
    assert shipped is not None
    registry.set_chat_format(shipped.id, "zephyr")
    listed = ModelRegistry(paths).get(shipped.id)
    assert listed is not None and listed.chat_format == "zephyr"
    assert listed.read_only and listed.path == shipped.path
    assert [e.id for e in registry.models()] == [shipped.id]  # still not stored as a model


def test_choosing_an_unknown_format_or_model_is_refused(registry: ModelRegistry) -> None:
    shipped = registry.bundled_entry()
    assert shipped is not None
    with pytest.raises(RegistryError, match="unknown chat format 'llama-7'"):
        registry.set_chat_format(shipped.id, "llama-7")
    with pytest.raises(RegistryError, match="No installed model 'nope'"):
        registry.set_chat_format("nope", "chatml")


# -- reads between changes --------------------------------------------------------------------


def test_a_change_by_another_registry_is_seen_by_this_one(registry: ModelRegistry,
                                                          model_copy: Path,
                                                          paths: AppPaths) -> None:
    """The list is read again only when the file changed; a change made elsewhere (another
    registry object, as the ``llamadesk models`` command in another process) is seen."""
    shipped = registry.bundled_entry()
    assert shipped is not None
    assert [e.id for e in registry.models()] == [shipped.id]  # no file yet
    other = ModelRegistry(paths)
    added = other.import_file(model_copy)
    assert [e.id for e in registry.models()] == [shipped.id, added.id]
    other.set_chat_format(added.id, "vicuna")
    other.set_chat_format(shipped.id, "zephyr")
    seen = {e.id: e.chat_format for e in registry.models()}
    assert seen == {shipped.id: "zephyr", added.id: "vicuna"}
    other.remove(added.id)
    assert [e.id for e in registry.models()] == [shipped.id]
    (paths.models_dir / "registry.json").unlink()  # gone: the bundled model's default again
    assert registry.models() == [shipped]


def test_the_list_returned_is_the_callers(registry: ModelRegistry, model_copy: Path) -> None:
    """A caller changing the list it got does not change what the next call answers."""
    added = registry.import_file(model_copy)
    first = registry.models()
    first.clear()
    assert [e.id for e in registry.models()][1:] == [added.id]


@pytest.mark.skipif(sys.platform == "win32", reason="symbolic links need privileges there")
def test_a_registry_file_that_cannot_be_looked_at_gives_the_registrys_error(
        registry: ModelRegistry, paths: AppPaths) -> None:
    """Not a raw OSError from the check of whether the file changed: the read's clear
    error, as before that check existed."""
    registry.models()  # a read kept
    loop = paths.models_dir / "registry.json"
    loop.parent.mkdir(parents=True, exist_ok=True)
    loop.symlink_to(loop)  # stat() fails with ELOOP, not "no such file"
    with pytest.raises(RegistryError, match="unreadable"):
        registry.models()
