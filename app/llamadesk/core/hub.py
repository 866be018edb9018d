"""The Hugging Face Hub through huggingface_hub: search, a repo's GGUF files, file metadata.

Everything that talks to the Hub goes through huggingface_hub (its URLs, headers,
authentication, HTTP client and error types), so ``HF_ENDPOINT``, proxies and tokens
behave as Hugging Face users expect. huggingface_hub reads ``HF_ENDPOINT`` once, at
import; we read it again at each call, so a changed environment (or a test's loopback
server) takes effect without re-importing anything.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx2
from huggingface_hub import HfApi, constants, get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import (
    DisabledRepoError,
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

# The documented public path; the package's lazy loader just does not declare it for mypy.
from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

import llamadesk
from llamadesk.core.quant import is_gguf_name, parse_quantisation, split_part

log = logging.getLogger(__name__)

LIBRARY_NAME = "llamadesk"
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

TokenProvider = Callable[[], str | None]


def hub_endpoint() -> str:
    """The Hub's base URL: ``HF_ENDPOINT`` as it is now, else huggingface_hub's default."""
    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def gated_help(repo: str, endpoint: str | None = None) -> str:
    """What the user must do to get a gated repo's files."""
    base = endpoint or hub_endpoint()
    return (f"{repo} is a gated repository: open {base}/{repo}, sign in, and accept its "
            "terms; then create an access token (Settings → Access Tokens, read access) "
            "and give it to LlamaDesk, or set HF_TOKEN.")


class HubErrorKind(StrEnum):
    """Why a Hub request failed, for the UI to choose what to offer."""

    GATED = "gated"
    REPO_NOT_FOUND = "repo-not-found"
    FILE_NOT_FOUND = "file-not-found"
    REVISION_NOT_FOUND = "revision-not-found"
    OFFLINE = "offline"
    NETWORK = "network"
    INVALID = "invalid"
    HTTP = "http"
    INTERNAL = "internal"  # a fault of LlamaDesk's own, not the Hub's


class HubError(Exception):
    """A Hub request failed; ``str()`` is a sentence for the user, ``kind`` says why."""

    def __init__(self, kind: HubErrorKind, message: str, repo: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.repo = repo


def hub_error(exc: BaseException, repo: str, filename: str | None = None,
              endpoint: str | None = None) -> HubError:
    """Turn a huggingface_hub or network exception into a HubError with a clear message."""
    what = f"{filename} in {repo}" if filename else repo
    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, GatedRepoError):
        status = exc.response.status_code if exc.response is not None else 0
        if status == 403:
            return HubError(HubErrorKind.GATED,
                            f"Your Hugging Face token has no access to {repo} yet. "
                            + gated_help(repo, endpoint), repo)
        return HubError(HubErrorKind.GATED, gated_help(repo, endpoint), repo)
    if isinstance(exc, RepositoryNotFoundError):
        return HubError(HubErrorKind.REPO_NOT_FOUND,
                        f"No repository {repo} on the Hub (or it is private and your token "
                        "cannot see it).", repo)
    if isinstance(exc, RevisionNotFoundError):
        return HubError(HubErrorKind.REVISION_NOT_FOUND,
                        f"{repo} has no such revision (branch, tag or commit).", repo)
    if isinstance(exc, EntryNotFoundError):
        return HubError(HubErrorKind.FILE_NOT_FOUND, f"{repo} has no file {filename}.", repo)
    if isinstance(exc, DisabledRepoError):
        return HubError(HubErrorKind.REPO_NOT_FOUND, f"{repo} has been disabled on the Hub.",
                        repo)
    if isinstance(exc, OfflineModeIsEnabled):
        return HubError(HubErrorKind.OFFLINE, "Hugging Face offline mode is on (HF_HUB_OFFLINE); "
                        "unset it to search or download.", repo)
    if isinstance(exc, HFValidationError):
        return HubError(HubErrorKind.INVALID, f"{repo!r} is not a valid Hub repository name.",
                        repo)
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        detail = f": {exc.server_message}" if exc.server_message else ""
        return HubError(HubErrorKind.HTTP, f"The Hub answered HTTP {status} for {what}{detail}",
                        repo)
    if isinstance(exc, httpx2.TransportError):
        return HubError(HubErrorKind.NETWORK, f"Cannot reach the Hub at "
                        f"{endpoint or hub_endpoint()} ({type(exc).__name__}: {exc}).", repo)
    return HubError(HubErrorKind.HTTP, f"Unexpected error talking to the Hub about {what}: "
                    f"{type(exc).__name__}: {exc}", repo)


