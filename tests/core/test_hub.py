"""Hub search, repo files and file metadata through huggingface_hub, against the loopback
Hub."""

from __future__ import annotations

import pytest
from hub_fixtures import (
    GATED_FILE,
    GATED_REPO,
    HF_TOKEN_VALUE,
    SMOL_FILE,
    SMOL_REPO,
    SPLIT_FILES,
)
from hubserver import HubServer, sha256_of

from llamadesk.core.hub import HubClient, HubError, HubErrorKind, hub_endpoint


def test_endpoint_is_read_at_call_time(hub_server: HubServer,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub froze HF_ENDPOINT when it was imported; we must not.
    assert hub_endpoint() == hub_server.url
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    assert HubClient().endpoint == "http://127.0.0.1:9"


def test_search_lists_gguf_repos(hub_server: HubServer) -> None:
    repos = HubClient().search("smol")
    assert [r.id for r in repos] == [SMOL_REPO]  # the safetensors repo is filtered out
    assert repos[0].downloads == 5000 and not repos[0].gated
    everything = HubClient().search("")
    assert [r.id for r in everything][:2] == [SMOL_REPO, GATED_REPO]  # by downloads
    assert next(r for r in everything if r.id == GATED_REPO).gated
    request = next(r for r in hub_server.requests if r.path.startswith("/api/models?"))
    assert "filter=gguf" in request.path and "search=smol" in request.path


def test_repo_files_with_quantisation_size_and_sha(hub_server: HubServer,
                                                   bundled_model_path: object) -> None:
    choices = HubClient().gguf_choices(SMOL_REPO)
    by_name = {c.name: c for c in choices}
    assert set(by_name) == {SMOL_FILE, "big-model.Q8_0.gguf"}  # README.md is not a model
    smol = by_name[SMOL_FILE]
    assert smol.quant == "Q4_1" and smol.size == 98_362_432 and smol.refusal is None
    assert smol.files[0].sha256 == sha256_of(bundled_model_path)  # type: ignore[arg-type]
    split = by_name["big-model.Q8_0.gguf"]
    assert split.split and split.size == 2_004 + 3_000
    assert [f.path for f in split.files] == list(SPLIT_FILES)
    assert split.refusal and "split across 2 files" in split.refusal


def test_remote_file_metadata(hub_server: HubServer, bundled_model_path: object) -> None:
    remote = HubClient().remote_file(SMOL_REPO, SMOL_FILE)
    repo = hub_server.repos[SMOL_REPO]
    assert remote.size == 98_362_432
    assert remote.sha256 == sha256_of(bundled_model_path)  # type: ignore[arg-type]
    assert remote.commit == repo.commit
    # The bytes are fetched from the commit the metadata came from, not a moving branch.
    assert remote.url == f"{hub_server.url}/{SMOL_REPO}/resolve/{repo.commit}/{SMOL_FILE}"
    heads = [r for r in hub_server.requests if r.method == "HEAD"]
    assert heads and "authorization" not in heads[0].headers  # no token: none sent


@pytest.mark.parametrize(("repo", "filename", "kind", "phrase"), [
    ("nobody/nothing-GGUF", SMOL_FILE, HubErrorKind.REPO_NOT_FOUND, "No repository"),
    (SMOL_REPO, "missing.Q4_0.gguf", HubErrorKind.FILE_NOT_FOUND, "has no file missing"),
    ("not a repo", SMOL_FILE, HubErrorKind.INVALID, "not a Hub repository name"),
])
def test_errors_are_mapped(hub_server: HubServer, repo: str, filename: str,
                           kind: HubErrorKind, phrase: str) -> None:
    with pytest.raises(HubError) as info:
        HubClient().remote_file(repo, filename)
    assert info.value.kind == kind
    assert phrase in str(info.value)


def test_gated_repo_needs_a_token_with_access(hub_server: HubServer) -> None:
    with pytest.raises(HubError) as info:
        HubClient().remote_file(GATED_REPO, GATED_FILE)
    assert info.value.kind == HubErrorKind.GATED
    assert "gated repository" in str(info.value) and "accept its terms" in str(info.value)
    with pytest.raises(HubError) as wrong:
        HubClient(token=lambda: "hf_wrong_token_value").remote_file(GATED_REPO, GATED_FILE)
    assert wrong.value.kind == HubErrorKind.GATED
    assert "no access" in str(wrong.value) and "hf_wrong_token_value" not in str(wrong.value)
    remote = HubClient(token=lambda: HF_TOKEN_VALUE).remote_file(GATED_REPO, GATED_FILE)
    assert remote.size == 98_362_432
    assert hub_server.requests[-2].headers["authorization"] == f"Bearer {HF_TOKEN_VALUE}"


def test_unreachable_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on port 9
    with pytest.raises(HubError) as info:
        # (list_files, not search: huggingface_hub retries searches with back-off for ~20 s)
        HubClient().list_files("some/repo")
    assert info.value.kind == HubErrorKind.NETWORK
    assert "Cannot reach the Hub at http://127.0.0.1:9" in str(info.value)
