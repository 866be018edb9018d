"""A loopback server that speaks the Hugging Face Hub's protocol as huggingface_hub uses it.

Not a mock of our code: huggingface_hub itself talks to it (set ``HF_ENDPOINT`` to
``server.url``), and it serves real GGUF bytes. What it implements:

- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` and
  ``X-Linked-Etag`` (the LFS sha256), ``X-Linked-Size``, ``Accept-Ranges``, and
  ``Range``/206 on GET. With ``cdn=True`` it answers 302 to a second listener (another
  origin, like the Hub's CDN) that serves the bytes without authentication.
- ``GET /api/models?search=…&filter=…`` (search), ``GET /api/models/{repo}`` and
  ``/api/models/{repo}/revision/{rev}`` (siblings; sizes and LFS sha256 with
  ``blobs=true``, as ``files_metadata=True`` asks), ``POST
  /api/models/{repo}/paths-info/{rev}``.
- Model cards: ``tags`` (``license:…``, ``base_model:…``) in listings and ``cardData``
  (``card_data``) in a repo's info, as the Hub derives them from a README's metadata.
- Gated repos: 401 ``X-Error-Code: GatedRepo`` without a token, 403 with the wrong one,
  with the Hub's own messages. Unknown repos, files and revisions: 404 with
  ``RepoNotFound`` / ``EntryNotFound`` / ``RevisionNotFound``.

Switches for trouble: ``cut_at`` (drop the connection once the body reaches this file
offset, ``cuts`` times), ``flip_at`` (serve that byte inverted), ``rate`` (bytes per
second, paced like a link of that speed), ``ignore_range``. Every request is recorded
in ``requests``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

CHUNK = 64 * 1024
_HASH_CACHE: dict[tuple[str, int, float], str] = {}


def sha256_of(source: bytes | Path) -> str:
    """The sha256 of bytes or a file (files cached by path, size and mtime)."""
    if isinstance(source, bytes):
        return hashlib.sha256(source).hexdigest()
    stat = source.stat()
    key = (str(source), stat.st_size, stat.st_mtime)
    if key not in _HASH_CACHE:
        digest = hashlib.sha256()
        with source.open("rb") as fh:
            while chunk := fh.read(4 << 20):
                digest.update(chunk)
        _HASH_CACHE[key] = digest.hexdigest()
    return _HASH_CACHE[key]


@dataclass
class RepoFile:
    """One file of a served repo."""

    content: bytes | Path
    lfs: bool = True

    @property
    def size(self) -> int:
        return len(self.content) if isinstance(self.content, bytes) else self.content.stat().st_size

    @property
    def sha256(self) -> str:
        return sha256_of(self.content)

    @property
    def blob_id(self) -> str:
        return hashlib.sha1(self.sha256.encode()).hexdigest()

    def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end)."""
        if isinstance(self.content, bytes):
            return self.content[start:end]
        with self.content.open("rb") as fh:
            fh.seek(start)
            return fh.read(end - start)


@dataclass
class Repo:
    """A served model repository."""

    id: str
    files: dict[str, RepoFile]
    gated: bool = False
    commit: str = ""
    downloads: int = 100
    likes: int = 1
    tags: list[str] = field(default_factory=lambda: ["gguf", "text-generation"])
    #: The model card's metadata (``license``, ``base_model``…), served as ``cardData``.
    card_data: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.commit:
            self.commit = hashlib.sha1(self.id.encode()).hexdigest()


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server saw."""

    listener: str  # "hub" or "cdn"
    method: str
    path: str
    headers: dict[str, str]

    @property
    def range_start(self) -> int | None:
        """The first byte asked for by a ``Range: bytes=N-`` header, if any."""
        value = self.headers.get("range")
        if not value or not value.startswith("bytes="):
            return None
        return int(value[6:].split("-", 1)[0])


class HubServer:
    """The server: add repos, start, point ``HF_ENDPOINT`` at ``url``, flip switches."""

    def __init__(self, token: str = "hf_test_token_for_gated_repos", cdn: bool = False) -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.requests: list[RecordedRequest] = []
        self.cut_at: int | None = None
        self.cuts = 1
        self.flip_at: int | None = None
        self.rate: float | None = None
        self.ignore_range = False
        self.use_cdn = cdn
        self._lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self.url = ""
        self.cdn_url = ""

    # -- set-up -------------------------------------------------------------------------
    def add_repo(self, repo_id: str, files: dict[str, bytes | Path | RepoFile],
                 gated: bool = False, **kwargs: Any) -> Repo:
        """Serve a repo with these files (non-GGUF bytes are served as plain git files)."""
        wrapped = {name: f if isinstance(f, RepoFile) else
                   RepoFile(f, lfs=name.endswith(".gguf") or isinstance(f, Path))
                   for name, f in files.items()}
        repo = Repo(repo_id, wrapped, gated=gated, **kwargs)
        self.repos[repo_id] = repo
        return repo

    def start(self) -> HubServer:
        """Listen on 127.0.0.1 (free ports) in background threads."""
        for name in ("hub", "cdn") if self.use_cdn else ("hub",):
            server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self, name))
            server.daemon_threads = True
            # A short poll interval: shutdown() waits for it at the end of every test.
            thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                                      name=f"hubserver-{name}", daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
            url = f"http://127.0.0.1:{server.server_address[1]}"
            if name == "hub":
                self.url = url
            else:
                self.cdn_url = url
        return self

    def stop(self) -> None:
        """Stop listening."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection ---------------------------------------------------------------------
    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def downloads_of(self, filename: str) -> list[RecordedRequest]:
        """The GET requests that fetched bytes of ``filename`` (on the Hub or the CDN)."""
        with self._lock:
            sha = {f.sha256 for r in self.repos.values() for n, f in r.files.items()
                   if n == filename}
            return [r for r in self.requests if r.method == "GET" and (
                (r.listener == "hub" and "/resolve/" in r.path
                 and unquote(r.path.split("?")[0]).endswith("/" + filename))
                or (r.listener == "cdn" and r.path.split("?")[0].rsplit("/", 1)[-1] in sha))]

    def take_cut(self) -> int | None:
        """The offset to cut at for the response starting now (counts one use)."""
        with self._lock:
            if self.cut_at is None or self.cuts <= 0:
                return None
            self.cuts -= 1
            return self.cut_at