def check_repo_id(repo: str) -> str:
    """Return ``repo`` if it is a well-formed ``owner/name``, else raise HubError."""
    if not _REPO_ID_RE.match(repo) or ".." in repo:
        raise HubError(HubErrorKind.INVALID, f"{repo!r} is not a Hub repository name "
                       "(expected owner/name).", repo)
    return repo


@dataclass(frozen=True)
class HubRepo:
    """One search result: a model repository."""

    id: str
    downloads: int
    likes: int
    gated: bool
    last_modified: str | None


@dataclass(frozen=True)
class HubFile:
    """One file in a repo, with the Hub's size and LFS sha256 (None if not in LFS)."""

    path: str
    size: int | None
    sha256: str | None


@dataclass(frozen=True)
class GGUFChoice:
    """One model a repo offers: a single GGUF file, or the parts of a split one."""

    repo: str
    name: str
    files: tuple[HubFile, ...]
    quant: str | None
    split: bool
    raw_split: bool = False

    @property
    def size(self) -> int | None:
        """Total bytes (None if the Hub did not say for some part)."""
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)

    @property
    def filename(self) -> str:
        """The repo path to download (the first part, for a split model)."""
        return self.files[0].path

    @property
    def refusal(self) -> str | None:
        """Why this cannot be downloaded, or None if it can."""
        if self.raw_split:
            return (f"{self.name} is cut into {len(self.files)} raw pieces that must be joined "
                    "by hand; LlamaDesk downloads single GGUF files. Choose a smaller "
                    "quantisation, or another repo.")
        if self.split:
            return (f"{self.name} is split across {len(self.files)} files; LlamaDesk downloads "
                    "single-file GGUF models. Choose a smaller quantisation, or another repo.")
        return None


@dataclass(frozen=True)
class RemoteFile:
    """Everything needed to download one file and check it afterwards."""

    repo: str
    filename: str
    revision: str
    commit: str | None
    url: str
    size: int
    sha256: str
    etag: str | None


def group_gguf_files(repo: str, files: Iterable[HubFile]) -> list[GGUFChoice]:
    """The repo's GGUF files as choices: split parts grouped into one, sorted by size."""
    singles: list[GGUFChoice] = []
    groups: dict[tuple[str, bool], list[HubFile]] = {}
    for item in files:
        if not is_gguf_name(item.path):
            continue
        part = split_part(item.path)
        if part is None:
            singles.append(GGUFChoice(repo, item.path, (item,), parse_quantisation(item.path),
                                      split=False))
        else:
            groups.setdefault((part.stem, part.raw), []).append(item)
    for (stem, raw), parts in groups.items():
        ordered = tuple(sorted(parts, key=lambda f: f.path))
        singles.append(GGUFChoice(repo, stem.rsplit("/", 1)[-1] + (".gguf" if not raw else ""),
                                  ordered, parse_quantisation(stem), split=True, raw_split=raw))
    return sorted(singles, key=lambda c: (c.size is None, c.size or 0, c.name))


