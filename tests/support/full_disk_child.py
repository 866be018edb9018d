"""Fill a small filesystem while LlamaDesk downloads a model and writes its database.

    python full_disk_child.py MOUNT REPO FILE

Run by tests/e2e/test_full_disk.py inside a private mount namespace, with MOUNT a fresh
size-limited tmpfs and ``HF_ENDPOINT`` pointing at the test's loopback Hub. The app's
folders (``LLAMADESK_HOME``) live on MOUNT. Prints one JSON object with what happened;
the test checks it.

1. A download starts with room to spare; once 2 MB have arrived another program fills
   the disk. Then the space is freed and the same download is asked for again.
2. The chat database and the settings file are written while the disk is full, then
   again once there is room.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path
from typing import Any

from llamadesk.core.conversation import Role
from llamadesk.core.db import sqlite
from llamadesk.core.downloads import Downloader, DownloadError, DownloadProgress, DownloadRequest
from llamadesk.core.hub import HubClient
from llamadesk.core.paths import app_paths
from llamadesk.core.registry import ModelRegistry
from llamadesk.core.settings import AppSettings, load_settings, save_settings
from llamadesk.core.store import ConversationStore, StoreError


def fill(mount: Path) -> Path:
    """Write a filler file until the filesystem is full."""
    filler = mount / "filler.bin"
    block = b"\0" * (1 << 20)
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(block)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    small = b"\0" * 512
    with filler.open("ab", buffering=0) as out:  # the last few blocks too
        try:
            while True:
                out.write(small)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler


def download_part(mount: Path, repo: str, filename: str) -> dict[str, Any]:
    paths = app_paths().ensure()
    downloader = Downloader(paths, HubClient(), ModelRegistry(paths), retry_delay=0.05)
    request = DownloadRequest(repo, filename)
    filled: list[Path] = []

    def progress(p: DownloadProgress) -> None:
        if p.done >= 2 << 20 and not filled:
            filled.append(fill(mount))

    result: dict[str, Any] = {}
    try:
        downloader.download(request, progress)
        result["first"] = "finished"
    except DownloadError as exc:
        result["first"] = {"kind": str(exc.kind), "message": str(exc),
                           "resumable": exc.resumable}
    part = downloader.part_path(request)
    result["part_bytes"] = part.stat().st_size if part.exists() else None
    result["partials"] = [p.request.key for p in downloader.partials()]
    result["installed_early"] = downloader.destination(request).exists()
    for filler in filled:
        filler.unlink()
    entry = downloader.download(request)
    result["second"] = {"path": entry.path, "size": entry.size,
                        "registered": ModelRegistry(paths).get(entry.id) is not None}
    return result


def database_part(mount: Path) -> dict[str, Any]:
    paths = app_paths().ensure()
    result: dict[str, Any] = {}
    store = ConversationStore(paths.database)
    save_settings(paths.settings_file, AppSettings(default_system_prompt="Be brief."))
    chat = store.create_conversation("Before the disk filled")
    kept = [store.add_message(chat.id, Role.USER, f"kept message {i}").id for i in range(30)]
    filler = fill(mount)
    try:
        for i in range(200):  # until the WAL's spare room is used up too
            store.add_message(chat.id, Role.USER, f"while full {i} " + "x" * 4000)
        result["write_while_full"] = "accepted"
    except StoreError as exc:
        result["write_while_full"] = str(exc)
    try:
        save_settings(paths.settings_file, AppSettings(default_system_prompt="Be verbose."))
        result["settings_while_full"] = "saved"
    except OSError as exc:
        result["settings_while_full"] = exc.strerror or str(exc)
    result["settings_after_failure"] = load_settings(paths.settings_file).default_system_prompt
    result["kept_after_failure"] = [m.id for m in store.messages(chat.id)][:len(kept)] == kept
    filler.unlink()
    after = store.add_message(chat.id, Role.USER, "after space was freed")
    result["write_after_freeing"] = store.messages(chat.id)[-1].id == after.id
    result["search_after_freeing"] = [m.content for m in store.search("freed")]
    store.close()
    con = sqlite.connect(paths.database)
    result["integrity"] = con.execute("PRAGMA integrity_check").fetchone()[0]
    result["messages"] = con.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    con.close()
    result["kept"] = len(kept)
    return result


def main(mount: Path, repo: str, filename: str) -> int:
    """Run both parts; print what happened as one JSON line."""
    os.environ["LLAMADESK_HOME"] = str(mount / "home")
    report = {"download": download_part(mount, repo, filename),
              "database": database_part(mount)}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