def _make_handler(server: HubServer, listener: str) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        hub = server
        name = listener

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # As the Hub's own servers do (TCP_NODELAY). With Nagle's algorithm on, a body written
    # after its headers waits for the client to acknowledge them, and a client on a
    # kept-alive connection delays that acknowledgement by ~40 ms: every request after
    # the first on a connection would take 40 ms longer here than on the real Hub.
    disable_nagle_algorithm = True
    hub: HubServer
    name: str

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    # -- plumbing -------------------------------------------------------------------------
    def _record(self) -> None:
        self.hub.record(RecordedRequest(self.name, self.command, self.path,
                                        {k.lower(): v for k, v in self.headers.items()}))

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: Any, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode())

    def _error(self, status: int, code: str | None, message: str) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), headers)

    def _repo(self, repo_id: str) -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
        return repo

    def _revision_ok(self, repo: Repo, revision: str) -> bool:
        if revision in ("main", repo.commit):
            return True
        self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return False

    def _authorised(self, repo: Repo) -> bool:
        if not repo.gated:
            return True
        auth = self.headers.get("Authorization", "")
        if not auth:
            self._error(401, "GatedRepo",
                        f"Access to model {repo.id} is restricted. You must have access to it "
                        "and be authenticated to access it. Please log in.")
            return False
        if auth != f"Bearer {self.hub.token}":
            self._error(403, "GatedRepo",
                        f"Access to model {repo.id} is restricted and you are not in the "
                        f"authorized list. Visit https://huggingface.co/{repo.id} to ask for "
                        "access.")
            return False
        return True

    # -- routes ---------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._record()
        self._route()

    def do_GET(self) -> None:
        self._record()
        self._route()

    def do_POST(self) -> None:
        self._record()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        parts = urlsplit(self.path).path.strip("/").split("/")
        # api/models/{owner}/{name}/paths-info/{rev}
        if len(parts) == 6 and parts[:2] == ["api", "models"] and parts[4] == "paths-info":
            repo = self._repo(f"{parts[2]}/{parts[3]}")
            if repo is None or not self._revision_ok(repo, unquote(parts[5])):
                return
            wanted = parse_qs(body).get("paths", [])
            self._json([_path_info(name, repo.files[name]) for name in wanted
                        if name in repo.files])
            return
        self._error(404, None, "Not found")

    def _route(self) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = parse_qs(split.query)
        if self.name == "cdn":
            self._serve_cdn(path)
            return
        parts = path.strip("/").split("/")
        if len(parts) >= 5 and parts[2] == "resolve":
            self._serve_resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
        elif parts == ["api", "models"]:
            self._search(query)
        elif len(parts) in (4, 6) and parts[:2] == ["api", "models"] and (
                len(parts) == 4 or parts[4] == "revision"):
            repo = self._repo(f"{parts[2]}/{parts[3]}")
            if repo is not None and (len(parts) == 4 or self._revision_ok(repo, parts[5])):
                self._json(_model_info(repo, blobs=query.get("blobs") == ["True"]
                                       or query.get("blobs") == ["true"]))
        else:
            self._error(404, None, "Not found")

    def _search(self, query: dict[str, list[str]]) -> None:
        needle = (query.get("search") or [""])[0].lower()
        tags = query.get("filter", [])
        found = [r for r in self.hub.repos.values()
                 if needle in r.id.lower() and all(t in r.tags for t in tags)]
        found.sort(key=lambda r: -r.downloads)
        limit = int((query.get("limit") or ["1000"])[0])
        self._json([_listing(r) for r in found[:limit]])

    def _serve_resolve(self, repo_id: str, revision: str, filename: str) -> None:
        repo = self._repo(repo_id)
        if repo is None or not self._revision_ok(repo, revision):
            return
        if filename not in repo.files:
            self._error(404, "EntryNotFound", "Entry not found")
            return
        if not self._authorised(repo):
            return
        item = repo.files[filename]
        headers = {"X-Repo-Commit": repo.commit, "Accept-Ranges": "bytes"}
        if item.lfs:
            headers |= {"X-Linked-Etag": f'"{item.sha256}"', "X-Linked-Size": str(item.size),
                        "ETag": f'"{item.blob_id}"'}
        else:
            headers["ETag"] = f'"{item.blob_id}"'
        if self.hub.use_cdn and item.lfs:
            location = f"{self.hub.cdn_url}/cdn/{item.sha256}?X-Signature=test"
            self._send(302, b"", headers | {"Location": location})
            return
        self._serve_bytes(item, headers)

    def _serve_cdn(self, path: str) -> None:
        sha = path.rsplit("/", 1)[-1]
        for repo in self.hub.repos.values():
            for item in repo.files.values():
                if item.sha256 == sha:
                    self._serve_bytes(item, {"Accept-Ranges": "bytes", "ETag": f'"{sha}"'})
                    return
        self._send(404, b"NoSuchKey", content_type="text/plain")

    def _serve_bytes(self, item: RepoFile, headers: dict[str, str]) -> None:
        size = item.size
        start, status = 0, 200
        wanted = self.headers.get("Range")
        if wanted and not self.hub.ignore_range and wanted.startswith("bytes="):
            first, _, last = wanted[6:].partition("-")
            start = int(first)
            end_incl = int(last) if last else size - 1
            if start >= size:
                self._send(416, b"", {"Content-Range": f"bytes */{size}"})
                return
            status = 206
            headers = headers | {"Content-Range": f"bytes {start}-{end_incl}/{size}"}
            stop = end_incl + 1
        else:
            stop = size
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(stop - start))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        cut = self.hub.take_cut()
        pos = start
        began = time.monotonic()
        while pos < stop:
            chunk_end = min(pos + CHUNK, stop)
            if cut is not None and pos < cut <= chunk_end:
                chunk_end = cut
            data = bytearray(item.read(pos, chunk_end))
            flip = self.hub.flip_at
            if flip is not None and pos <= flip < chunk_end:
                data[flip - pos] ^= 0xFF
            try:
                self.wfile.write(data)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return  # the client went away (paused, cancelled or killed)
            pos = chunk_end
            if cut is not None and pos == cut:
                self._drop()
                return
            if self.hub.rate:
                # Like a link of that speed: bytes leave on a schedule, and a reader that
                # fell behind for a moment catches up from what the link buffered.
                ahead = began + (pos - start) / self.hub.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)

    def _drop(self) -> None:
        # A dropped connection mid-body: the client has fewer bytes than Content-Length.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _listing(repo: Repo) -> dict[str, Any]:
    return {
        "_id": repo.commit[:24], "id": repo.id, "modelId": repo.id, "likes": repo.likes,
        "downloads": repo.downloads, "private": False, "gated": "manual" if repo.gated else False,
        "tags": repo.tags, "library_name": "gguf",
        "createdAt": "2024-01-02T03:04:05.000Z", "lastModified": "2024-02-03T04:05:06.000Z",
    }


def _model_info(repo: Repo, blobs: bool) -> dict[str, Any]:
    siblings = []
    for name, item in repo.files.items():
        sibling: dict[str, Any] = {"rfilename": name}
        if blobs:
            sibling |= {"size": item.size, "blobId": item.blob_id}
            if item.lfs:
                sibling["lfs"] = {"sha256": item.sha256, "size": item.size, "pointerSize": 135}
        siblings.append(sibling)
    info = _listing(repo) | {"sha": repo.commit, "disabled": False, "siblings": siblings,
                             "usedStorage": sum(f.size for f in repo.files.values())}
    if repo.card_data is not None:
        info["cardData"] = repo.card_data
    return info


def _path_info(name: str, item: RepoFile) -> dict[str, Any]:
    info: dict[str, Any] = {"type": "file", "oid": item.blob_id, "size": item.size,
                            "path": name}
    if item.lfs:
        info["lfs"] = {"oid": item.sha256, "size": item.size, "pointerSize": 135}
    return info


def resolve_url(server: HubServer, repo: str, filename: str, revision: str = "main") -> str:
    """The resolve URL of a file on this server."""
    return f"{server.url}/{repo}/resolve/{revision}/{quote(filename)}"