class HubClient:
    """Search the Hub and describe files, with the token the app holds (if any)."""

    def __init__(self, token: TokenProvider | None = None, endpoint: str | None = None) -> None:
        self._token = token or (lambda: None)
        self._endpoint = endpoint
        # The Hub gets what a search or download needs, nothing more: huggingface_hub's
        # telemetry adds to the user agent and fetches an "agent" registry from the Hub.
        constants.HF_HUB_DISABLE_TELEMETRY = True

    @property
    def endpoint(self) -> str:
        """The Hub base URL used now."""
        return (self._endpoint or hub_endpoint()).rstrip("/")

    def _auth(self) -> str | bool:
        # False, not None: None would make huggingface_hub fall back to a token saved by
        # its own CLI, which the user did not give to LlamaDesk.
        return self._token() or False

    def _api(self) -> HfApi:
        return HfApi(endpoint=self.endpoint, token=self._auth(), library_name=LIBRARY_NAME,
                     library_version=llamadesk.__version__)

    def headers(self) -> dict[str, str]:
        """The headers huggingface_hub sends (user agent, and the token if there is one)."""
        return build_hf_headers(token=self._auth(), library_name=LIBRARY_NAME,
                                library_version=llamadesk.__version__)

    def search(self, query: str, limit: int = 30) -> list[HubRepo]:
        """GGUF model repos matching ``query``, most downloaded first."""
        try:
            models = list(self._api().list_models(search=query.strip() or None, filter="gguf",
                                                  sort="downloads", limit=limit))
        except Exception as exc:
            raise hub_error(exc, query, endpoint=self.endpoint) from exc
        return [HubRepo(id=m.id, downloads=int(m.downloads or 0), likes=int(m.likes or 0),
                        gated=bool(m.gated),
                        last_modified=m.last_modified.isoformat() if m.last_modified else None)
                for m in models]

    def list_files(self, repo: str, revision: str | None = None) -> list[HubFile]:
        """Every file in ``repo`` with its size and LFS sha256."""
        check_repo_id(repo)
        try:
            info = self._api().model_info(repo, revision=revision, files_metadata=True)
        except Exception as exc:
            raise hub_error(exc, repo, endpoint=self.endpoint) from exc
        return [HubFile(s.rfilename, s.size, s.lfs.sha256 if s.lfs else None)
                for s in info.siblings or []]

    def model_card(self, repo: str, revision: str | None = None) -> tuple[list[str],
                                                                        dict[str, Any]]:
        """The repo's tags and model-card metadata (its licence and base model)."""
        check_repo_id(repo)
        try:
            info = self._api().model_info(repo, revision=revision)
        except Exception as exc:
            raise hub_error(exc, repo, endpoint=self.endpoint) from exc
        return list(info.tags or []), (info.card_data.to_dict()  # type: ignore[no-untyped-call]
                                       if info.card_data else {})

    def gguf_choices(self, repo: str, revision: str | None = None) -> list[GGUFChoice]:
        """The GGUF models ``repo`` offers, split ones grouped."""
        return group_gguf_files(repo, self.list_files(repo, revision))

    def remote_file(self, repo: str, filename: str, revision: str = "main") -> RemoteFile:
        """Resolve a file: its commit, size and sha256, from the Hub's metadata.

        The HEAD request comes first: for a gated repo it is the one that fails with the
        Hub's "gated" answer. The sha256 comes from the LFS pointer at the same commit.
        """
        check_repo_id(repo)
        endpoint = self.endpoint
        try:
            url = hf_hub_url(repo, filename, revision=revision, endpoint=endpoint)
            meta = get_hf_file_metadata(url, token=self._auth(), endpoint=endpoint,
                                        library_name=LIBRARY_NAME,
                                        library_version=llamadesk.__version__)
            commit = meta.commit_hash
            pinned = commit or revision
            infos = self._api().get_paths_info(repo, [filename], revision=pinned)
        except Exception as exc:
            raise hub_error(exc, repo, filename, endpoint) from exc
        sha256: str | None = None
        lfs_size: int | None = None
        for info in infos:
            lfs: Any = getattr(info, "lfs", None)
            if getattr(info, "path", None) == filename and lfs is not None:
                sha256, lfs_size = str(lfs.sha256).lower(), int(lfs.size)
        if sha256 is None and meta.etag and _SHA256_RE.match(meta.etag.lower()):
            sha256 = meta.etag.lower()  # an LFS file's ETag is its sha256
        if sha256 is None or not _SHA256_RE.match(sha256):
            raise HubError(HubErrorKind.HTTP, f"The Hub published no sha256 for {filename} in "
                           f"{repo}, so its download could not be verified.", repo)
        size = meta.size if meta.size is not None else lfs_size
        if size is None:
            raise HubError(HubErrorKind.HTTP, f"The Hub did not say how big {filename} is.", repo)
        if lfs_size is not None and lfs_size != size:
            raise HubError(HubErrorKind.HTTP, f"The Hub gives two sizes for {filename} "
                           f"({size:,} and {lfs_size:,} bytes); try again later.", repo)
        download_url = hf_hub_url(repo, filename, revision=pinned, endpoint=endpoint)
        return RemoteFile(repo=repo, filename=filename, revision=revision, commit=commit,
                          url=download_url, size=size, sha256=sha256, etag=meta.etag)
