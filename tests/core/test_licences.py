"""The licence gate covers every Llama 2 derivative, not only catalog entries: one found
by Hub search (from the Hub's licence tag or base model, or failing that, the file's own
metadata) and one imported from disk (from its GGUF metadata)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
from gguf_tools import tiny_model
from hub_fixtures import make_downloader
from hubserver import HubServer

from llamadesk.core.catalog import ModelCatalog
from llamadesk.core.downloads import DownloadError, DownloadErrorKind, DownloadRequest
from llamadesk.core.gguf_validate import read_metadata
from llamadesk.core.hub import HubClient
from llamadesk.core.licences import (
    ACCEPTANCES_FILE,
    LLAMA2,
    LicenceAcceptances,
    licence_from_gguf,
    licence_from_hub,
)
from llamadesk.core.paths import AppPaths
from llamadesk.core.registry import IMPORTED_DIR, LicenceRequiredError, ModelRegistry
from llamadesk.core.secrets import SecretStore

FINETUNE_REPO = "someone/Llama-2-7B-Storyteller-GGUF"
FINETUNE_FILE = "llama-2-7b-storyteller.Q4_0.gguf"
QUIET_REPO = "someone-else/Storyteller-7B-GGUF"  # no licence tag; the file says it
QUIET_FILE = "storyteller-7b.Q4_0.gguf"


@pytest.mark.parametrize(("tags", "card"), [
    (["gguf", "license:llama2"], None),
    (["gguf", "base_model:meta-llama/Llama-2-7b-chat-hf"], None),
    (["gguf", "base_model:finetune:meta-llama/Llama-2-13b-hf"], None),
    (["gguf", "base_model:quantized:NousResearch/Llama-2-7b-hf"], None),
    (["gguf"], {"license": "llama2"}),
    (["gguf"], {"license": "other", "license_name": "llama2"}),
    (["gguf"], {"base_model": "meta-llama/Llama-2-70b-chat-hf"}),
    (["gguf"], {"base_model": ["mistralai/Mistral-7B-v0.1", "codellama/CodeLlama-7b-hf"]}),
    (["gguf"], {"base_model": "NousResearch/Nous-Hermes-llama-2-7b"}),
])
def test_hub_metadata_naming_llama2_asks_for_its_licence(tags: list[str],
                                                          card: dict[str, object] | None) -> None:
    assert licence_from_hub(tags, card) == LLAMA2


@pytest.mark.parametrize(("tags", "card"), [
    (["gguf", "license:apache-2.0"], {"license": "apache-2.0"}),
    (["gguf", "base_model:mistralai/Mistral-7B-v0.1"], None),
    (["gguf", "base_model:TinyLlama/TinyLlama-1.1B-Chat-v1.0"], None),
    (["gguf", "license:llama3"], {"base_model": "meta-llama/Meta-Llama-3-8B"}),
    (["gguf"], {"base_model": "meta-llama/Llama-3.2-1B"}),
    ([], None),
])
def test_other_hub_metadata_asks_for_nothing(tags: list[str],
                                             card: dict[str, object] | None) -> None:
    assert licence_from_hub(tags, card) is None


@pytest.mark.parametrize("metadata", [
    {"general.license": "llama2"},
    {"general.license": "Llama2"},
    {"general.license.name": "Llama 2 Community License"},
    {"general.license.link": "https://ai.meta.com/llama/license/"},
    {"general.base_model.count": "1", "general.base_model.0.name": "Llama 2 7b Chat Hf"},
    {"general.base_model.count": "1",
     "general.base_model.0.repo_url": "https://huggingface.co/meta-llama/Llama-2-7b-hf"},
    {"general.name": "LLaMA v2"},  # how early Llama 2 conversions named themselves
    {"general.basename": "CodeLlama"},
])
def test_gguf_metadata_naming_llama2_asks_for_its_licence(
        tmp_path: Path, metadata: dict[str, str]) -> None:
    count = metadata.pop("general.base_model.count", None)
    path = tiny_model(tmp_path / "m.gguf", metadata=metadata, base_models=int(count or 0))
    assert licence_from_gguf(read_metadata(path)) == LLAMA2


@pytest.mark.parametrize("metadata", [
    {"general.license": "apache-2.0", "general.name": "SmolLM2 135M"},
    {"general.license": "llama3", "general.basename": "Llama-3.2"},
    {"general.name": "TinyLlama-2B experimental"},
    {},
])
def test_other_gguf_metadata_asks_for_nothing(tmp_path: Path, metadata: dict[str, str]) -> None:
    path = tiny_model(tmp_path / "m.gguf", metadata=metadata)
    assert licence_from_gguf(read_metadata(path)) is None


def test_the_bundled_model_needs_no_acceptance(bundled_model_path: Path) -> None:
    assert licence_from_gguf(read_metadata(bundled_model_path)) is None


def test_the_catalog_uses_the_same_llama2_licence() -> None:
    catalog = ModelCatalog.load()
    llama2 = {e.licence for e in catalog.entries if e.licence.id == "llama2"}
    assert llama2 == {LLAMA2}


# -- the gate, end to end -----------------------------------------------------------------------


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    finetune = tiny_model(tmp_path / "finetune.gguf", metadata={"general.license": "llama2"})
    quiet = tiny_model(tmp_path / "quiet.gguf", base_models=1, metadata={
        "general.base_model.0.name": "Llama 2 7b Hf",
        "general.base_model.0.organization": "Meta Llama"})
    server = HubServer()
    server.add_repo(FINETUNE_REPO, {FINETUNE_FILE: finetune}, downloads=50,
                    tags=["gguf", "text-generation", "license:llama2",
                          "base_model:meta-llama/Llama-2-7b-hf"],
                    card_data={"license": "llama2", "base_model": "meta-llama/Llama-2-7b-hf"})
    server.add_repo(QUIET_REPO, {QUIET_FILE: quiet}, downloads=10)
    server.start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    yield server
    server.stop()


def _acceptances(paths: AppPaths) -> LicenceAcceptances:
    return LicenceAcceptances(paths.config_dir / ACCEPTANCES_FILE)


def test_a_llama2_finetune_found_by_search_asks_for_the_licence(
        hub: HubServer, paths: AppPaths) -> None:
    found = HubClient().search("storyteller")
    assert FINETUNE_REPO in [r.id for r in found]
    licences = _acceptances(paths)
    downloader = make_downloader(paths, SecretStore(environ={}), licences=licences)
    request = DownloadRequest(FINETUNE_REPO, FINETUNE_FILE)
    assert downloader.licence_for(request) == LLAMA2

    with pytest.raises(DownloadError) as refused:
        downloader.download(request)
    assert refused.value.kind == DownloadErrorKind.LICENCE
    assert "Llama 2 Community License must be accepted" in str(refused.value)
    assert not hub.downloads_of(FINETUNE_FILE)  # not a byte before acceptance
    assert ModelRegistry(paths).get("llama-2-7b-storyteller.Q4_0") is None

    licences.accept(LLAMA2)
    entry = downloader.download(request)
    assert entry.licence_id == "llama2"
    assert entry.file.is_file()


def test_a_derivative_the_hub_does_not_name_is_caught_by_its_own_metadata(
        hub: HubServer, paths: AppPaths) -> None:
    licences = _acceptances(paths)
    downloader = make_downloader(paths, SecretStore(environ={}), licences=licences)
    request = DownloadRequest(QUIET_REPO, QUIET_FILE)
    assert downloader.licence_for(request) is None

    with pytest.raises(DownloadError) as refused:
        downloader.download(request)
    assert refused.value.kind == DownloadErrorKind.LICENCE and refused.value.resumable
    # Not registered, not moved into place; the verified bytes wait for the acceptance.
    assert not downloader.destination(request).exists()
    assert [p.request.key for p in downloader.partials()] == [request.key]
    fetched = len(hub.downloads_of(QUIET_FILE))

    licences.accept(LLAMA2)
    entry = downloader.download(request)
    assert entry.licence_id == "llama2" and entry.file.is_file()
    assert len(hub.downloads_of(QUIET_FILE)) == fetched  # finished from the kept file


def test_importing_a_llama2_derivative_asks_for_the_licence(tmp_path: Path,
                                                            paths: AppPaths) -> None:
    source = tiny_model(tmp_path / "my-llama-2-finetune.gguf",
                        metadata={"general.license": "llama2"})
    registry = ModelRegistry(paths)
    with pytest.raises(LicenceRequiredError) as refused:
        registry.import_file(source)
    assert refused.value.licence == LLAMA2
    assert "Llama 2 Community License must be accepted" in str(refused.value)
    assert len(registry.models()) == 1  # the bundled model only
    assert not (paths.models_dir / IMPORTED_DIR).exists() or not any(
        (paths.models_dir / IMPORTED_DIR).iterdir())

    registry.licences.accept(refused.value.licence)
    entry = registry.import_file(source)
    assert entry.licence_id == "llama2"
    assert entry.licence_url == LLAMA2.url


def test_importing_a_model_without_such_a_licence_asks_nothing(tmp_path: Path,
                                                               paths: AppPaths) -> None:
    entry = ModelRegistry(paths).import_file(tiny_model(tmp_path / "free.gguf", metadata={
        "general.license": "apache-2.0"}))
    assert entry.licence_id == "apache-2.0"
